"""The rules every route's input passes at the edge, through a real server on both backends:
lone surrogates, deep nesting, numbers beyond the documented bound, undecodable URLs. Each is a
400 naming the field and the rule; nothing of the request is applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from meterline.domain.timeutil import format_rfc3339, now_us
from tests.support.server import RunningServer

SURROGATE = "must be valid Unicode (no lone surrogates)"
NUMBER = "must be a number with at most 40 digits before the decimal point and 40 after it"


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as c:
        yield c


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"}
    return str(body["message"])


def event_json(transaction_id: str, properties: str = "{}") -> str:
    return (
        f'{{"transaction_id": "{transaction_id}", "customer_id": "edge", "event_type": "call", '
        f'"timestamp": "{format_rfc3339(now_us())}", "properties": {properties}}}'
    )


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/events/search", '{"transactionIds": ["\\ud800"]}', f"transactionIds[0]: {SURROGATE}"),
        ("/v1/customers", '{"name": "a\\udfffb"}', f"name: {SURROGATE}"),
        (
            "/v1/customers",
            '{"name": "x", "ingest_aliases": ["ok", "\\udc00"]}',
            f"ingest_aliases[1]: {SURROGATE}",
        ),
        ("/v1/billable-metrics/create", '{"name": "m", "\\ud800": 1}', f"\\ud800: keys {SURROGATE}"),
        (
            "/v1/ingest",
            "[" + event_json("a") + ", " + event_json("\\ud800") + "]",
            f"events[1].transaction_id: {SURROGATE}",
        ),
        (
            "/v1/ingest",
            "[" + event_json("b", '{"model": "\\udbff"}') + "]",
            f"events[0].properties.model: {SURROGATE}",
        ),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(
    client: httpx.Client, path: str, body: str, expected: str
) -> None:
    assert refused(client.post(path, content=body.encode())) == expected


def test_a_valid_surrogate_pair_is_text(client: httpx.Client) -> None:
    created = client.post("/v1/customers", content=b'{"name": "smile \\ud83d\\ude00"}')
    assert created.status_code == 200, created.text
    customer = client.get(f"/v1/customers/{created.json()['data']['id']}").json()["data"]
    assert customer["name"] == "smile \U0001f600"


@pytest.mark.parametrize("path", ["/v1/ingest", "/v1/customers", "/v1/usage", "/v1/alerts/create"])
@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_nesting_is_refused_on_every_parser(client: httpx.Client, path: str, depth: int) -> None:
    body = "[" * depth + "]" * depth
    message = refused(client.post(path, content=body.encode()))
    if path == "/v1/ingest" and depth < 1000:
        assert message == "events[0]: must be a JSON object"  # a batch's shape is checked first
    else:
        assert message.endswith("must not nest deeper than 32 levels")


def test_deep_property_values_are_refused_and_nothing_is_stored(client: httpx.Client) -> None:
    good, deep = f"edge-{uuid.uuid4().hex}", f"edge-{uuid.uuid4().hex}"
    nested = '{"a": ' * 30 + "1" + "}" * 30
    body = "[" + event_json(good) + ", " + event_json(deep, '{"tree": ' + nested + "}") + "]"
    message = refused(client.post("/v1/ingest", content=body.encode()))
    assert message == "events[1].properties.tree: must not nest deeper than 32 levels"
    assert client.post("/v1/events/search", json={"transactionIds": [good, deep]}).json() == []


@pytest.mark.parametrize("number", ["1" + "0" * 40, "1e999999999", "-1e999999999", '"1e50"', "1e-41"])
def test_numbers_beyond_the_bound_are_refused_at_ingest_by_property(
    client: httpx.Client, number: str
) -> None:
    tid = f"edge-{uuid.uuid4().hex}"
    body = "[" + event_json(f"{tid}-ok") + ", " + event_json(tid, '{"tokens": ' + number + "}") + "]"
    assert (
        refused(client.post("/v1/ingest", content=body.encode())) == f"events[1].properties.tokens: {NUMBER}"
    )
    assert client.post("/v1/events/search", json={"transactionIds": [tid, f"{tid}-ok"]}).json() == []


def test_numbers_at_the_bound_are_accepted(client: httpx.Client) -> None:
    number = "9" * 40 + "." + "9" * 40
    body = "[" + event_json(f"edge-{uuid.uuid4().hex}", '{"tokens": ' + number + "}") + "]"
    assert client.post("/v1/ingest", content=body.encode()).status_code == 200


@pytest.mark.parametrize("path", ["/v1/alerts/create", "/v1/contracts/list", "/v1/usage"])
@pytest.mark.parametrize("number", ["1e999999999", "9" * 5000])
def test_huge_numbers_in_any_body_are_refused_at_once(client: httpx.Client, path: str, number: str) -> None:
    assert refused(client.post(path, content=f'{{"threshold": {number}}}'.encode())).endswith(NUMBER)
    assert refused(client.post(path, content=number.encode())) == f"body: {NUMBER}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v1/customers/%ED%A0%80", "path: must be valid UTF-8 once percent-decoded"),
        ("/v1/customers?next_page=%FF", "query: must be valid UTF-8 once percent-decoded"),
    ],
)
def test_undecodable_urls_are_refused(client: httpx.Client, url: str, expected: str) -> None:
    assert refused(client.get(url)) == expected


def test_invalid_utf8_bodies_are_refused(client: httpx.Client) -> None:
    assert (
        refused(client.post("/v1/customers", content=b'{"name": "\xed\xa0\x80"}'))
        == "body: must be valid UTF-8"
    )
