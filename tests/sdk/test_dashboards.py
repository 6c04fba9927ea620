"""POST /v1/dashboards/getEmbeddableUrl through the official SDK, and what its URLs open (or refuse)."""

from __future__ import annotations

import httpx
import pytest
from metronome import Metronome

from meterline.domain.timeutil import now_us
from tests.sdk.contract_helpers import error_of
from tests.sdk.helpers import new_customer
from tests.support.server import RunningServer
from tests.web.capabilities import pointed_at, signed_url


def test_the_sdk_gets_a_url_that_opens_the_customers_page_without_a_token(client: Metronome) -> None:
    customer = new_customer(client)
    url = client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard="invoices").data.url
    assert url is not None and "/embed/dashboards/" in url
    page = httpx.get(url)
    assert page.status_code == 200 and "<h1>Invoices</h1>" in page.text
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert "set-cookie" not in page.headers


@pytest.mark.parametrize("dashboard", ["credits", "spend_limits"])
def test_dashboards_not_built_yet_are_refused_by_name(client: Metronome, dashboard: str) -> None:
    customer = new_customer(client)
    call = lambda: client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard=dashboard)  # type: ignore[arg-type]  # noqa: E731
    assert error_of(call, 400) == f"dashboard: meterline does not support dashboard {dashboard} yet"


def test_bad_bodies_get_a_400_naming_the_field(client: Metronome) -> None:
    customer = new_customer(client)
    get = client.v1.dashboards.get_embeddable_url
    unknown = error_of(lambda: get(customer_id=customer, dashboard="graphs"), 400)  # type: ignore[arg-type]
    assert unknown.startswith("dashboard: must be one of invoices, usage")
    option = error_of(
        lambda: get(
            customer_id=customer, dashboard="usage", dashboard_options=[{"key": "contract_id", "value": "x"}]
        ),
        400,
    )
    assert option == "dashboard_options[0].key: contract_id is not supported on the usage dashboard"
    color = error_of(
        lambda: get(
            customer_id=customer, dashboard="usage", color_overrides=[{"name": "Action", "value": "red"}]
        ),
        400,
    )
    assert color.startswith("color_overrides.0.value:")
    assert error_of(lambda: get(customer_id="no-such-customer", dashboard="usage"), 404).startswith(
        "customer_id:"
    )


def test_tampered_expired_and_redirected_urls_get_a_403_page(
    client: Metronome, server: RunningServer
) -> None:
    customer, other = new_customer(client), new_customer(client)
    url = client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard="usage").data.url
    assert url is not None
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    expired = signed_url(server, customer, "usage", now_us() - 1)
    for bad, says in (
        (tampered, "not valid"),
        (pointed_at(url, other), "not valid"),
        (expired, "has expired"),
        (f"{tampered}/stream", "not valid"),
    ):
        page = httpx.get(bad)
        assert page.status_code == 403, bad
        assert says in page.text
    assert httpx.get(signed_url(server, customer, "usage", now_us() + 60_000_000)).status_code == 200
