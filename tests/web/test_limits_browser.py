"""The credits and spend_limits dashboards in a real browser (the system's Chromium), opened from
URLs the official SDK obtained: the numbers are the API's; a limit set in the panel is the alert the
API then shows; a limit above the operator's maximum is refused in words; new usage moves the panel
without a reload; a link for another dashboard cannot write limits."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from metronome import Metronome

from tests.sdk.alert_helpers import add_commit, add_credit, billed_customer, use
from tests.sdk.billing_helpers import balances
from tests.spend.helpers import Extensions
from tests.support.browser import expect
from tests.support.server import RunningServer
from tests.support.waiting import wait_for
from tests.web.test_limits_panel import limits_url

LIVE_TIMEOUT_MS = 5_000


@pytest.fixture
def api(server: RunningServer) -> Iterator[Extensions]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=10) as http:
        yield Extensions(http)


def test_credits_show_only_credits_with_the_apis_balances_and_ledgers(client: Metronome, page: Any) -> None:
    customer_id, usage = billed_customer(client, price=100)
    credit_id = add_credit(client, customer_id, 500)
    commit_id = add_commit(client, customer_id, 1000)
    use(client, customer_id, usage, 2)  # 200 cents, drawn from the one or the other
    found = wait_for(
        lambda: balances(client, customer_id),
        lambda b: b[credit_id]["balance"] + b[commit_id]["balance"] == 1300,
    )

    url = client.v1.dashboards.get_embeddable_url(customer_id=customer_id, dashboard="credits").data.url
    page.goto(url)
    assert page.locator("h1").inner_text() == "Credits"
    shown = page.locator(f"[data-commit-id='{credit_id}']")
    assert shown.locator("[data-balance]").inner_text() == f"${found[credit_id]['balance'] / 100:.2f}"
    assert shown.locator("tbody tr").count() == len(found[credit_id]["ledger"])
    assert page.locator(f"[data-commit-id='{commit_id}']").count() == 0  # a commit is not a credit


def test_a_limit_set_in_the_panel_is_the_alert_the_api_shows_and_moves_live(
    client: Metronome, api: Extensions, page: Any
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    use(client, customer_id, usage, 3)  # 300 cents
    wait_for(lambda: api.limits(customer_id), lambda v: v["current_spend"] == 300)
    page.goto(limits_url(client, customer_id, maximum_cents=5000))
    assert page.locator("[data-spend]").inner_text() == "$3.00"
    assert page.locator("[data-status-text]").inner_text() == "Within your limits"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll at 360 px
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Soft limit ($)").fill("2")
    page.get_by_label("Hard limit ($)").fill("40")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#limits-message")).to_have_text("Limits saved.")
    expect(page.locator("[data-status-text]")).to_have_text("Soft limit reached")
    view = api.limits(customer_id)
    assert (view["soft_limit"], view["hard_limit"], view["status"]) == (200, 4000, "soft_limit_reached")
    alerts = wait_for(
        lambda: {a.alert.id: a for a in client.v1.customers.alerts.list(customer_id=customer_id)},
        lambda found: (
            found.get(view["soft_limit_alert_id"]) is not None
            and found[view["soft_limit_alert_id"]].customer_status == "in_alarm"
        ),
    )
    assert alerts[view["hard_limit_alert_id"]].customer_status == "ok"
    assert page.locator("tr[data-limit='hard'] [data-percent]").inner_text() == "7%"

    page.get_by_label("Hard limit ($)").fill("60")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#limits-message")).to_have_text("Hard limit can be at most $50.00.")
    assert api.limits(customer_id)["hard_limit"] == 4000

    use(client, customer_id, usage, 40)  # 4300 cents: past the hard limit
    expect(page.locator("[data-status-text]")).to_have_text("Hard limit reached", timeout=LIVE_TIMEOUT_MS)
    assert page.locator("[data-spend]").inner_text() == "$43.00"
    assert page.locator("tr[data-limit='hard'] [data-time-to-limit]").inner_text() == "Reached"
    assert page.evaluate("window.notReloaded === true")
    assert api.limits(customer_id)["status"] == "hard_limit_reached"


def test_a_link_for_another_dashboard_cannot_write_limits(
    client: Metronome, api: Extensions, page: Any
) -> None:
    customer_id, _usage = billed_customer(client)
    page.goto(client.v1.dashboards.get_embeddable_url(customer_id=customer_id, dashboard="usage").data.url)
    answer = page.evaluate(
        """() => fetch(location.href + "/limits", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({hard_limit: "10"}),
        }).then(r => r.json().then(body => [r.status, body.message]))"""
    )
    assert answer == [403, "This link cannot set limits: only a spend limits dashboard link can."]
    assert page.locator("#limits-form").count() == 0
    assert api.limits(customer_id)["hard_limit"] is None
    assert Decimal(api.limits(customer_id)["current_spend"]) == 0
