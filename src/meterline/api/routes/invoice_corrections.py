"""Invoice corrections: /v1/invoices/void and /v1/invoices/regenerate (`services.invoice_corrections`).

Void takes a FINALIZED invoice to VOID and gives back what it drew from commits and credits;
regenerate prices a voided (or FINALIZED, voided first) USAGE invoice's period afresh into a new
FINALIZED invoice and answers its id. The invoice list shows both, the new one with
`regenerated_from_invoice_id`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.timeutil import now_us
from meterline.services import invoice_corrections as service

router = APIRouter(route_class=ExactDecimalRoute)


class InvoiceId(StrictModel):
    id: str = Field(min_length=1)


@router.post("/v1/invoices/void")
def void_invoice(body: InvoiceId, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.void_invoice(conn, body.id, now_us())
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.id))


@router.post("/v1/invoices/regenerate")
def regenerate_invoice(body: InvoiceId, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        new_id = service.regenerate_invoice(conn, body.id, now_us())
    wake_evaluator(state)
    return ExactJSONResponse(id_response(new_id))
