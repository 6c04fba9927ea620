"""A fuzz of every route: hostile input of each class never gets a 5xx, and every refusal has
Metronome's error shape, `{"message": str}`.

The routes come from the application's own route table, so a route added later is fuzzed
without touching this file. Each (route, class of input) pair gets a few generated requests
against one real server on SQLite (the edge rules under test run before any storage, so one
backend is enough; the PostgreSQL side of storage errors is covered by test_bad_input.py).
Bounded to well under a minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.offline_app import offline_app, openapi_document
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server

EXAMPLES_PER_CASE = 2


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body_fields: tuple[str, ...]  # top-level fields of the JSON body, () where the body is not a model
    query_params: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _route_table() -> list[Route]:
    routes = []
    for route in _api_routes(offline_app().routes):
        body_fields: tuple[str, ...] = ()
        body = route.body_field
        if body is not None:
            model = getattr(body.field_info, "annotation", None)
            body_fields = tuple(getattr(model, "model_fields", {}))
        query = tuple(p.alias for p in route.dependant.query_params)
        for method in sorted(route.methods):
            routes.append(Route(method, route.path, body_fields, query))
    return routes


def _api_routes(table: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, looking inside included routers (which FastAPI keeps as entries of their own)."""
    for entry in table:
        if isinstance(entry, APIRoute):
            yield entry
        elif hasattr(entry, "original_router"):
            yield from _api_routes(entry.original_router.routes)


ROUTES = _route_table()

# -- the classes of hostile input -------------------------------------------------------------------
LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "a\udfffb", "\ud800\ud800"])
HUGE_NUMBERS = st.sampled_from(["1" + "0" * 40, "1e999999999", "-1e999999999", "1e-999999999", "9" * 400])
WRONG_TYPES = st.sampled_from(["null", "true", "[]", "{}", '"x"', "0", "-1", "1.5", '[{"a": 1}]'])


def _json_string(text: str) -> str:
    """A JSON string literal that keeps lone surrogates as \\u escapes (json.dumps does)."""
    return json.dumps(text)


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=33, max_value=5_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")]))
    return (opener * depth + "1" + closer * depth).encode()


def _body(route: Route, field: str | None, value_json: str) -> bytes:
    if field is None:
        return value_json.encode()
    if route.path == "/v1/ingest":
        return f'[{{"{field}": {value_json}}}]'.encode()
    return f'{{"{field}": {value_json}}}'.encode()


def _fields(route: Route) -> st.SearchStrategy[str | None]:
    known = list(route.body_fields)
    if route.path == "/v1/ingest":
        known = ["transaction_id", "customer_id", "event_type", "timestamp", "properties"]
    return st.sampled_from([None, *known, "unknown_field"])


@st.composite
def hostile_request(draw: st.DrawFn, route: Route, kind: str) -> tuple[str, bytes, dict[str, str]]:
    """(path with its parameters filled, body, query) of one hostile kind."""
    path = re.sub(
        r"\{[^}]+\}", lambda _m: draw(st.sampled_from(["x", "%ED%A0%80", "a" * 3000, "%FF"])), route.path
    )
    query: dict[str, str] = {}
    if kind == "deep nesting":
        return path, draw(deep_nesting()), query
    field = draw(_fields(route))
    if kind == "lone surrogate":
        value = _json_string(draw(LONE_SURROGATES))
        if field is not None and route.path == "/v1/ingest" and draw(st.booleans()):
            return path, f'[{{"properties": {{"{field}": {value}}}}}]'.encode(), query
    elif kind == "huge number":
        value = draw(HUGE_NUMBERS)
        if route.path == "/v1/ingest":
            event = (
                '{"transaction_id": "fuzz", "customer_id": "fuzz", "event_type": "fuzz", '
                f'"timestamp": "2026-01-01T00:00:00Z", "properties": {{"n": {value}}}}}'
            )
            return path, f"[{event}]".encode(), query
    elif kind == "wrong type":
        value = draw(WRONG_TYPES)
    elif kind == "huge string":
        value = _json_string(draw(st.sampled_from(["x", "\u00e9", "\U0001f600"])) * 50_000)
    elif kind == "query":
        names = list(route.query_params) or ["limit"]
        query = {
            draw(st.sampled_from(names)): draw(st.sampled_from(["\ud800", "-1", "1e999", "x" * 5000, ""]))
        }
        return path, b"", query
    else:
        raise AssertionError(kind)
    return path, _body(route, field, value), query


