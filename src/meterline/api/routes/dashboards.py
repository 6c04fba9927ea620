"""POST /v1/dashboards/getEmbeddableUrl: a URL showing one customer one dashboard, for an iframe.

The URL carries a signed, expiring capability (`api.dashboard_capability`); the page itself is
served by `meterline.web`. Besides Metronome's four dashboards, meterline's own `spend_limits`:
the panel where the end customer sees and sets its own spend limits, each at most the operator's
maximum (`METERLINE_EMBED_MAX_SPEND_LIMIT`, lowered for one URL by the `max_spend_limit` option).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from meterline.api import dashboard_capability
from meterline.api.dashboard_capability import Capability, GroupNames
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import now_us
from meterline.services import customers

router = APIRouter()

METRONOME_DASHBOARDS = ("invoices", "usage", "credits", "commits_and_credits")
DASHBOARDS = (*METRONOME_DASHBOARDS, "spend_limits")
# The dashboard_options each dashboard honours.
OPTIONS = {
    "invoices": {
        "show_zero_usage_line_items",
        "contract_id",
        "invoice_type",
        "invoice_status_filter",
        "hide_voided_invoices",
    },
    "usage": set(),
    "credits": set(),
    "commits_and_credits": set(),
    "spend_limits": {"max_spend_limit"},
}
INVOICE_STATUS_FILTERS = ("VOID", "FINALIZED", "DRAFT", "FINALIZED_AND_DRAFT", "ALL")
ColorName = Literal[
    "Gray_dark",
    "Gray_medium",
    "Gray_light",
    "Gray_extralight",
    "White",
    "Primary_medium",
    "Primary_light",
    "UsageLine_0",
    "UsageLine_1",
    "UsageLine_2",
    "UsageLine_3",
    "UsageLine_4",
    "UsageLine_5",
    "UsageLine_6",
    "UsageLine_7",
    "UsageLine_8",
    "UsageLine_9",
    "Primary_green",
    "Primary_red",
    "Progress_bar",
    "Progress_bar_background",
    "Action",
    "Action_hover",
]
OptionKey = Literal[
    "show_zero_usage_line_items",
    "contract_id",
    "invoice_type",
    "invoice_status_filter",
    "hide_voided_invoices",
    "billable_status_filter",
    "hide_grant_name",
    "credit_ledger_credit_type_id",
    "max_spend_limit",  # meterline's, on spend_limits: in USD cents, at most the setting
]


class ColorOverride(StrictModel):
    name: ColorName
    value: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="a hex color, #RRGGBB")


class DashboardOption(StrictModel):
    key: OptionKey
    value: str


class GroupKeyOverride(StrictModel):
    group_key_name: str = Field(min_length=1)
    display_name: str | None = None
    value_display_names: dict[str, str] | None = None


class EmbeddableUrlRequest(StrictModel):
    customer_id: str
    dashboard: str = Field(
        description="invoices, usage, credits, commits_and_credits (Metronome's), or meterline's "
        "spend_limits: the end customer sees and sets its own spend limits (dashboard_options "
        "max_spend_limit, in USD cents, lowers METERLINE_EMBED_MAX_SPEND_LIMIT for this URL)",
        json_schema_extra={"enum": list(DASHBOARDS)},
    )
    color_overrides: list[ColorOverride] | None = Field(default=None, max_length=100)
    dashboard_options: list[DashboardOption] | None = Field(default=None, max_length=100)
    bm_group_key_overrides: list[GroupKeyOverride] | None = Field(default=None, max_length=100)


@router.post("/v1/dashboards/getEmbeddableUrl")
def get_embeddable_url(
    body: EmbeddableUrlRequest, request: Request, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    _check_dashboard(body.dashboard)
    options = _options(body.dashboard, body.dashboard_options or [], state.settings.embed_max_spend_limit)
    with state.db.read() as conn:
        customers.active_customer(conn, body.customer_id)
    capability = Capability(
        customer_id=body.customer_id,
        dashboard=body.dashboard,
        expires_us=now_us() + round(state.settings.embed_url_ttl_s * 1_000_000),
        colors={c.name: c.value.lower() for c in body.color_overrides or []},
        options=options,
        groups=[
            GroupNames(g.group_key_name, g.display_name, g.value_display_names or {})
            for g in body.bm_group_key_overrides or []
        ],
    )
    token = dashboard_capability.issue(state.cursors, capability)
    base = (state.settings.embed_base_url or str(request.base_url)).rstrip("/")
    return ExactJSONResponse({"data": {"url": f"{base}/embed/dashboards/{token}"}})


def _check_dashboard(dashboard: str) -> None:
    if dashboard not in DASHBOARDS:
        raise InvalidInput(f"dashboard: must be one of {', '.join(DASHBOARDS)}, not {dashboard!r}")


def _options(dashboard: str, given: list[DashboardOption], maximum: Decimal) -> dict[str, str]:
    options: dict[str, str] = {}
    for index, option in enumerate(given):
        where = f"dashboard_options[{index}]"
        if option.key not in OPTIONS[dashboard]:
            raise InvalidInput(f"{where}.key: {option.key} is not supported on the {dashboard} dashboard")
        if option.key in options:
            raise InvalidInput(f"{where}.key: {option.key} is given twice")
        _check_option_value(where, option.key, option.value)
        if option.key == "max_spend_limit":
            _check_maximum(where, option.value, maximum)
        options[option.key] = option.value
    return options


def _check_maximum(where: str, value: str, maximum: Decimal) -> None:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidInput(
            f"{where}.value: max_spend_limit must be a number of USD cents, not {value!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(f"{where}.value: max_spend_limit must be a non-negative number, not {value!r}")
    if amount > maximum:
        raise InvalidInput(
            f"{where}.value: max_spend_limit must be at most {maximum} (METERLINE_EMBED_MAX_SPEND_LIMIT), not {value}"
        )


def _check_option_value(where: str, key: str, value: Any) -> None:
    allowed: tuple[str, ...] | None = {
        "show_zero_usage_line_items": ("true", "false"),
        "hide_voided_invoices": ("true", "false"),
        "invoice_type": ("USAGE", "SCHEDULED"),
        "invoice_status_filter": INVOICE_STATUS_FILTERS,
    }.get(key)
    if allowed is not None and value not in allowed:
        raise InvalidInput(f"{where}.value: {key} must be one of {', '.join(allowed)}, not {value!r}")
