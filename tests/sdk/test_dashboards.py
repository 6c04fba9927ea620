"""POST /v1/dashboards/getEmbeddableUrl through the official SDK, and what its URLs open (or refuse)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
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


def test_credits_and_meterlines_spend_limits_dashboards_open(client: Metronome) -> None:
    customer = new_customer(client)
    credits = client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard="credits").data.url
    assert credits is not None
    page = httpx.get(credits)
    assert page.status_code == 200 and "<h1>Credits</h1>" in page.text and "No credits." in page.text
    # spend_limits is meterline's own: the SDK's literal type does not know it, its body does.
    limits = client.v1.dashboards.get_embeddable_url(
        customer_id=customer,
        dashboard="usage",
        extra_body={
            "dashboard": "spend_limits",
            "dashboard_options": [{"key": "max_spend_limit", "value": "5000"}],
        },
    ).data.url
    assert limits is not None
    page = httpx.get(limits)
    assert page.status_code == 200 and "<h1>Spend limits</h1>" in page.text
    assert "each at most $50.00" in page.text  # the URL's maximum, under the server's $1,000.00


def test_a_url_cannot_raise_the_operators_maximum(client: Metronome) -> None:
    customer = new_customer(client)

    def limits_url(value: str) -> Callable[[], object]:
        return lambda: client.v1.dashboards.get_embeddable_url(
            customer_id=customer,
            dashboard="usage",
            extra_body={
                "dashboard": "spend_limits",
                "dashboard_options": [{"key": "max_spend_limit", "value": value}],
            },
        )

    assert error_of(limits_url("100001"), 400) == (
        "dashboard_options[0].value: max_spend_limit must be at most 100000 (METERLINE_EMBED_MAX_SPEND_LIMIT), "
        "not 100001"
    )
    assert error_of(limits_url("ten"), 400) == (
        "dashboard_options[0].value: max_spend_limit must be a number of USD cents, not 'ten'"
    )
    assert error_of(limits_url("-1"), 400).startswith("dashboard_options[0].value: max_spend_limit must be")
    wrong_place = lambda: client.v1.dashboards.get_embeddable_url(  # noqa: E731
        customer_id=customer,
        dashboard="usage",
        extra_body={"dashboard_options": [{"key": "max_spend_limit", "value": "10"}]},
    )
    assert error_of(wrong_place, 400) == (
        "dashboard_options[0].key: max_spend_limit is not supported on the usage dashboard"
    )


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
