"""Products: /v1/contract-pricing/products/{create,get,update,list,archive}.

USAGE and FIXED products are supported. A product shows `initial` (as created), `updates` (each
with the fields it changed and its `starting_at`) and `current`: the fields in force now, that
is, the initial fields with every update whose `starting_at` has passed applied in order. As in
Metronome's examples, `current` keeps the initial version's `created_at`/`created_by`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator, model_validator

from meterline.api.catalog_fields import API_ACTOR, HourInstant, PositiveAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state
from meterline.domain.products import ProductVersion
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import products as service
from meterline.store import products as store
from meterline.store.products import ArchiveFilter, ProductRecord

router = APIRouter(route_class=ExactDecimalRoute)
Name = Annotated[str, Field(min_length=1, max_length=200)]
NonEmpty = Annotated[str, Field(min_length=1)]
# Fields of COMPOSITE products, refused with the type itself until meterline supports composites.
COMPOSITE_FIELDS = (
    "composite_product_ids",
    "composite_tags",
    "exclude_free_usage",
    "include_composite_spend",
)
# Fields that may be set to null in an update, to remove them from the product.
CLEARABLE_FIELDS = ("quantity_conversion", "quantity_rounding")


class QuantityConversionIn(StrictModel):
    conversion_factor: PositiveAmount
    operation: Literal["MULTIPLY", "DIVIDE"]
    name: str | None = None


class QuantityRoundingIn(StrictModel):
    # Bounded so rounding stays within Decimal's working precision.
    decimal_places: int = Field(ge=0, le=20)
    rounding_method: Literal["ROUND_UP", "ROUND_DOWN", "ROUND_HALF_UP"]


class ProductFields(StrictModel):
    """Fields a product version may set (shared by create and update)."""

    billable_metric_id: NonEmpty | None = None
    pricing_group_key: list[NonEmpty] | None = None
    presentation_group_key: list[NonEmpty] | None = None
    quantity_conversion: QuantityConversionIn | None = None
    quantity_rounding: QuantityRoundingIn | None = None
    tags: list[NonEmpty] | None = None
    is_refundable: bool | None = None
    netsuite_internal_item_id: str | None = None
    netsuite_overage_item_id: str | None = None
    composite_product_ids: list[str] | None = None
    composite_tags: list[str] | None = None
    exclude_free_usage: bool | None = None
    include_composite_spend: bool | None = None
    # Only changes how SQL billable metrics are evaluated; meterline's metrics are all streaming,
    # on which Metronome documents it has no effect, so it is accepted and has none here either.
    sql_breakdown_granularity: Literal["HOUR", "SERVICE_PERIOD"] | None = None

    @model_validator(mode="after")
    def _no_composite_fields(self) -> ProductFields:
        for name in COMPOSITE_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name}: is only for COMPOSITE products, which meterline does not support yet"
                )
        return self


# What a product version stores: every shared field but the composite ones (refused) and
# sql_breakdown_granularity (no effect), plus the name.
VERSION_FIELDS = {"name", *ProductFields.model_fields} - {*COMPOSITE_FIELDS, "sql_breakdown_granularity"}


class ProductCreate(ProductFields):
    name: Name
    type: str
    custom_fields: CustomFields = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ProductUpdate(ProductFields):
    product_id: str
    starting_at: HourInstant
    name: Name | None = None


class ProductId(StrictModel):
    id: str


class ProductArchive(StrictModel):
    product_id: str


class ProductListFilter(StrictModel):
    archive_filter: ArchiveFilter = "NOT_ARCHIVED"


@router.post("/v1/contract-pricing/products/create")
def create_product(body: ProductCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    given = (body.model_fields_set & VERSION_FIELDS) | {"name"}
    fields = {k: v for k, v in _version_fields(body, given).items() if v is not None}
    with state.db.write() as conn:
        product_id = service.create_product(
            conn,
            product_type=body.type,
            fields=fields,
            custom_fields=body.custom_fields,
            created_by=API_ACTOR,
        )
    return ExactJSONResponse(id_response(product_id))


@router.post("/v1/contract-pricing/products/get")
def get_product(body: ProductId, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        product = store.get_product(conn, body.id)
    return ExactJSONResponse({"data": product_view(product, now_us())})


@router.post("/v1/contract-pricing/products/update")
def update_product(body: ProductUpdate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    given = body.model_fields_set & VERSION_FIELDS
    changes = {
        k: v for k, v in _version_fields(body, given).items() if v is not None or k in CLEARABLE_FIELDS
    }
    with state.db.write() as conn:
        service.update_product(
            conn, body.product_id, starting_at_us=body.starting_at, changes=changes, created_by=API_ACTOR
        )
    return ExactJSONResponse(id_response(body.product_id))


@router.post("/v1/contract-pricing/products/list")
def list_products(
    body: ProductListFilter | None = None,
    state: AppState = Depends(app_state),
    asked: Page[str] = Depends(paged("products", str)),
) -> ExactJSONResponse:
    archive_filter = body.archive_filter if body else "NOT_ARCHIVED"
    with state.db.read() as conn:
        found = store.list_products(
            conn, archive_filter=archive_filter, after_id=asked.after, limit=asked.size + 1
        )
    page, cursor = asked.cut(found, lambda p: p.id)
    now = now_us()
    return ExactJSONResponse({"data": [product_view(p, now) for p in page], "next_page": cursor})


@router.post("/v1/contract-pricing/products/archive")
def archive_product(body: ProductArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        store.archive_product(conn, body.product_id)
    return ExactJSONResponse(id_response(body.product_id))


def product_view(product: ProductRecord, now: int) -> dict[str, Any]:
    initial = product.versions[0]
    return {
        "id": product.id,
        "type": product.type,
        "initial": _state_view(initial.fields, initial),
        "current": _state_view(product.fields_at(now), initial),
        "updates": [_update_view(v) for v in product.versions[1:]],
        "archived_at": optional_time(product.archived_at_us),
        "custom_fields": product.custom_fields,
    }


def _state_view(fields: Mapping[str, Any], meta: ProductVersion) -> dict[str, Any]:
    shown = {k: v for k, v in _fields_view(fields).items() if v is not None}
    return {**shown, "created_at": format_rfc3339(meta.created_at_us), "created_by": meta.created_by}


def _update_view(version: ProductVersion) -> dict[str, Any]:
    assert version.starting_at_us is not None  # only the initial version has none
    return {
        **_fields_view(version.fields),  # a null here is a field the update removed
        "starting_at": format_rfc3339(version.starting_at_us),
        "created_at": format_rfc3339(version.created_at_us),
        "created_by": version.created_by,
    }


def _fields_view(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Stored fields keep decimals as text; the API shows them as exact JSON numbers."""
    shown = dict(fields)
    conversion = shown.get("quantity_conversion")
    if conversion:
        shown["quantity_conversion"] = {
            **conversion,
            "conversion_factor": Decimal(conversion["conversion_factor"]),
        }
    return shown


def _version_fields(body: ProductFields, names: set[str]) -> dict[str, Any]:
    """The given fields in stored (JSON) form: decimals as text, unset optional parts left out."""
    out: dict[str, Any] = {}
    for name in sorted(names):
        value = getattr(body, name)
        if isinstance(value, QuantityConversionIn):
            value = {**value.model_dump(exclude_none=True), "conversion_factor": str(value.conversion_factor)}
        elif isinstance(value, QuantityRoundingIn):
            value = value.model_dump()
        out[name] = value
    return out
