"""A contract's balances per seat: POST /v1/contracts/seatBalances/list (`services.seat_balances`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.catalog_fields import Instant
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import billing
from meterline.services.seat_balances import DateFilter, SeatBook, SeatCommit, contract_seats
from meterline.store import contracts, customers

router = APIRouter(route_class=ExactDecimalRoute)
DEFAULT_SEATS, MAX_SEATS = 25, 100  # Metronome's range
MAX_COMMITS = 100  # with commits shown, seats are added to a page until they hold this many


class SeatBalanceList(StrictModel):
    customer_id: str
    contract_id: str
    covering_date: Instant | None = None
    starting_at: Instant | None = None
    effective_before: Instant | None = None
    cursor: str | None = None
    include_credits_and_commits: bool = False
    include_ledgers: bool = False
    limit: int | None = None  # DEFAULT_SEATS
    seat_ids: list[str] | None = Field(default=None, max_length=1000)
    skip_missing_seat_ids: bool = False
    subscription_ids: list[str] | None = Field(default=None, max_length=100)

    def dates(self) -> DateFilter:
        if self.covering_date is not None and (
            self.starting_at is not None or self.effective_before is not None
        ):
            raise InvalidInput("covering_date: cannot be given together with starting_at or effective_before")
        return DateFilter(self.covering_date, self.starting_at, self.effective_before)


@router.post("/v1/contracts/seatBalances/list")
def list_seat_balances(body: SeatBalanceList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    dates = body.dates()
    asked = page_request(
        state,
        "seat_balances",
        str,
        limit=body.limit,
        token=body.cursor,
        default_size=DEFAULT_SEATS,
        max_size=MAX_SEATS,
        cursor_field="cursor",
    )
    now = now_us()
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        contract = contracts.get_contract(conn, body.customer_id, body.contract_id)
        seats = _chosen(contract_seats(contract, body.subscription_ids), body)
        billed = billing.customer_billing(conn, body.customer_id, state.settings.open_horizon_us(), now)
    book = SeatBook(billed, contract.id, now, with_ledger=body.include_ledgers)
    remaining = [s for s in seats if asked.after is None or s > asked.after]
    shown: list[tuple[str, list[SeatCommit]]] = []
    commits_shown = 0
    for seat_id in remaining[: asked.size]:
        held = book.seat_commits(seat_id, dates)
        shown.append((seat_id, held))
        commits_shown += len(held)
        if body.include_credits_and_commits and commits_shown >= MAX_COMMITS:
            break  # every seat shown whole: the page stops at the seat that reaches the cap
    left = len(remaining) - len(shown)
    cursor = asked.cursor(shown[-1][0]) if left and shown else None
    return ExactJSONResponse(
        {
            "data": [_seat_view(seat_id, held, body) for seat_id, held in shown],
            "pagination": {
                "next_page": cursor,
                "seats_included": len(shown),
                "seats_available_for_next_page": min(left, asked.size),
            },
        }
    )


def _chosen(seats: list[str], body: SeatBalanceList) -> list[str]:
    if body.seat_ids is None:
        return seats
    known = set(seats)
    missing = [s for s in body.seat_ids if s not in known]
    if missing and not body.skip_missing_seat_ids:
        raise InvalidInput(
            f"seat_ids: {missing[0]} is no seat of contract {body.contract_id}'s subscriptions "
            "(skip_missing_seat_ids: true leaves such ids out)"
        )
    return sorted(known.intersection(body.seat_ids))


def _seat_view(seat_id: str, held: list[SeatCommit], body: SeatBalanceList) -> dict[str, Any]:
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for entry in held:
        balance, starting = totals.get(entry.commit.credit_type_id, (Decimal(0), Decimal(0)))
        totals[entry.commit.credit_type_id] = (balance + entry.balance, starting + entry.starting_balance)
    view: dict[str, Any] = {
        "seat_id": seat_id,
        "balances": [
            {"credit_type_id": c, "balance": b, "starting_balance": s, "access_type": "SPEND"}
            for c, (b, s) in sorted(totals.items())
        ],
    }
    if body.include_credits_and_commits:
        view["commits"] = [_commit_view(e, body) for e in held if e.commit.kind != CREDIT]
        view["credits"] = [_commit_view(e, body) for e in held if e.commit.kind == CREDIT]
    return view


def _commit_view(entry: SeatCommit, body: SeatBalanceList) -> dict[str, Any]:
    segments = entry.commit.segments
    view: dict[str, Any] = {
        "id": entry.commit.id,
        "balance": entry.balance,
        "credit_type_id": entry.commit.credit_type_id,
        "access_type": "SPEND",
        "start_date": format_rfc3339(min(s.starting_at_us for s in segments)),
        "end_date": format_rfc3339(max(s.ending_before_us for s in segments)),
    }
    if body.include_ledgers:
        view["ledger_entries"] = entry.ledger
    return view
