"""/v2/contracts/getEditHistory: every edit of a contract, oldest first, as the SDK's
ContractGetEditHistoryResponse shows it.

Each edit is what one request changed (`api.edit_parts`): v2 contracts/edit, contracts/updateEndDate
(`update_contract_end_date`, null when it made the contract open-ended), customerCommits/ and
customerCredits/updateEndDate on one of the contract's commits or credits (`update_commits`,
`update_credits`: the schedule items they cut or dropped), and a contract taking over from it (its
new end). Creating the contract is not an edit: a contract never edited has an empty history.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.timeutil import format_rfc3339
from meterline.store import contract_edits
from meterline.store import contracts as store

router = APIRouter(route_class=ExactDecimalRoute)


class EditHistoryIn(StrictModel):
    customer_id: str
    contract_id: str


@router.post("/v2/contracts/getEditHistory")
def get_edit_history(body: EditHistoryIn, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        contract = store.get_contract(conn, body.customer_id, body.contract_id)
        edits = contract_edits.edits_of(conn, contract.id)
    shown = [{"id": e.id, "timestamp": format_rfc3339(e.edited_at_us), **e.parts} for e in edits]
    return ExactJSONResponse({"data": shown})
