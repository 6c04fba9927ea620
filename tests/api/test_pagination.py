"""Every list endpoint pages the same way: one `limit` rule, and cursors only this server issued.

A forged, truncated, tampered or non-base64 cursor, or another list's, is a 400 naming the cursor
field (`next_page: invalid cursor`), never a 500 and never a query the server did not issue; the
cursors a list hands out walk every item exactly once; and every API process on one database
accepts the others' cursors. Raw HTTP against real servers, on both backends.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, format_rfc3339, now_us
from tests.support.server import RunningServer, start_server

MAX_PAGE_SIZE = 100  # METERLINE_MAX_PAGE_SIZE's default
CONTRACTS_MAX_PAGE = 20  # Metronome's range for contracts/list


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as c:
        yield c


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def new_customer(http: httpx.Client) -> str:
    customer_id: str = ok(http.post("/v1/customers", json={"name": f"pages-{uuid.uuid4().hex}"}))["data"][
        "id"
    ]
    return customer_id


@dataclass(frozen=True)
class Catalog:
    customer_id: str
    metric_id: str
    rate_card_id: str


@pytest.fixture
def catalog(http: httpx.Client) -> Catalog:
    metric = ok(
        http.post(
            "/v1/billable-metrics/create",
            # Counting no event: the server is shared with tests that count every metric an event matches.
            json={
                "name": f"pages-{uuid.uuid4().hex}",
                "aggregation_type": "COUNT",
                "event_type_filter": {"in_values": ["pages-never-sent"]},
            },
        )
    )["data"]["id"]
    card = ok(http.post("/v1/contract-pricing/rate-cards/create", json={"name": "pages"}))["data"]["id"]
    return Catalog(new_customer(http), metric, card)


@dataclass(frozen=True)
class ListEndpoint:
    """How to ask one list for a page: its request, with `cursor` and `limit` where it reads them."""

    name: str
    ask: Callable[[httpx.Client, Catalog, str | None, int | None], httpx.Response]
    cursor_field: str = "next_page"
    max_size: int = MAX_PAGE_SIZE


def _query(cursor: str | None, limit: int | None, **more: Any) -> dict[str, Any]:
    params = {k: v for k, v in {"next_page": cursor, "limit": limit}.items() if v is not None}
    return {**params, **more}


def _body(cursor: str | None, limit: int | None, field: str = "next_page", **more: Any) -> dict[str, Any]:
    return {**{k: v for k, v in {field: cursor, "limit": limit}.items() if v is not None}, **more}


HOUR = (now_us() // US_PER_HOUR) * US_PER_HOUR
RANGE = {"starting_on": format_rfc3339(HOUR - US_PER_DAY), "ending_before": format_rfc3339(HOUR)}

LISTS = [
    ListEndpoint("customers", lambda h, _c, cur, lim: h.get("/v1/customers", params=_query(cur, lim))),
    ListEndpoint(
        "credit types", lambda h, _c, cur, lim: h.get("/v1/credit-types/list", params=_query(cur, lim))
    ),
    ListEndpoint(
        "billable metrics", lambda h, _c, cur, lim: h.get("/v1/billable-metrics", params=_query(cur, lim))
    ),
    ListEndpoint(
        "customer billable metrics",
        lambda h, c, cur, lim: h.get(
            f"/v1/customers/{c.customer_id}/billable-metrics", params=_query(cur, lim)
        ),
    ),
    ListEndpoint(
        "products",
        lambda h, _c, cur, lim: h.post(
            "/v1/contract-pricing/products/list", params=_query(cur, lim), json={}
        ),
    ),
    ListEndpoint(
        "rate cards",
        lambda h, _c, cur, lim: h.post(
            "/v1/contract-pricing/rate-cards/list", params=_query(cur, lim), json={}
        ),
    ),
    ListEndpoint(
        "rates",
        lambda h, c, cur, lim: h.post(
            "/v1/contract-pricing/rate-cards/getRates",
            params=_query(cur, lim),
            json={"rate_card_id": c.rate_card_id, "at": RANGE["starting_on"]},
        ),
    ),
    ListEndpoint(
        "contracts",
        lambda h, c, cur, lim: h.post(
            "/v1/contracts/list", json=_body(cur, lim, "cursor", customer_id=c.customer_id)
        ),
        cursor_field="cursor",
        max_size=CONTRACTS_MAX_PAGE,
    ),
    ListEndpoint(
        "customer commits",
        lambda h, c, cur, lim: h.post(
            "/v1/contracts/customerCommits/list", json=_body(cur, lim, customer_id=c.customer_id)
        ),
    ),
    ListEndpoint(
        "customer credits",
        lambda h, c, cur, lim: h.post(
            "/v1/contracts/customerCredits/list", json=_body(cur, lim, customer_id=c.customer_id)
        ),
    ),
    ListEndpoint(
        "customer balances",
        lambda h, c, cur, lim: h.post(
            "/v1/contracts/customerBalances/list", json=_body(cur, lim, customer_id=c.customer_id)
        ),
    ),
    ListEndpoint(
        "invoices",
        lambda h, c, cur, lim: h.get(f"/v1/customers/{c.customer_id}/invoices", params=_query(cur, lim)),
    ),
    ListEndpoint(
        "costs",
        lambda h, c, cur, lim: h.get(
            f"/v1/customers/{c.customer_id}/costs", params=_query(cur, lim, **RANGE)
        ),
    ),
    ListEndpoint(
        "customer alerts",
        lambda h, c, cur, lim: h.post(
            "/v1/customer-alerts/list", params=_query(cur, lim), json={"customer_id": c.customer_id}
        ),
    ),
    ListEndpoint(
        "usage groups",
        lambda h, c, cur, lim: h.post(
            "/v1/usage/groups",
            params=_query(cur, lim),
            json={
                "customer_id": c.customer_id,
                "billable_metric_id": c.metric_id,
                "window_size": "HOUR",
                **RANGE,
            },
        ),
    ),
    ListEndpoint(
        "webhook endpoints",
        lambda h, _c, cur, lim: h.post("/v1/webhooks/endpoints/list", json=_body(cur, lim)),
    ),
    ListEndpoint(
        "webhook deliveries",
        lambda h, _c, cur, lim: h.post("/v1/webhooks/deliveries/list", json=_body(cur, lim)),
    ),
]
# /v1/usage sets its page size itself (about 1,000 rows): it takes a cursor, never a `limit`.
USAGE = ListEndpoint(
    "usage",
    lambda h, _c, cur, _lim: h.post(
        "/v1/usage", params=_query(cur, None), json={"window_size": "DAY", **RANGE}
    ),
)


def _customers_cursor(http: httpx.Client) -> str:
    """A genuine cursor of the customers list (two customers make sure there is a next page)."""
    new_customer(http)
    new_customer(http)
    cursor: str = ok(http.get("/v1/customers", params={"limit": 1}))["next_page"]
    assert cursor
    return cursor


def _credit_types_cursor(http: httpx.Client) -> str:
    ok(http.post("/v1/credit-types/create", json={"name": f"pages-{uuid.uuid4().hex}"}))
    cursor: str = ok(http.get("/v1/credit-types/list", params={"limit": 1}))["next_page"]
    assert cursor
    return cursor


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def bad_cursors(http: httpx.Client, endpoint: ListEndpoint) -> dict[str, str]:
    genuine = _customers_cursor(http)
    payload, _dot, signature = genuine.partition(".")
    foreign = _credit_types_cursor(http) if endpoint.name == "customers" else genuine
    return {
        "forged": "eyJ4IjoxfQ",  # {"x":1}, as the old unsigned cursors were
        "forged unsigned id": _b64(b'"00000000-0000-0000-0000-000000000000"'),
        "truncated": genuine[: len(genuine) // 2],
        "not base64": "!!not*base64!!",
        "empty signature": payload + ".",
        "another list's": foreign,
        "tampered signature": f"{payload}.{_flip_last(signature)}",
        "tampered position": _b64(b'["customers",{"x":1}]') + "." + signature,
    }


@pytest.mark.parametrize("endpoint", [*LISTS, USAGE], ids=lambda e: e.name)
def test_a_cursor_the_server_did_not_issue_for_this_list_is_a_400(
    http: httpx.Client, catalog: Catalog, endpoint: ListEndpoint
) -> None:
    assert ok(endpoint.ask(http, catalog, None, None))["data"] is not None  # the request is right
    for kind, cursor in bad_cursors(http, endpoint).items():
        response = endpoint.ask(http, catalog, cursor, None)
        assert response.status_code == 400, (kind, response.text)
        assert response.json() == {"message": f"{endpoint.cursor_field}: invalid cursor"}, kind


@pytest.mark.parametrize("endpoint", LISTS, ids=lambda e: e.name)
def test_every_list_bounds_limit_with_the_same_rule(
    http: httpx.Client, catalog: Catalog, endpoint: ListEndpoint
) -> None:
    expected = {"message": f"limit: must be between 1 and {endpoint.max_size}"}
    for limit in (0, -1, endpoint.max_size + 1):
        response = endpoint.ask(http, catalog, None, limit)
        assert (response.status_code, response.json()) == (400, expected), limit
    assert ok(endpoint.ask(http, catalog, None, endpoint.max_size))["data"] is not None


def test_the_issue_example_is_a_400(http: httpx.Client) -> None:
    response = http.get("/v1/customers", params={"next_page": "eyJ4IjoxfQ"})
    assert (response.status_code, response.json()) == (400, {"message": "next_page: invalid cursor"})


def walk(http: httpx.Client, path: str, params: dict[str, Any]) -> list[str]:
    """Every id a list returns, following its cursors to the end."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = ok(http.get(path, params={**params, **({"next_page": cursor} if cursor else {})}))
        ids.extend(item["id"] for item in page["data"])
        cursor = page["next_page"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_following_the_cursors_returns_every_item_exactly_once(http: httpx.Client, limit: int) -> None:
    created = sorted(new_customer(http) for _ in range(7))
    got = walk(http, "/v1/customers", {"customer_ids": created, "limit": limit})
    assert got == created  # each once, in id order, whatever the page size


@pytest.mark.slow
def test_every_api_process_on_one_database_accepts_the_others_cursors(
    own_database_url: str, tmp_path: Path
) -> None:
    """With no METERLINE_SECRET_KEY: the key generated in the database is every process's."""
    quiet = {
        "METERLINE_EVALUATOR_ENABLED": "false",
        "METERLINE_WEBHOOKS_ENABLED": "false",
        "METERLINE_SECRET_KEY": "",  # unset (the tests' servers on PostgreSQL share one otherwise)
    }
    first_server = start_server(own_database_url, tmp_path, **quiet)
    try:
        second_server = start_server(own_database_url, tmp_path, token=first_server.token, **quiet)
        try:
            with (
                httpx.Client(
                    base_url=first_server.base_url, headers=first_server.headers(), timeout=30
                ) as one,
                httpx.Client(
                    base_url=second_server.base_url, headers=second_server.headers(), timeout=30
                ) as two,
            ):
                created = sorted(new_customer(one) for _ in range(3))
                first = ok(one.get("/v1/customers", params={"customer_ids": created, "limit": 1}))
                rest = ok(
                    two.get(
                        "/v1/customers",
                        params={"customer_ids": created, "limit": 5, "next_page": first["next_page"]},
                    )
                )
        finally:
            second_server.stop()
    finally:
        first_server.stop()
    assert [first["data"][0]["id"], *(c["id"] for c in rest["data"])] == created
