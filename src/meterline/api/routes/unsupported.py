"""Every path of Metronome's API (as the official SDK calls it) that meterline does not serve yet.

Each answers 501 `{"message": "meterline does not support POST /v1/packages/create yet"}`, behind the
same token check as every other route, so a client can tell "not built" from "mistyped" (404
`no route for ...`). The table is written out here rather than read from the SDK, which is only
a development dependency; tests/api/test_unsupported_routes.py walks the SDK's source and fails
when a path is neither served nor listed here, or is listed here and served too.

The routes are left out of the OpenAPI document: it describes what meterline serves, and a client
generated from it should not gain methods that can only fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request

from meterline.api.responses import ExactJSONResponse, message

UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/archiveCustomerBillingProviderConfigurations"),
    ("GET", "/v1/auditLogs"),
    ("POST", "/v1/contract-pricing/rate-cards/getNamedSchedule"),
    ("POST", "/v1/contract-pricing/rate-cards/moveRateCardProducts"),
    ("POST", "/v1/contract-pricing/rate-cards/setRateCardProductsOrder"),
    ("POST", "/v1/contract-pricing/rate-cards/updateNamedSchedule"),
    ("POST", "/v1/contracts/addManualBalanceLedgerEntry"),
    ("POST", "/v1/contracts/amend"),
    ("POST", "/v1/contracts/getNamedSchedule"),
    ("POST", "/v1/contracts/listNamedSchedules"),
    ("POST", "/v1/contracts/scheduleProServicesInvoice"),
    ("POST", "/v1/contracts/setUsageFilter"),
    ("POST", "/v1/contracts/updateNamedSchedule"),
    ("POST", "/v1/credits/createGrant"),
    ("POST", "/v1/credits/editGrant"),
    ("POST", "/v1/credits/listEntries"),
    ("POST", "/v1/credits/listGrants"),
    ("POST", "/v1/credits/voidGrant"),
    ("POST", "/v1/customers/getNamedSchedule"),
    ("POST", "/v1/customers/updateNamedSchedule"),
    ("POST", "/v1/customers/{customer_id}/addCharge"),
    ("DELETE", "/v1/customers/{customer_id}/billing-config/{billing_provider_type}"),
    ("GET", "/v1/customers/{customer_id}/billing-config/{billing_provider_type}"),
    ("POST", "/v1/customers/{customer_id}/billing-config/{billing_provider_type}"),
    ("GET", "/v1/customers/{customer_id}/invoices/breakdowns"),
    ("GET", "/v1/customers/{customer_id}/invoices/{invoice_id}/pdf"),
    ("GET", "/v1/customers/{customer_id}/plans"),
    ("POST", "/v1/customers/{customer_id}/plans/add"),
    ("POST", "/v1/customers/{customer_id}/plans/{customer_plan_id}/end"),
    ("GET", "/v1/customers/{customer_id}/plans/{customer_plan_id}/priceAdjustments"),
    ("POST", "/v1/customers/{customer_id}/previewEvents"),
    ("POST", "/v1/customers/{customer_id}/updateConfig"),
    ("POST", "/v1/getCustomerBillingProviderConfigurations"),
    ("POST", "/v1/listConfiguredBillingProviders"),
    ("POST", "/v1/packages/archive"),
    ("POST", "/v1/packages/create"),
    ("POST", "/v1/packages/get"),
    ("POST", "/v1/packages/list"),
    ("POST", "/v1/packages/listContractsOnPackage"),
    ("GET", "/v1/planDetails/{plan_id}"),
    ("GET", "/v1/planDetails/{plan_id}/charges"),
    ("GET", "/v1/planDetails/{plan_id}/customers"),
    ("GET", "/v1/plans"),
    ("GET", "/v1/services"),
    ("POST", "/v1/setCustomerBillingProviderConfigurations"),
    ("POST", "/v1/setUpBillingProvider"),
    ("POST", "/v1/upsertAvalaraCredentials"),
    ("POST", "/v2/notifications/archive"),
    ("POST", "/v2/notifications/create"),
    ("POST", "/v2/notifications/edit"),
    ("POST", "/v2/notifications/get"),
    ("POST", "/v2/notifications/offset/list"),
    ("POST", "/v2/notifications/system/list"),
)


def _not_built(method: str, path: str) -> Callable[[Request], Awaitable[ExactJSONResponse]]:
    answer = f"meterline does not support {method} {path} yet"

    async def not_built(_request: Request) -> ExactJSONResponse:
        return message(501, answer)

    return not_built


def unsupported_router() -> APIRouter:
    """Include it before the served routes: `GET /v1/customers/{id}/invoices/breakdowns` must not be
    read as the invoice with id `breakdowns`."""
    router = APIRouter(include_in_schema=False)
    for method, path in UNSUPPORTED:
        router.add_api_route(path, _not_built(method, path), methods=[method])
    return router
