"""Reservations through a real server: an amount held against the hard spend limit is granted only
while spend plus what is held stays under it, even for 64 clients at once; a reservation ends when
released, settled by the usage event carrying its id, or expired; asking again with the same id
never reserves twice."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from metronome import Metronome

from tests.sdk.alert_helpers import billed_customer, use
from tests.sdk.helpers import settle, uid
from tests.spend.helpers import Extensions, Json
from tests.support.server import RunningServer


def reserve(
    api: Extensions, customer_id: str, amount: Any, reservation_id: str | None = None, **fields: Any
) -> Json:
    body = {
        "customer_id": customer_id,
        "reservation_id": reservation_id or f"res-{uid()}",
        "amount": amount,
        **fields,
    }
    found: Json = api.ok("/v1/access/reserve", body)["data"]
    return found


def release(api: Extensions, reservation_id: str) -> str:
    status: str = api.ok("/v1/access/release", {"reservation_id": reservation_id})["data"]["status"]
    return status


def test_granted_while_spend_and_held_stay_under_the_hard_limit(client: Metronome, api: Extensions) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=10000)
    use(client, customer_id, usage, 20)  # 2,000 cents spent
    settle(client)
    assert reserve(api, customer_id, 5000) == {"granted": True, "reason": None, "remaining": 3000}
    assert reserve(api, customer_id, 3000) == {"granted": True, "reason": None, "remaining": 0}
    assert reserve(api, customer_id, "0.01") == {
        "granted": False,
        "reason": "would_pass_hard_limit",
        "remaining": 0,
    }


def test_release_gives_the_amount_back(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    held = f"res-{uid()}"
    assert reserve(api, customer_id, 800, held)["granted"]
    assert reserve(api, customer_id, 300) == {
        "granted": False,
        "reason": "would_pass_hard_limit",
        "remaining": 200,
    }
    assert release(api, held) == "released"
    assert release(api, held) == "released"  # again: nothing more to give back
    assert reserve(api, customer_id, 300) == {"granted": True, "reason": None, "remaining": 700}


def test_the_usage_event_carrying_its_id_settles_it_once_evaluated(
    client: Metronome, api: Extensions
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=10000)
    held = f"res-{uid()}"
    assert reserve(api, customer_id, 600, held)["remaining"] == 9400
    use(client, customer_id, usage, 5, reservation_id=held)  # costs 500 of the 600 held
    settle(client)
    # Counted once, as spend (500), not also as held (600): 9,500 are left.
    assert api.limits(customer_id)["current_spend"] == 500
    assert reserve(api, customer_id, 9500) == {"granted": True, "reason": None, "remaining": 0}
    assert release(api, held) == "settled"


def test_a_usage_event_of_another_customer_settles_nothing(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    other, other_usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    held = f"res-{uid()}"
    assert reserve(api, customer_id, 1000, held)["granted"]
    use(client, other, other_usage, 1, reservation_id=held)
    settle(client)
    assert reserve(api, customer_id, 1)["granted"] is False
    assert release(api, held) == "released"


def test_expiry_releases_it(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    held = f"res-{uid()}"
    assert reserve(api, customer_id, 900, held, expires_in_seconds=1)["granted"]
    assert reserve(api, customer_id, 200)["granted"] is False
    time.sleep(1.2)
    assert reserve(api, customer_id, 200) == {"granted": True, "reason": None, "remaining": 800}
    assert release(api, held) == "expired"
    assert reserve(api, customer_id, 900, held) == {
        "granted": False,
        "reason": "reservation_expired",
        "remaining": 800,
    }


def test_asking_again_with_the_same_id_never_reserves_twice(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    held = f"res-{uid()}"
    first = reserve(api, customer_id, 700, held)
    assert first == {"granted": True, "reason": None, "remaining": 300}
    assert reserve(api, customer_id, "700.00", held) == first
    message = api.refused(
        "/v1/access/reserve", {"customer_id": customer_id, "reservation_id": held, "amount": 701}, status=409
    )
    assert message.startswith(f"reservation_id: {held} already reserves 700")
    assert release(api, held) == "released"
    assert reserve(api, customer_id, 700, held) == {
        "granted": False,
        "reason": "reservation_released",
        "remaining": 1000,
    }


def test_without_a_hard_limit_everything_is_granted(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, soft_limit=10)
    assert reserve(api, customer_id, 10**9) == {"granted": True, "reason": None, "remaining": None}


def test_an_archived_customer_is_refused(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    client.v1.customers.archive(id=customer_id)
    assert reserve(api, customer_id, 1) == {
        "granted": False,
        "reason": "customer_archived",
        "remaining": None,
    }


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": 8 * 24 * 3600}, "expires_in_seconds"),
        ({"reservation_id": ""}, "reservation_id"),
        ({"reservation_id": "r" * 129}, "reservation_id"),
        ({"credit_type_id": "no-such-unit"}, "no-such-unit"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_bad_requests_name_the_field_and_hold_nothing(
    client: Metronome, api: Extensions, fields: Json, named: str
) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=100)
    body = {"customer_id": customer_id, "reservation_id": uid(), "amount": 50, **fields}
    assert named in api.refused("/v1/access/reserve", body)
    assert reserve(api, customer_id, 100)["granted"]  # nothing was held by the refused request


def test_unknown_customer_or_reservation_is_not_found(api: Extensions) -> None:
    missing = uid()
    assert missing in api.refused(
        "/v1/access/reserve", {"customer_id": missing, "reservation_id": uid(), "amount": 1}, status=404
    )
    assert missing in api.refused("/v1/access/release", {"reservation_id": missing}, status=404)


def test_64_concurrent_clients_never_pass_the_hard_limit(
    client: Metronome, api: Extensions, server: RunningServer
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=10000)
    use(client, customer_id, usage, 7)  # 700 cents spent: 9,300 left, room for 31 of 300
    settle(client)

    def one(_: int) -> Json:
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as http:
            answer = Extensions(http).ok(
                "/v1/access/reserve", {"customer_id": customer_id, "reservation_id": uid(), "amount": 300}
            )
        found: Json = answer["data"]
        return found

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(64)))
    granted = [a for a in answers if a["granted"]]
    assert 700 + 300 * len(granted) <= 10000
    assert len(granted) == 31  # and every reservation that fitted was granted
    assert sorted(a["remaining"] for a in granted) == [9300 - 300 * n for n in range(31, 0, -1)]
    assert {a["reason"] for a in answers if not a["granted"]} == {"would_pass_hard_limit"}
