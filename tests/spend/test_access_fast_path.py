"""Checks and reservations whose bodies the fast path takes answer as the declared routes do, and
every body it does not take still gets the declared route's answer: the same refusals, naming
the field and the rule, and exact amounts however they are written."""

from __future__ import annotations

from decimal import Decimal

import httpx
from metronome import Metronome

from tests.sdk.alert_helpers import billed_customer
from tests.sdk.helpers import uid
from tests.spend.helpers import Extensions, Json
from tests.support.server import RunningServer


def _reserve(api: Extensions, customer_id: str, amount: object, **fields: object) -> httpx.Response:
    body = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": amount, **fields}
    return api.post("/v1/access/reserve", body)


def _granted(answer: httpx.Response) -> Json:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["server-timing"].startswith("app;dur=")
    found: Json = answer.json(parse_float=Decimal)["data"]
    return found


def test_a_check_refused_names_the_field_and_the_rule(api: Extensions, server: RunningServer) -> None:
    assert api.refused("/v1/access/check", {"customer_ids": ["c"], "extra": 1}) == "extra: unknown field"
    assert api.refused("/v1/access/check", {"customer_ids": "c"}).startswith("customer_ids: ")
    assert api.refused("/v1/access/check", {"customer_ids": [7]}).startswith("customer_ids.0: ")
    not_json = api.http.post("/v1/access/check", content=b'{"customer_ids": [')
    assert not_json.status_code == 400 and not_json.json()["message"].startswith("body: is not valid JSON")
    asked_with_get = api.http.request("GET", "/v1/access/check", json={"customer_ids": ["c"]})
    assert asked_with_get.status_code == 405
    assert asked_with_get.json()["message"] == "method GET is not allowed on /v1/access/check"
    anonymous = httpx.post(f"{server.base_url}/v1/access/check", json={"customer_ids": ["c"]})
    assert anonymous.status_code == 401


def test_a_check_answers_each_customer_in_order(client: Metronome, api: Extensions) -> None:
    alias = f"fast-{uid()}"
    customer_id = client.v1.customers.create(name="Fast", ingest_aliases=[alias]).data.id
    answer = api.post("/v1/access/check", {"customer_ids": [alias, "nobody", customer_id]})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    found = answer.json()["data"]
    assert [(d["customer_id"], d["has_access"]) for d in found] == [
        (alias, True),
        ("nobody", False),
        (customer_id, True),
    ]
    assert answer.headers["server-timing"].startswith("app;dur=")


def test_amounts_are_exact_however_they_are_written(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1)
    # Three tenths as a number, as a string, and with more places than the fast path reads.
    assert _granted(_reserve(api, customer_id, 0.1))["remaining"] == Decimal("0.9")
    assert _granted(_reserve(api, customer_id, "0.1"))["remaining"] == Decimal("0.8")
    written_long = "0.100000000000000000"  # 18 places: within the declared rule, beyond the fast one
    assert _granted(_reserve(api, customer_id, written_long))["remaining"] == Decimal("0.7")
    assert _granted(_reserve(api, customer_id, "7E-1")) == {
        "granted": True,
        "reason": None,
        "remaining": Decimal("0"),
    }


def test_a_reservation_refused_names_the_field_and_the_rule(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)

    def refused(amount: object, **fields: object) -> str:
        answer = _reserve(api, customer_id, amount, **fields)
        assert answer.status_code == 400, answer.text
        message: str = answer.json()["message"]
        return message

    assert refused(0).startswith("amount: ")
    assert refused(-5).startswith("amount: ")
    assert refused("1e50").startswith("amount: ")
    assert refused("0." + "0" * 24 + "1").startswith("amount: ")
    assert refused(5, expires_in_seconds=0).startswith("expires_in_seconds: ")
    assert refused(5, colour="red") == "colour: unknown field"
    assert "NUL" in refused(5, reservation_id="res\x00nul")
    # None of them held anything.
    assert _granted(_reserve(api, customer_id, 1000))["remaining"] == Decimal("0")
