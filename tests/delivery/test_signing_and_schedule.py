"""The signature schemes against published vectors, the retry schedule, and the type filter rule."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from standardwebhooks import Webhook

from meterline.delivery import retry
from meterline.delivery.secrets import generate_secret
from meterline.delivery.signing import (
    Signer,
    http_date,
    metronome_signature,
    signed_headers,
    standard_signature,
)
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import US_PER_HOUR, US_PER_SECOND, to_us
from meterline.domain.webhooks import validate_event_types, validate_secret, validate_url, wants

# Metronome's Node SDK test (tests/api-resources/webhooks.test.ts): this body, secret and date
# give this signature.
METRONOME_BODY = """{
  "id": "b2c9e307-624e-4e7d-a5a4-1b74107d78c4",
  "type": "widget_created",
  "properties": {
    "customer_id": "5f794d50-085a-4db6-8d15-286e518b7225",
    "widget_id": "0891458d-b6f0-4fdd-a41e-380aae1a1e38"
  }
}"""
METRONOME_DATE = "Mon, 02 Jan 2006 22:04:05 GMT"
METRONOME_SIGNATURE = "b82652fa2246cf1d8a27e591f155c865f68b46c19b9213fd9c052f2419b4742b"


def test_metronome_signature_matches_the_sdk_vector() -> None:
    signature = metronome_signature("correct-horse-battery-staple", METRONOME_DATE, METRONOME_BODY.encode())
    assert signature == METRONOME_SIGNATURE


def test_metronome_signature_is_hmac_of_date_newline_body() -> None:
    body = b'{"id": "n-1", "type": "alerts.spend_threshold_reached", "properties": {}}'
    expected = hmac.new(b"whsec_abc", b"Tue, 03 Jan 2006 01:00:00 GMT\n" + body, hashlib.sha256).hexdigest()
    assert metronome_signature("whsec_abc", "Tue, 03 Jan 2006 01:00:00 GMT", body) == expected


def test_standard_webhooks_signature_matches_the_spec_vector() -> None:
    signature = standard_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_http_date_is_rfc_7231() -> None:
    assert http_date(to_us(datetime(2006, 1, 2, 22, 4, 5, tzinfo=UTC)) // US_PER_SECOND) == METRONOME_DATE


def test_headers_during_a_rotation_carry_both_signatures_and_verify_with_either_secret() -> None:
    new, old = generate_secret(), generate_secret()
    timestamp = int(datetime.now(UTC).timestamp())
    body = b'{"id":"n-2","type":"alerts.spend_threshold_reached","properties":{}}'
    headers = signed_headers([new, old], "n-2", timestamp, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
    assert headers["metronome-webhook-signature"] == metronome_signature(new, headers["date"], body)
    assert headers["x-metronome-date"] == headers["date"] == http_date(timestamp)


def test_generated_secrets_are_valid_and_distinct() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    assert validate_secret(first) == first


@pytest.mark.parametrize(
    "secret", ["plain-text-secret", "whsec_", "whsec_" + "A" * 8, "whsec_not base64!!", "whsec_" + "A" * 100]
)
def test_unusable_secrets_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_secret(secret)
    assert secret not in refused.value.message or secret == "whsec_"


def test_the_schedule_waits_5s_5min_30min_and_stops_at_72_hours() -> None:
    first = 0
    at, times = first, [first]
    for attempt in range(1, 20):
        decided = retry.outcome(
            503, None, attempts_in_round=attempt, first_attempt_at_us=first, attempted_at_us=at, jitter=0.5
        )
        if decided.next_attempt_at_us is None:
            assert decided.state == retry.FAILED
            break
        at = decided.next_attempt_at_us
        times.append(at)
    delays_s = [(b - a) // US_PER_SECOND for a, b in pairwise(times)]
    assert delays_s[:8] == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000]
    assert times[-1] == 72 * US_PER_HOUR  # the tenth attempt, cut to the limit, is the last
    assert len(times) == 10


def test_jitter_stays_within_ten_percent() -> None:
    for jitter, expected_s in ((0.0, 270), (0.999999, 330)):
        decided = retry.outcome(
            500, None, attempts_in_round=2, first_attempt_at_us=0, attempted_at_us=0, jitter=jitter
        )
        assert decided.next_attempt_at_us is not None
        assert abs(decided.next_attempt_at_us / US_PER_SECOND - expected_s) < 0.01


def test_retry_after_is_a_lower_bound_capped_at_the_limit() -> None:
    def next_at(retry_after: str | None, attempted_at_us: int = 0) -> int | None:
        return retry.outcome(
            429,
            retry_after,
            attempts_in_round=1,
            first_attempt_at_us=0,
            attempted_at_us=attempted_at_us,
            jitter=0.5,
        ).next_attempt_at_us

    assert next_at("120") == 120 * US_PER_SECOND
    assert next_at("1") == 5 * US_PER_SECOND  # the schedule's delay is longer
    assert next_at("999999999") == 72 * US_PER_HOUR
    assert next_at("Thu, 01 Jan 1970 00:10:00 GMT") == 600 * US_PER_SECOND
    assert next_at("not a date") == 5 * US_PER_SECOND


def test_success_and_gone() -> None:
    ok = retry.outcome(204, None, attempts_in_round=1, first_attempt_at_us=0, attempted_at_us=0, jitter=0.5)
    gone = retry.outcome(410, None, attempts_in_round=1, first_attempt_at_us=0, attempted_at_us=0, jitter=0.5)
    assert (ok.state, ok.next_attempt_at_us) == (retry.SUCCEEDED, None)
    assert (gone.state, gone.disable_endpoint) == (retry.FAILED, True)


def test_without_a_filter_resolved_types_are_left_out() -> None:
    assert wants(None, "alerts.spend_threshold_reached")
    assert not wants(None, "alerts.spend_threshold_reached_resolved")
    assert wants(["alerts.spend_threshold_reached_resolved"], "alerts.spend_threshold_reached_resolved")
    assert not wants(["alerts.spend_threshold_reached_resolved"], "alerts.spend_threshold_reached")


def test_filters_and_urls_are_validated() -> None:
    assert validate_event_types(["alerts.usage_threshold_reached", "alerts.usage_threshold_reached"]) == [
        "alerts.usage_threshold_reached"
    ]
    for bad_types in ([], ["alerts.nonsense"], ["spend_threshold_reached"]):
        with pytest.raises(InvalidInput):
            validate_event_types(bad_types)
    assert validate_url("https://example.com/hooks?x=1") == "https://example.com/hooks?x=1"
    for bad_url in ("ftp://example.com", "example.com/hooks", "http://", "http://a b.com", "http://x:99999/"):
        with pytest.raises(InvalidInput):
            validate_url(bad_url)


def test_one_signer_signs_attempt_after_attempt_as_if_each_were_signed_alone() -> None:
    """The dispatcher keeps an endpoint's keys between attempts: every attempt's signatures are
    still those of its own date, id and body, and verify."""
    new, old = generate_secret(), generate_secret()
    signer = Signer([new, old])
    timestamp = int(datetime.now(UTC).timestamp())
    for k, at in enumerate((timestamp, timestamp, timestamp + 1)):
        body = b'{"id":"n-%d","properties":{"k":%d}}' % (k, k)
        headers = signer.headers(f"n-{k}", at, body)
        assert headers == signed_headers([new, old], f"n-{k}", at, body)
        assert headers["metronome-webhook-signature"] == metronome_signature(new, http_date(at), body)
        for secret in (new, old):
            Webhook(secret).verify(body, headers)
