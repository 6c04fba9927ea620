"""Metronome's v2 edit of one commit or credit: /v2/contracts/commits/edit and
/v2/contracts/credits/edit.

The commit or credit is the customer's own or one of its contracts'. What may change, and the rules
it then meets, are those of v2 contracts/edit `update_commits` and `update_credits`
(`services.commit_edits`), with the same refusals (a 400 naming the field, nothing written); an id
the customer has no commit or credit by is a 404. Drafts, balances and alerts follow at once. A
contract's commit or credit records the change as an edit of the contract (v2
contracts/getEditHistory), in the same transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from meterline.api import edit_history
from meterline.api.commit_edit_fields import CommitEditIn, CreditEditIn
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.services import commit_edits as service
from meterline.services.commit_edits import CommitUpdate

router = APIRouter(route_class=ExactDecimalRoute)


@router.post("/v2/contracts/commits/edit")
def edit_commit(body: CommitEditIn, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _edit(state, body.customer_id, body.edit(), credits=False)


@router.post("/v2/contracts/credits/edit")
def edit_credit(body: CreditEditIn, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _edit(state, body.customer_id, body.edit(), credits=True)


def _edit(state: AppState, customer_id: str, change: CommitUpdate, *, credits: bool) -> ExactJSONResponse:
    with state.db.write() as conn:
        before = edit_history.before_commit_edit(conn, customer_id, change.commit_id, state.settings)
        service.edit_commit(conn, customer_id, change, credits=credits)
        edit_history.record_edit(conn, before, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(change.commit_id))
