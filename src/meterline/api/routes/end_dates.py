"""End-date updates: /v1/contracts/customerCommits/updateEndDate, /v1/contracts/customerCredits/updateEndDate
and /v1/contracts/updateEndDate.

A commit (PREPAID only, as Metronome) or credit, on the customer or on one of its contracts, gets a
new access end (`access_ending_before`) and, for a commit, a new invoicing end
(`invoices_ending_before`); a contract gets a new `ending_before` (none: open-ended). What was
finalized stays as it was: a change that would alter it is a 400 naming the field
(`services.end_dates`). The engine bills the customer again at once: drafts, balances and balance
alerts follow the new end. A contract's own commit or credit, or the contract, records the change
as an edit of the contract (v2 contracts/getEditHistory), in the same transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from meterline.api import edit_history
from meterline.api.catalog_fields import HourInstant, Instant
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.errors import InvalidInput
from meterline.services import end_dates as service

router = APIRouter(route_class=ExactDecimalRoute)


class CommitEndDate(StrictModel):
    customer_id: str
    commit_id: str
    access_ending_before: HourInstant | None = None
    invoices_ending_before: Instant | None = None


class CreditEndDate(StrictModel):
    customer_id: str
    credit_id: str
    access_ending_before: HourInstant


class ContractEndDate(StrictModel):
    customer_id: str
    contract_id: str
    ending_before: HourInstant | None = None
    allow_ending_before_finalized_invoice: bool = True


@router.post("/v1/contracts/customerCommits/updateEndDate")
def update_commit_end(body: CommitEndDate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    if body.access_ending_before is None and body.invoices_ending_before is None:
        raise InvalidInput("access_ending_before: give it, invoices_ending_before, or both")
    with state.db.write() as conn:
        before = edit_history.before_commit_edit(conn, body.customer_id, body.commit_id, state.settings)
        service.update_commit_end(
            conn,
            body.customer_id,
            body.commit_id,
            access_ending_before_us=body.access_ending_before,
            invoices_ending_before_us=body.invoices_ending_before,
        )
        edit_history.record_edit(conn, before, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.commit_id))


@router.post("/v1/contracts/customerCredits/updateEndDate")
def update_credit_end(body: CreditEndDate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        before = edit_history.before_commit_edit(conn, body.customer_id, body.credit_id, state.settings)
        service.update_credit_end(conn, body.customer_id, body.credit_id, body.access_ending_before)
        edit_history.record_edit(conn, before, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.credit_id))


@router.post("/v1/contracts/updateEndDate")
def update_contract_end(body: ContractEndDate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        before = edit_history.before_edit(conn, body.customer_id, body.contract_id, state.settings)
        service.update_contract_end(
            conn,
            body.customer_id,
            body.contract_id,
            body.ending_before,
            allow_before_finalized=body.allow_ending_before_finalized_invoice,
        )
        edit_history.record_edit(conn, before, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.contract_id))
