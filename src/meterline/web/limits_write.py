"""What the spend_limits page's form sends: the customer's own soft and hard limits, in dollars as
typed, applied through `services.spend_limits.set_own_limits` (in USD cents, each at most the
operator's maximum). Every refusal is a JSON `{"message"}` worded for the end customer; a success
returns the limits as `/v1/spend-limits/get` shows them and the panel rendered again."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.responses import Response

from meterline.api.dashboard_capability import Capability
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.spend_limits import limit_view
from meterline.api.state import AppState, wake_evaluator
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.timeutil import now_us
from meterline.services import spend_limits
from meterline.services.spend_limits import HARD, LIMITS, SOFT, OwnLimitRefused
from meterline.web import render
from meterline.web.limits_board import maximum_of

LABELS = {SOFT: "Soft limit", HARD: "Hard limit"}
WRITES_ON = "spend_limits"
CENTS_PER_DOLLAR = 100


class Unreadable(Exception):
    pass


def answer(status: int, text: str) -> Response:
    return ExactJSONResponse({"message": text}, status_code=status, headers={"Cache-Control": "no-store"})


def set_limits(state: AppState, capability: Capability, raw: bytes) -> Response:
    if capability.dashboard != WRITES_ON:
        return answer(403, "This link cannot set limits: only a spend limits dashboard link can.")
    try:
        changes = _changes(raw)
    except Unreadable as unreadable:
        return answer(400, str(unreadable))
    try:
        with state.db.write() as conn:
            spend_limits.set_own_limits(
                conn, capability.customer_id, changes, maximum_of(state.settings, capability)
            )
    except OwnLimitRefused as refused:
        return answer(400, _worded(refused))
    except InvalidInput as invalid:
        return answer(400, invalid.message)
    wake_evaluator(state)  # the new limit is measured at once, as /v1/spend-limits/set does
    at = now_us()
    with state.db.read() as conn:
        view = spend_limits.limits_of(
            conn, capability.customer_id, USD_CENTS_CREDIT_TYPE_ID, at, state.settings.open_horizon_us()
        )
        body = render.body(conn, state.settings, capability, at)
    return ExactJSONResponse({"data": limit_view(view), "body": body}, headers={"Cache-Control": "no-store"})


def _changes(raw: bytes) -> dict[str, Decimal | None]:
    """`{"soft_limit": "12.50", "hard_limit": ""}` -> USD cents; empty or null: no limit."""
    try:
        given: Any = json.loads(raw)
    except ValueError:
        raise Unreadable("body: must be a JSON object") from None
    if not isinstance(given, dict) or not set(given) <= {f"{k}_limit" for k in LIMITS}:
        raise Unreadable("body: must be a JSON object with soft_limit and/or hard_limit")
    return {kind: _cents(kind, given[f"{kind}_limit"]) for kind in LIMITS if f"{kind}_limit" in given}


def _cents(kind: str, typed: Any) -> Decimal | None:
    if typed is None or (isinstance(typed, str) and not typed.strip()):
        return None
    refused = Unreadable(f"{LABELS[kind]}: enter an amount in dollars, such as 250 or 12.50")
    if not isinstance(typed, str):
        raise refused
    try:
        dollars = Decimal(typed.strip().lstrip("$").replace(",", ""))
        if not dollars.is_finite() or dollars < 0 or dollars != round(dollars, 2):
            raise refused
        return (dollars * CENTS_PER_DOLLAR).quantize(Decimal(1))
    except InvalidOperation:
        raise refused from None


def _worded(refused: OwnLimitRefused) -> str:
    kind = SOFT if refused.field.startswith(SOFT) else HARD
    if refused.most is None:
        return f"{LABELS[kind]} cannot be removed here. Set an amount instead."
    if refused.field == "soft_limit" and "hard_limit" in refused.message:
        return f"{LABELS[kind]} can be at most the hard limit, {render.cents(refused.most)}."
    return f"{LABELS[kind]} can be at most {render.cents(refused.most)}."
