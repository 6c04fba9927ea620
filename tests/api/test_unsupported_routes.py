"""Every path of the official SDK is either served or answers 501 saying meterline lacks it.

The SDK's resource modules are read (tests/support/sdk_routes.py), so a route built later without
leaving the 501 table, or a path a newer SDK adds, fails here instead of answering `no route`.
"""

from __future__ import annotations

import re

import httpx
import pytest

from meterline.api.routes.unsupported import UNSUPPORTED
from tests.support.sdk_routes import sdk_routes
from tests.support.server import RunningServer

Route = tuple[str, str]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "x", path)


@pytest.fixture(scope="module")
def served(server: RunningServer) -> set[Route]:
    """(method, path shape) of every route in the server's OpenAPI document."""
    # Building the document takes seconds on a busy machine.
    document = httpx.get(f"{server.base_url}/openapi.json", headers=server.headers(), timeout=30).json()
    return {
        (method.upper(), _shape(path)) for path, methods in document["paths"].items() for method in methods
    }


def test_every_sdk_path_is_served_or_listed_as_unsupported(served: set[Route]) -> None:
    sdk = {(m, _shape(p)) for m, p in sdk_routes()}
    listed = {(m, _shape(p)) for m, p in UNSUPPORTED}
    assert len(sdk) > 100  # the SDK's sources were found and read
    assert not sdk - served - listed, "SDK paths neither served nor answering 501"
    assert not listed & served, "served now: remove them from UNSUPPORTED"
    assert not listed - sdk, "not an SDK path (any more): remove them from UNSUPPORTED"


def test_each_unsupported_path_answers_501_naming_itself(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, headers=server.headers()) as client:
        for method, path in UNSUPPORTED:
            body = {} if method in ("POST", "PUT", "PATCH") else None
            answer = client.request(method, _concrete(path), json=body)
            assert (answer.status_code, answer.json()) == (
                501,
                {"message": f"meterline does not support {method} {path} yet"},
            )


def test_each_served_sdk_path_reaches_its_handler(server: RunningServer, served: set[Route]) -> None:
    """With made-up ids and empty bodies a served route answers 2xx or a 4xx about the input, never
    `no route` (the SDK's path spelled differently from meterline's) nor 405."""
    with httpx.Client(base_url=server.base_url, headers=server.headers()) as client:
        for method, path in sorted(sdk_routes()):
            if (method, _shape(path)) not in served:
                continue
            body = {} if method in ("POST", "PUT", "PATCH") else None
            answer = client.request(method, _concrete(path), json=body)
            assert answer.status_code < 500 and answer.status_code != 405, (method, path, answer.text)
            if answer.status_code == 404:
                assert not answer.json()["message"].startswith("no route"), (method, path)


def test_a_mistyped_path_is_told_apart_from_one_not_built(server: RunningServer) -> None:
    mistyped = httpx.post(f"{server.base_url}/v1/packages/createe", headers=server.headers(), json={})
    assert mistyped.status_code == 404
    assert mistyped.json() == {"message": "no route for POST /v1/packages/createe"}
    not_built = httpx.post(f"{server.base_url}/v1/packages/create", headers=server.headers(), json={})
    assert not_built.status_code == 501
    assert not_built.json() == {"message": "meterline does not support POST /v1/packages/create yet"}


def test_invoice_breakdowns_are_not_read_as_an_invoice_id(server: RunningServer) -> None:
    answer = httpx.get(
        f"{server.base_url}/v1/customers/any/invoices/breakdowns",
        headers=server.headers(),
        params={"starting_on": "2026-01-01T00:00:00Z", "ending_before": "2026-02-01T00:00:00Z"},
    )
    assert answer.status_code == 501
    assert "breakdowns" in answer.json()["message"] and "invoice_id" not in answer.json()["message"]


def test_unsupported_paths_need_a_token_like_every_other(server: RunningServer) -> None:
    assert httpx.post(f"{server.base_url}/v1/packages/create", json={}).status_code == 401