KINDS = ["deep nesting", "lone surrogate", "huge number", "wrong type", "huge string", "query"]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of the module's own (its log must hold no unhandled error); the routes' answers are
    under test, not the engine's processes, so the engine runs as threads."""
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    running = start_server(f"sqlite:///{workdir / 'meterline.db'}", workdir, **ENGINE_IN_THREADS)
    try:
        yield running
    finally:
        running.stop()
        log = running.log_path.read_text()
        assert "unhandled_error" not in log, log[-4000:]


@pytest.fixture(scope="module")
def http(fuzz_server: RunningServer) -> Iterator[httpx.Client]:
    # A connection per request: a kept-alive one can be closed by the server's idle timeout just as
    # the next request goes out (a reset no server could prevent) when a loaded machine is slow
    # to generate the next example.
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(
        base_url=fuzz_server.base_url, headers=fuzz_server.headers(), timeout=30, limits=no_keepalive
    ) as client:
        yield client


def _send(http: httpx.Client, method: str, path: str, body: bytes, query: dict[str, str]) -> httpx.Response:
    # Built by hand: httpx would refuse to encode a lone surrogate in the query itself.
    url = path + ("?" + "&".join(f"{k}={_percent(v)}" for k, v in query.items()) if query else "")
    with http.stream(method, url, content=body or None) as response:
        # An event stream (/v1/access/stream) accepted never ends: its status and headers are the
        # answer. Anything else is read whole.
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def _percent(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))


def _assert_handled(route: Route, response: httpx.Response, what: str) -> None:
    operation = openapi_document()["paths"].get(route.path, {}).get(route.method.lower())
    # Metronome operations meterline does not serve (left out of the document) answer 501.
    not_built = operation is None and response.status_code == 501
    assert response.status_code < 500 or not_built, f"{what}: {response.status_code} {response.text[:300]}"
    if operation is not None:  # routes left out of the document (Metronome's unsupported ones) too
        documented = operation["responses"]
        assert str(response.status_code) in documented, f"{what}: {response.status_code} is not documented"
    # The embeddable dashboards refuse a link with a 403 page a person reads, not JSON (the limits
    # form's POST, read by the page's script, answers JSON).
    page = (
        route.method == "GET" and route.path.startswith("/embed/dashboards/") and response.status_code == 403
    )
    if page:
        assert response.headers["content-type"].startswith("text/html"), what
    if response.status_code >= 400 and response.request.method != "HEAD" and not page:
        body: Any = response.json()
        assert isinstance(body, dict) and set(body) == {"message"}, f"{what}: {response.text[:300]}"
        assert isinstance(body["message"], str) and body["message"], what


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_hostile_input_never_gets_a_5xx(http: httpx.Client, route: Route, kind: str) -> None:
    @settings(
        max_examples=EXAMPLES_PER_CASE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=hostile_request(route, kind))
    def run(request: tuple[str, bytes, dict[str, str]]) -> None:
        path, body, query = request
        response = _send(http, route.method, path, body, query)
        _assert_handled(route, response, f"{route} [{kind}] {body[:80]!r} {query}")

    run()


def test_the_route_table_is_the_whole_api() -> None:
    """The fuzz reaches every operation the server documents (a route missing here is unfuzzed)."""
    documented = {(m.upper(), p) for p, ops in openapi_document()["paths"].items() for m in ops}
    assert documented <= {(r.method, r.path) for r in ROUTES}
    assert ("POST", "/v1/ingest") in documented


def test_the_document_lists_what_the_server_answers() -> None:
    """No 422 (the server answers 400), every error in Metronome's shape, ingest's body described."""
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if path != "/health":
                assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }
    body = document["paths"]["/v1/ingest"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["items"] == {"$ref": "#/components/schemas/UsageEvent"} and body["maxItems"] == 100
