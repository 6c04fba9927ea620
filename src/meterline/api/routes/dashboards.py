"""POST /v1/dashboards/getEmbeddableUrl: a URL showing one customer one dashboard, for an iframe.

The URL carries a signed, expiring capability (`api.dashboard_capability`); the page itself is
served by `meterline.web`. Dashboards meterline does not build yet are refused with a 400 naming
the value, so nothing half-built is reachable.
"""

from __future__ import annotations

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

BUILT = ("invoices", "usage", "commits_and_credits")
# `credits` is Metronome's dashboard of plan credit grants (/v1/credits/*, not served either);
# `spend_limits` is meterline's own, for when the spend-limits API exists.
NOT_YET = ("credits", "spend_limits")
# The dashboard_options each built dashboard honours.
OPTIONS = {
    "invoices": {
        "show_zero_usage_line_items",
        "contract_id",
        "invoice_type",
        "invoice_status_filter",
        "hide_voided_invoices",
    },
    "usage": set(),
    "commits_and_credits": set(),
}
METRONOME_DASHBOARDS = ("invoices", "usage", "credits", "commits_and_credits")
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
    dashboard: str
    color_overrides: list[ColorOverride] | None = Field(default=None, max_length=100)
    dashboard_options: list[DashboardOption] | None = Field(default=None, max_length=100)
    bm_group_key_overrides: list[GroupKeyOverride] | None = Field(default=None, max_length=100)


@router.post("/v1/dashboards/getEmbeddableUrl")
def get_embeddable_url(
    body: EmbeddableUrlRequest, request: Request, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    _check_dashboard(body.dashboard)
    options = _options(body.dashboard, body.dashboard_options or [])
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
    if dashboard in NOT_YET:
        raise InvalidInput(f"dashboard: meterline does not support dashboard {dashboard} yet")
    if dashboard not in BUILT:
        raise InvalidInput(f"dashboard: must be one of {', '.join(METRONOME_DASHBOARDS)}, not {dashboard!r}")


def _options(dashboard: str, given: list[DashboardOption]) -> dict[str, str]:
    options: dict[str, str] = {}
    for index, option in enumerate(given):
        where = f"dashboard_options[{index}]"
        if option.key not in OPTIONS[dashboard]:
            raise InvalidInput(f"{where}.key: {option.key} is not supported on the {dashboard} dashboard")
        if option.key in options:
            raise InvalidInput(f"{where}.key: {option.key} is given twice")
        _check_option_value(where, option.key, option.value)
        options[option.key] = option.value
    return options


def _check_option_value(where: str, key: str, value: Any) -> None:
    allowed: tuple[str, ...] | None = {
        "show_zero_usage_line_items": ("true", "false"),
        "hide_voided_invoices": ("true", "false"),
        "invoice_type": ("USAGE", "SCHEDULED"),
        "invoice_status_filter": INVOICE_STATUS_FILTERS,
    }.get(key)
    if allowed is not None and value not in allowed:
        raise InvalidInput(f"{where}.value: {key} must be one of {', '.join(allowed)}, not {value!r}")
