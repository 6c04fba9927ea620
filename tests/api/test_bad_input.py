"""Bad input is refused with a 4xx that names the field, nothing of a refused batch is stored, and
no input at all makes the server answer 500. Raw HTTP against a real server, on both backends."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, format_rfc3339, now_us
from tests.support.server import RunningServer

MAX_BODY_BYTES = 1_048_576


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as c:
        yield c


def event(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "transaction_id": f"bad-input-{uuid.uuid4().hex}",
        "customer_id": "bad-input-customer",
        "event_type": "call",
        "timestamp": format_rfc3339(now_us()),
        "properties": {"bytes": 1},
    }
    fields.update(overrides)
    return fields


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"}
    message: str = body["message"]
    return message


def stored(client: httpx.Client, transaction_ids: list[str]) -> list[dict[str, Any]]:
    response = client.post("/v1/events/search", json={"transactionIds": transaction_ids})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


# -- /v1/ingest -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[{", "body: is not valid JSON"),
        (b"", "body: is not valid JSON"),
        (b"\xff\xfe", "body: must be valid UTF-8"),
        (b"[]", "body: must hold between 1 and 100 events, got 0"),
        (b'{"transaction_id": "x"}', "body: must be a JSON array of usage events"),
        (b"null", "body: must be a JSON array of usage events"),
        (b'"events"', "body: must be a JSON array of usage events"),
        (b"[1]", "events[0]: must be a JSON object"),
        (b'["\\ud800"]', "events[0]: must be valid Unicode (no lone surrogates)"),
    ],
)
def test_ingest_refuses_bodies_that_are_not_event_arrays(
    client: httpx.Client, body: bytes, expected: str
) -> None:
    assert refused(client.post("/v1/ingest", content=body)).startswith(expected)


def test_ingest_refuses_more_than_100_events_and_stores_none(client: httpx.Client) -> None:
    batch = [event() for _ in range(101)]
    message = refused(client.post("/v1/ingest", json=batch))
    assert message == "body: must hold between 1 and 100 events, got 101"
    ids = [e["transaction_id"] for e in batch]
    assert stored(client, ids[:100]) == [] and stored(client, ids[100:]) == []
    # 100 is fine.
    assert client.post("/v1/ingest", json=batch[:100]).status_code == 200


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"transaction_id": 7}, "events[2].transaction_id: must be a string, got number"),
        ({"customer_id": None}, "events[2].customer_id: is required"),
        ({"customer_id": ["a"]}, "events[2].customer_id: must be a string, got array"),
        ({"event_type": ""}, "events[2].event_type: must not be empty"),
        ({"timestamp": 1767225600}, "events[2].timestamp: must be a string, got number"),
        ({"timestamp": "2026-01-01"}, "events[2].timestamp: must be an RFC 3339 timestamp"),
        ({"timestamp": "yesterday"}, "events[2].timestamp: must be an RFC 3339 timestamp"),
        (
            {"timestamp": format_rfc3339(now_us() + 25 * US_PER_HOUR)},
            "events[2].timestamp: must not be more than 24 hours in the future",
        ),
        (
            {"timestamp": format_rfc3339(now_us() - 35 * US_PER_DAY)},
            "events[2].timestamp: must not be more than 34 days in the past",
        ),
        ({"properties": [1]}, "events[2].properties: must be an object, got array"),
        ({"properties": "x"}, "events[2].properties: must be an object, got string"),
        ({"colour": "red"}, "events[2].colour: unknown field"),
        ({"transaction_id": "t" * 129}, "events[2].transaction_id: must be at most 128 characters"),
    ],
)
def test_one_bad_event_refuses_the_whole_batch_naming_it(
    client: httpx.Client, bad: dict[str, Any], expected: str
) -> None:
    good = [event() for _ in range(4)]
    batch: list[Any] = [*good[:2], event(**bad), *good[2:]]
    message = refused(client.post("/v1/ingest", json=batch))
    assert message.startswith(expected), message
    assert stored(client, [e["transaction_id"] for e in good]) == []


def test_missing_fields_are_each_named(client: httpx.Client) -> None:
    bare: dict[str, Any] = {}
    message = refused(client.post("/v1/ingest", json=[event(), bare]))
    for name in ("transaction_id", "customer_id", "event_type", "timestamp"):
        assert f"events[1].{name}: is required" in message


def test_every_problem_of_a_batch_is_reported(client: httpx.Client) -> None:
    batch = [event(), event(customer_id=1), event(), event(event_type=None, extra=True)]
    message = refused(client.post("/v1/ingest", json=batch))
    assert message.split("; ") == [
        "events[1].customer_id: must be a string, got number",
        "events[3].extra: unknown field",
        "events[3].event_type: is required",
    ]
    assert stored(client, [batch[0]["transaction_id"], batch[2]["transaction_id"]]) == []


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"customer_id": "c" * 257}, "customer_id"),
        ({"event_type": "e" * 257}, "event_type"),
        ({"customer_id": "a\x00b"}, "customer_id"),
        ({"transaction_id": "a\x00b"}, "transaction_id"),
    ],
)
def test_ids_the_log_cannot_keep_are_refused_naming_the_field(
    client: httpx.Client, bad: dict[str, Any], field: str
) -> None:
    message = refused(client.post("/v1/ingest", json=[event(), event(**bad)]))
    assert message.startswith(f"events[1].{field}: must ")


def test_unstorable_ids_never_fail_other_requests_or_answer_500(client: httpx.Client) -> None:
    """Whatever the fast path lets through, the client gets a 4xx (never a retryable 5xx) and a good
    request committed alongside it is stored."""
    good = [event() for _ in range(3)]
    for bad in ({"customer_id": "c" * 300}, {"event_type": "e\x00"}):
        response = client.post("/v1/ingest", json=[event(**bad)])
        assert response.status_code in (200, 400), response.text
        assert client.post("/v1/ingest", json=good).status_code == 200
    assert len(stored(client, [e["transaction_id"] for e in good])) == 3


def test_body_over_one_mebibyte_is_refused_with_413(client: httpx.Client) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)
    batch = [event(properties={"padding": padding})]
    assert refused(client.post("/v1/ingest", json=batch), 413).startswith("body: must be at most")
    # Without a Content-Length (chunked), the limit holds while reading.
    body = json.dumps(batch).encode()
    chunked = client.post("/v1/ingest", content=iter([body[: len(body) // 2], body[len(body) // 2 :]]))
    assert refused(chunked, 413).startswith("body: must be at most")
    assert stored(client, [batch[0]["transaction_id"]]) == []


def test_gzip_bodies_are_accepted(client: httpx.Client) -> None:
    batch = [event(properties={"n": i, "text": "y" * 1000}) for i in range(50)]
    body = gzip.compress(json.dumps(batch).encode())
    response = client.post("/v1/ingest", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.content == b""
    found = stored(client, [e["transaction_id"] for e in batch])
    assert sorted(e["transaction_id"] for e in found) == sorted(e["transaction_id"] for e in batch)


def test_invalid_gzip_is_refused(client: httpx.Client) -> None:
    batch = [event()]
    headers = {"Content-Encoding": "gzip"}
    assert refused(client.post("/v1/ingest", content=json.dumps(batch).encode(), headers=headers)).startswith(
        "body: is not valid gzip data"
    )
    truncated = gzip.compress(json.dumps(batch).encode())[:-10]
    assert refused(client.post("/v1/ingest", content=truncated, headers=headers)).startswith("body: ")
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES * 4))
    assert refused(client.post("/v1/ingest", content=bomb, headers=headers), 413).startswith("body: ")
    assert refused(client.post("/v1/ingest", content=b"[]", headers={"Content-Encoding": "br"})).startswith(
        "Content-Encoding: "
    )
    assert stored(client, [batch[0]["transaction_id"]]) == []


# -- other endpoints ------------------------------------------------------------------------------
HOUR = "2026-01-01T00:00:00Z"
NEXT_DAY = "2026-01-02T00:00:00Z"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers", {"name": 5, "ingest_aliases": []}, "name"),
        ("/v1/customers", {"name": "n", "ingest_aliases": "alias"}, "ingest_aliases"),
        ("/v1/customers", {"name": "n", "ingest_aliases": [7]}, "ingest_aliases.0"),
        ("/v1/customers", {"name": ""}, "name"),
        ("/v1/customers", {"ingest_aliases": []}, "name"),
        ("/v1/customers", {"name": "n", "nickname": "x"}, "nickname"),
        ("/v1/customers", [{"name": "n"}], "body"),
        ("/v1/billable-metrics/create", {"name": "m", "aggregation_type": "AVERAGE"}, "aggregation_type"),
        ("/v1/billable-metrics/create", {"name": "m", "aggregation_type": "SUM"}, "aggregation_key"),
        (
            "/v1/billable-metrics/create",
            {"name": "m", "aggregation_type": "COUNT", "group_keys": "g"},
            "group_keys",
        ),
        (
            "/v1/billable-metrics/create",
            {"name": "m", "aggregation_type": "COUNT", "event_type_filter": {"in": ["a"]}},
            "event_type_filter.in",
        ),
        (
            "/v1/usage",
            {"starting_on": NEXT_DAY, "ending_before": HOUR, "window_size": "DAY"},
            "ending_before",
        ),
        ("/v1/usage", {"starting_on": HOUR, "ending_before": HOUR, "window_size": "DAY"}, "ending_before"),
        (
            "/v1/usage",
            {"starting_on": "2026-01-01T00:30:00Z", "ending_before": NEXT_DAY, "window_size": "HOUR"},
            "starting_on",
        ),
        (
            "/v1/usage",
            {"starting_on": HOUR, "ending_before": "2026-01-01T05:00:01Z", "window_size": "NONE"},
            "ending_before",
        ),
        ("/v1/usage", {"starting_on": HOUR, "ending_before": NEXT_DAY, "window_size": "WEEK"}, "window_size"),
        (
            "/v1/usage",
            {"starting_on": "soon", "ending_before": NEXT_DAY, "window_size": "DAY"},
            "starting_on",
        ),
        ("/v1/usage", {"ending_before": NEXT_DAY, "window_size": "DAY"}, "starting_on"),
        ("/v1/events/search", {"transactionIds": []}, "transactionIds"),
        ("/v1/events/search", {"transactionIds": "abc"}, "transactionIds"),
        ("/v1/events/search", {"transaction_ids": ["abc"]}, "transaction_ids"),
    ],
)
def test_bad_bodies_on_other_endpoints_name_the_field(
    client: httpx.Client, path: str, body: Any, field: str
) -> None:
    message = refused(client.post(path, json=body))
    assert message.startswith(f"{field}: ") or f"; {field}: " in message, message


@pytest.mark.parametrize(
    "path", ["/v1/customers", "/v1/billable-metrics/create", "/v1/usage", "/v1/events/search"]
)
@pytest.mark.parametrize("body", [b"{", b"", b"null", b"[]", b"42"])
def test_malformed_bodies_on_other_endpoints_are_400(client: httpx.Client, path: str, body: bytes) -> None:
    assert refused(client.post(path, content=body)).startswith("body")


# -- nothing a client sends makes the server fail ---------------------------------------------------
def archive_if_created(client: httpx.Client, path: str, response: httpx.Response) -> None:
    """Leave nothing active on the shared server: other tests count on knowing every live metric."""
    if response.status_code != 200:
        return
    archive = {
        "/v1/customers": "/v1/customers/archive",
        "/v1/billable-metrics/create": "/v1/billable-metrics/archive",
    }
    if path in archive:
        created = client.post(archive[path], json={"id": response.json()["data"]["id"]})
        assert created.status_code == 200, created.text


NEVER = {"in_values": ["bad-input-never-sent"]}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/customers", {"name": "a\x00b"}),
        ("/v1/customers", {"name": "n", "ingest_aliases": ["a\x00b"]}),
        (
            "/v1/billable-metrics/create",
            {"name": "m\x00", "aggregation_type": "COUNT", "event_type_filter": NEVER},
        ),
        (
            "/v1/usage",
            {"starting_on": HOUR, "ending_before": NEXT_DAY, "window_size": "DAY", "customer_ids": ["a\x00"]},
        ),
        ("/v1/ingest", [event(properties={"note": "a\x00b"}), event(customer_id="a\x00b")]),
    ],
)
def test_nul_characters_are_refused_on_both_backends(client: httpx.Client, path: str, body: Any) -> None:
    response = client.post(path, json=body)
    archive_if_created(client, path, response)
    assert refused(response).startswith(("body: ", "events[1].customer_id: ")), response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/v1/billable-metrics/create",
            {
                "name": "m",
                "aggregation_type": "SUM",
                "aggregation_key": "k" * 300,
                "event_type_filter": NEVER,
            },
        ),
        ("GET", "/v1/customers/a%00b", None),
    ],
)
def test_strings_postgresql_cannot_store_are_refused_not_500(
    client: httpx.Client, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body)
    archive_if_created(client, path, response)
    assert response.status_code == 400, response.text


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    # NUL and over-long strings are covered by the test above.
    st.text(st.characters(blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["", "COUNT", "SUM", "day", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = {
    "/v1/ingest": ["transaction_id", "customer_id", "event_type", "timestamp", "properties"],
    "/v1/customers": ["name", "ingest_aliases", "custom_fields", "external_id"],
    "/v1/billable-metrics/create": [
        "name",
        "aggregation_type",
        "aggregation_key",
        "event_type_filter",
        "property_filters",
        "group_keys",
    ],
    "/v1/usage": ["starting_on", "ending_before", "window_size", "customer_ids", "billable_metrics"],
    "/v1/usage/groups": [
        "customer_id",
        "billable_metric_id",
        "window_size",
        "starting_on",
        "ending_before",
        "group_by",
    ],
    "/v1/events/search": ["transactionIds"],
}


@st.composite
def request_bodies(draw: st.DrawFn) -> tuple[str, Any]:
    path = draw(st.sampled_from(sorted(FIELDS)))
    fields = st.dictionaries(st.sampled_from(FIELDS[path]), json_values, max_size=len(FIELDS[path]))
    body: Any = draw(fields)
    if path == "/v1/ingest":
        body = draw(st.lists(fields, min_size=0, max_size=3))
    return path, body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=request_bodies())
def test_no_body_makes_the_server_answer_500(client: httpx.Client, request: tuple[str, Any]) -> None:
    path, body = request
    response = client.post(path, content=json.dumps(body).encode())
    archive_if_created(client, path, response)
    assert response.status_code < 500, (path, body, response.text)
    if response.status_code != 200:
        assert set(response.json()) == {"message"}
