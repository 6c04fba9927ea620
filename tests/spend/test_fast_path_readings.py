"""The fast path's reading of check and reserve bodies (msgspec) against the declared routes'
(FastAPI, pydantic and, for reservations, the exact JSON reading): any body, valid or not, the
fast path takes is one the declared route takes too, with the same values. A body the fast path
does not take goes the declared way, so it gets the declared route's own answer; between them,
every body is answered as the declared route alone would answer it.

The declared readings run here exactly as in the server (the same models and route classes),
their endpoints answering with what they read, so no database is needed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.api import errors
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.routes.access import AccessCheck, read_check
from meterline.api.routes.reservations import MAX_EXPIRY_S, Reserve, ask_of, read_reserve
from meterline.services.access import MAX_CUSTOMERS_PER_CHECK, MAX_REF_CHARS
from meterline.services.reservations import Ask

_checks = APIRouter(route_class=APIRoute)
_reserves = APIRouter(route_class=ExactDecimalRoute)


@_checks.post("/check")
def _declared_check(body: AccessCheck) -> list[str]:
    return body.customer_ids


@_reserves.post("/reserve")
def _declared_reserve(body: Reserve) -> dict[str, Any]:
    ask = ask_of(body)
    return {**{f: getattr(ask, f) for f in Ask.__slots__}, "amount": str(ask.amount)}


def _declared_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(_checks)
    app.include_router(_reserves)
    return app


DECLARED = TestClient(_declared_app())


def _around(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, limit - 1, limit, limit + 1])


def _mostly(ordinary: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Ordinary values four times in five, so that most bodies are taken and their values compared
    (`one_of` would draw each distinct strategy as often)."""
    return st.sampled_from([ordinary] * 4 + [odd]).flatmap(lambda chosen: chosen)


def _text_around(limit: int) -> st.SearchStrategy[str]:
    """Short texts and ones at the length limit; or past it, empty, with NUL, a lone surrogate."""
    ordinary = st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6),
        st.characters(codec="utf-8", exclude_characters="\x00").map(lambda c: c * limit),
    )
    odd = st.one_of(
        st.tuples(_around(limit), st.characters(codec="utf-8")).map(lambda n_c: n_c[1] * n_c[0]),
        st.sampled_from(["", "\x00", "a\x00", "\ud800", "\ud83d\ude00", " "]),
    )
    return _mostly(ordinary, odd)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _raw(value: Any) -> str:
    """JSON text for a value; a `_Number` is written as its text, exactly."""
    if isinstance(value, _Number):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_raw(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_raw(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class _Number:
    def __init__(self, text: str) -> None:
        self.text = text


NUMBER_TEXTS = st.one_of(
    st.sampled_from(["0", "-0", "1", "0.1", "0.10", "1e5", "1E-10", "1e-11", "1e10", "1e11", "1e50"]),
    st.sampled_from(["12345678901234567890", "123456789012345678901", "1.00000000000000000000"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
)
AMOUNTS = _mostly(
    st.one_of(NUMBER_TEXTS.map(_Number), NUMBER_TEXTS),  # as JSON numbers written exactly, as strings
    st.one_of(
        st.sampled_from(["1_000", " 1", "1 ", "+1", "NaN", "Infinity", "-Infinity", "0x10", "\u0661", ""]),
        st.sampled_from(["1e999999", "-1", "1e-21"]).map(_Number),
        JUNK,
    ),
)


def _body(fields: dict[str, Any], extra: dict[str, Any], drop: list[str]) -> dict[str, Any]:
    found = {k: v for k, v in fields.items() if k not in drop}
    found.update(extra)
    return found


CHECK_BODIES = st.builds(
    _body,
    st.fixed_dictionaries(
        {
            "customer_ids": _mostly(
                st.lists(_mostly(_text_around(MAX_REF_CHARS), JUNK), min_size=1, max_size=4),
                st.one_of(
                    _around(MAX_CUSTOMERS_PER_CHECK).map(lambda n: [f"c{i}" for i in range(n)]),
                    JUNK,
                    st.text(max_size=3),
                ),
            )
        }
    ),
    _mostly(st.just({}), st.dictionaries(st.sampled_from(["extra", "customer_id", "Customer_ids"]), JUNK)),
    _mostly(st.just([]), st.just(["customer_ids"])),
)
RESERVE_BODIES = st.builds(
    _body,
    st.fixed_dictionaries(
        {
            "customer_id": _mostly(_text_around(36), JUNK),
            "reservation_id": _mostly(_text_around(128), JUNK),
            "amount": AMOUNTS,
        },
        optional={
            "credit_type_id": _mostly(st.one_of(st.none(), _text_around(36)), JUNK),
            "expires_in_seconds": _mostly(
                st.one_of(st.integers(1, MAX_EXPIRY_S), _around(MAX_EXPIRY_S)),
                st.one_of(st.sampled_from([_Number("5.0"), _Number("5e0"), "5", True, -1]), JUNK),
            ),
        },
    ),
    _mostly(st.just({}), st.dictionaries(st.sampled_from(["extra", "amount_cents", "Amount"]), JUNK)),
    _mostly(st.just([]), st.lists(st.sampled_from(["customer_id", "reservation_id", "amount"]), max_size=1)),
)


@st.composite
def _written(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A body as a client might send it: JSON, a key written twice, another JSON value, broken."""
    body = draw(bodies)
    kind = draw(st.sampled_from(["json"] * 12 + ["twice", "other", "broken", "bom"]))
    text = _raw(body)
    if kind == "twice" and body:
        key = draw(st.sampled_from(sorted(body)))
        text = "{" + f"{json.dumps(key)}: {_raw(draw(JUNK))}, " + text[1:]
    elif kind == "other":
        text = _raw(draw(st.one_of(JUNK, st.lists(st.just(body), max_size=2))))
    elif kind == "broken":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    encoded = text.encode("utf-8", "surrogatepass")
    return b"\xef\xbb\xbf" + encoded if kind == "bom" else encoded


def _declared(path: str, body: bytes) -> Any:
    """What the declared route read (None: it refused the body). As JSON whatever the client's
    content type: the server's edge middleware makes every API body JSON (`_treat_body_as_json`)."""
    answer = DECLARED.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code != 500, answer.text  # never a server error, whatever the body
    return answer.json() if answer.status_code == 200 else None


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(_written(CHECK_BODIES))
def test_a_check_the_fast_path_reads_is_read_alike_by_the_declared_route(body: bytes) -> None:
    fast = read_check(body)
    declared = _declared("/check", body)
    if fast is not None:
        assert declared == fast


@FUZZ
@given(_written(RESERVE_BODIES))
def test_a_reservation_the_fast_path_reads_is_read_alike_by_the_declared_route(body: bytes) -> None:
    fast = read_reserve(body)
    declared = _declared("/reserve", body)
    if fast is not None:
        assert declared is not None, body
        assert Decimal(declared.pop("amount")) == fast.amount
        assert declared == {f: getattr(fast, f) for f in Ask.__slots__ if f != "amount"}


def test_the_fast_path_takes_ordinary_bodies() -> None:
    """It is a fast path at all: the bodies clients send are read there, not refused."""
    assert read_check(b'{"customer_ids": ["a", "b"]}') == ["a", "b"]
    ask = read_reserve(b'{"customer_id": "c", "reservation_id": "r", "amount": 0.1}')
    assert ask == Ask("r", "c", Decimal("0.1"), None, 300)
