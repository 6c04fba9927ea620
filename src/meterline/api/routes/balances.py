"""Balances: POST /v1/contracts/customerBalances/list and /getNetBalance.

Balances: each commit segment accessible now, less what invoices have drawn from it, drafts
derived as of now (`services.billing`, `store/balances.py`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends

from meterline.api.catalog_fields import Instant
from meterline.api.commit_views import commit_extras, commit_view
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.contracts import CREDIT, POSTPAID, PREPAID
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.timeutil import now_us
from meterline.services import billing
from meterline.store import commits, credit_types, customers
from meterline.store.commits import CommitQuery

router = APIRouter(route_class=ExactDecimalRoute)
BALANCE_TYPES = {"PREPAID_COMMIT": PREPAID, "POSTPAID_COMMIT": POSTPAID, "CREDIT": CREDIT}
DEFAULT_PAGE = 25  # Metronome's default for customerBalances/list


class BalanceList(StrictModel):
    customer_id: str
    id: str | None = None
    access_type: Literal["SPEND", "QUANTITY"] | None = None
    covering_date: Instant | None = None
    effective_before: Instant | None = None
    starting_at: Instant | None = None
    exclude_zero_balances: bool = False
    include_archived: bool = False
    include_balance: bool = False
    include_contract_balances: bool = False
    include_ledgers: bool = False
    limit: int | None = None  # DEFAULT_PAGE
    next_page: str | None = None


class BalanceFilter(StrictModel):
    balance_types: list[Literal["PREPAID_COMMIT", "POSTPAID_COMMIT", "CREDIT"]] | None = None
    custom_fields: dict[str, str] | None = None
    ids: list[str] | None = None


class NetBalanceQuery(StrictModel):
    customer_id: str
    access_type: Literal["SPEND", "QUANTITY"] | None = None
    credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    filters: list[BalanceFilter] | None = None
    invoice_inclusion_mode: Literal["FINALIZED", "FINALIZED_AND_DRAFT"] = "FINALIZED_AND_DRAFT"


@router.post("/v1/contracts/customerBalances/list")
def list_balances(body: BalanceList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    asked = page_request(
        state, "customer_balances", str, limit=body.limit, token=body.next_page, default_size=DEFAULT_PAGE
    )
    # Every meterline commit and credit is drawn down by spend: a QUANTITY filter matches none.
    kinds = () if body.access_type == "QUANTITY" else (PREPAID, POSTPAID, CREDIT)
    query = CommitQuery(
        kinds=kinds,
        commit_id=body.id,
        covering_us=body.covering_date,
        starting_at_us=body.starting_at,
        effective_before_us=body.effective_before,
        include_archived=body.include_archived,
        include_contract_level=body.include_contract_balances,
    )
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        found = commits.list_commits(conn, body.customer_id, query, after_id=asked.after, limit=10_000)
        now = now_us()
        if body.exclude_zero_balances:
            current = billing.commit_balances(
                billing.customer_billing(conn, body.customer_id, state.settings.open_horizon_us(), now), now
            )
            found = [c for c in found if c.id in current and current[c.id].balance != 0]
        page, cursor = asked.cut(found[: asked.size + 1], lambda c: c.id)
        extras = commit_extras(
            conn,
            body.customer_id,
            page,
            settings=state.settings,
            include_balance=body.include_balance,
            include_ledgers=body.include_ledgers,
        )
    return ExactJSONResponse({"data": [commit_view(c, extras) for c in page], "next_page": cursor})


@router.post("/v1/contracts/customerBalances/getNetBalance")
def get_net_balance(body: NetBalanceQuery, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        credit_types.get_credit_type(conn, body.credit_type_id)
        now = now_us()
        found = billing.commit_balances(
            billing.customer_billing(conn, body.customer_id, state.settings.open_horizon_us(), now),
            now,
            include_drafts=body.invoice_inclusion_mode == "FINALIZED_AND_DRAFT",
        )
        custom_fields = {
            c.id: c.custom_fields
            for c in commits.list_commits(
                conn,
                body.customer_id,
                CommitQuery(kinds=(PREPAID, POSTPAID, CREDIT), include_contract_level=True),
                after_id=None,
                limit=10_000,
            )
        }
    total = Decimal(0)
    if body.access_type != "QUANTITY":
        for commit_id, entry in found.items():
            commit = entry.commit
            if commit.credit_type_id == body.credit_type_id and _selected(
                commit.kind, commit_id, custom_fields.get(commit_id, {}), body.filters
            ):
                total += entry.balance
    return ExactJSONResponse({"data": {"balance": total, "credit_type_id": body.credit_type_id}})


def _selected(
    kind: str, commit_id: str, custom_fields: dict[str, str], filters: list[BalanceFilter] | None
) -> bool:
    """Filters are ORed; within one filter every given condition must hold. No filter: prepaid
    commits and credits (what a customer can still spend; postpaid commits are owed, not held)."""
    if not filters:
        return kind in (PREPAID, CREDIT)
    return any(_matches(kind, commit_id, custom_fields, f) for f in filters)


def _matches(kind: str, commit_id: str, custom_fields: dict[str, str], f: BalanceFilter) -> bool:
    if f.balance_types is not None and kind not in {BALANCE_TYPES[t] for t in f.balance_types}:
        return False
    if f.ids is not None and commit_id not in f.ids:
        return False
    return f.custom_fields is None or all(custom_fields.get(k) == v for k, v in f.custom_fields.items())
