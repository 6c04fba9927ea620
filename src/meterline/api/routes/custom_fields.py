"""Custom fields: /v1/customFields/{addKey,listKeys,removeKey,setValues,deleteValues}.

Entities are Metronome's names (`domain.custom_fields`); one meterline does not have is a 400
naming it. The writes answer 200 with no content, as Metronome's do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_at
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFieldKey, CustomFields, StrictModel
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.services import custom_fields as service

router = APIRouter(route_class=ExactDecimalRoute)
Entity = Literal[
    "alert",
    "billable_metric",
    "charge",
    "commit",
    "contract_credit",
    "contract_product",
    "contract",
    "credit_grant",
    "customer_plan",
    "customer",
    "discount",
    "invoice",
    "plan",
    "professional_service",
    "product",
    "rate_card",
    "scheduled_charge",
    "subscription",
    "package_commit",
    "package_credit",
    "package_subscription",
    "package_scheduled_charge",
]
EntityId = Annotated[str, Field(min_length=1, max_length=64)]
# listKeys has no `limit`: each page holds this many keys.
KEYS_PER_PAGE = 100


class AddKey(StrictModel):
    enforce_uniqueness: bool
    entity: Entity
    key: CustomFieldKey


class RemoveKey(StrictModel):
    entity: Entity
    key: CustomFieldKey


class ListKeys(StrictModel):
    entities: list[Entity] | None = None


class SetValues(StrictModel):
    custom_fields: CustomFields
    entity: Entity
    entity_id: EntityId


class DeleteValues(StrictModel):
    entity: Entity
    entity_id: EntityId
    keys: list[str] = Field(max_length=1000)


@router.post("/v1/customFields/addKey")
def add_key(body: AddKey, state: AppState = Depends(app_state)) -> None:
    with state.db.write() as conn:
        service.add_key(conn, body.entity, body.key, body.enforce_uniqueness)


@router.post("/v1/customFields/removeKey")
def remove_key(body: RemoveKey, state: AppState = Depends(app_state)) -> None:
    with state.db.write() as conn:
        service.remove_key(conn, body.entity, body.key)


@router.post("/v1/customFields/listKeys")
def list_keys(
    body: ListKeys | None = None,
    next_page: Annotated[str | None, Query()] = None,
    state: AppState = Depends(app_state),
) -> ExactJSONResponse:
    entities = None if body is None else body.entities
    asked = page_at(state, "custom_field_keys", tuple[str, str], token=next_page, size=KEYS_PER_PAGE)
    with state.db.read() as conn:
        found = service.list_keys(conn, entities, asked.after, asked.size + 1)
    page, cursor = asked.cut(found, lambda k: (k.entity, k.key))
    data = [{"enforce_uniqueness": k.enforce_uniqueness, "entity": k.entity, "key": k.key} for k in page]
    return ExactJSONResponse({"data": data, "next_page": cursor})


@router.post("/v1/customFields/setValues")
def set_values(body: SetValues, state: AppState = Depends(app_state)) -> None:
    with state.db.write() as conn:
        service.set_values(conn, body.entity, body.entity_id, body.custom_fields)
    wake_evaluator(state)


@router.post("/v1/customFields/deleteValues")
def delete_values(body: DeleteValues, state: AppState = Depends(app_state)) -> None:
    with state.db.write() as conn:
        service.delete_values(conn, body.entity, body.entity_id, body.keys)
    wake_evaluator(state)
