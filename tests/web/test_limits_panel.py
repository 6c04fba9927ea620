"""The spend_limits dashboard's write, as the page's script sends it (plain httpx here; the browser
tests click it): only a spend_limits link writes, only its customer's limits, each within the
operator's maximum, and what it sets is what /v1/spend-limits/get and the alerts show. The time to
a limit is checked at moments derived from now (the panel takes its clock as an argument)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from metronome import Metronome

from meterline.api.dashboard_capability import Capability
from meterline.domain.timeutil import US_PER_HOUR, hour_floor, now_us
from meterline.settings import Settings
from meterline.store.db import Database
from meterline.web.limits_board import limits_panel
from tests.sdk.alert_helpers import billed_customer, use
from tests.sdk.billing_helpers import month_start
from tests.sdk.helpers import hours_ago
from tests.spend.helpers import Extensions
from tests.support.server import RunningServer
from tests.support.waiting import wait_for
from tests.web.capabilities import pointed_at, signed_url


@pytest.fixture
def api(server: RunningServer) -> Iterator[Extensions]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=10) as http:
        yield Extensions(http)


def limits_url(client: Metronome, customer_id: str, maximum_cents: int | None = None) -> str:
    """A spend_limits link, as the operator's server asks for it with the SDK (meterline's own
    value, passed in the body beside what the SDK's types know)."""
    extra: dict[str, object] = {"dashboard": "spend_limits"}
    if maximum_cents is not None:
        extra["dashboard_options"] = [{"key": "max_spend_limit", "value": str(maximum_cents)}]
    url = client.v1.dashboards.get_embeddable_url(
        customer_id=customer_id, dashboard="usage", extra_body=extra
    )
    assert url.data.url is not None
    return url.data.url


def write(url: str, **typed: str) -> httpx.Response:
    """What the page's form sends: the limits as typed, in dollars, to the page's URL + /limits."""
    return httpx.post(f"{url}/limits", json=typed)


def test_the_panel_sets_its_customers_limits_as_the_api_shows_them(
    client: Metronome, api: Extensions
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    use(client, customer_id, usage, 3)  # 300 cents
    wait_for(lambda: api.limits(customer_id), lambda v: v["current_spend"] == 300)
    url = limits_url(client, customer_id, maximum_cents=5000)

    saved = write(url, soft_limit="2", hard_limit="40.00")
    assert saved.status_code == 200, saved.text
    view = saved.json(parse_float=Decimal)["data"]
    assert (view["soft_limit"], view["hard_limit"], view["status"]) == (200, 4000, "soft_limit_reached")
    assert api.limits(customer_id) == view
    listed = {a.alert.id: a for a in client.v1.customers.alerts.list(customer_id=customer_id)}
    assert listed[view["soft_limit_alert_id"]].alert.threshold == 200
    assert listed[view["hard_limit_alert_id"]].alert.threshold == 4000
    assert 'data-status="soft_limit_reached"' in saved.json()["body"]  # the panel, rendered again

    refusals = {
        "Hard limit can be at most $50.00.": {"hard_limit": "50.01"},
        "Hard limit cannot be removed here. Set an amount instead.": {"hard_limit": ""},
        "Soft limit can be at most the hard limit, $40.00.": {"soft_limit": "45"},
        "Soft limit: enter an amount in dollars, such as 250 or 12.50": {"soft_limit": "ten"},
        "Hard limit: enter an amount in dollars, such as 250 or 12.50": {"hard_limit": "1.005"},
    }
    for says, typed in refusals.items():
        refused = write(url, **typed)
        assert (refused.status_code, refused.json()) == (400, {"message": says}), typed
    assert api.limits(customer_id) == view  # nothing was written

    # A limit the operator set above the maximum stays while the customer changes the other one.
    api.set_limits(customer_id, hard_limit=900_000)
    kept = write(url, soft_limit="", hard_limit="9,000.00")
    assert kept.status_code == 200, kept.text
    assert (api.limits(customer_id)["soft_limit"], api.limits(customer_id)["hard_limit"]) == (None, 900_000)


def test_only_a_spend_limits_link_writes_and_only_as_json(
    client: Metronome, api: Extensions, server: RunningServer
) -> None:
    customer_id, _usage = billed_customer(client)
    other, _ = billed_customer(client)
    url = limits_url(client, customer_id)
    usage_url = client.v1.dashboards.get_embeddable_url(customer_id=customer_id, dashboard="usage").data.url
    assert usage_url is not None
    refused = {
        usage_url: "This link cannot set limits: only a spend limits dashboard link can.",
        url[:-2] + ("AA" if not url.endswith("AA") else "BB"): "This dashboard link is not valid.",
        pointed_at(url, other): "This dashboard link is not valid.",
        signed_url(
            server, customer_id, "spend_limits", now_us() - 1
        ): "This dashboard link has expired. Ask for a new one.",
    }
    for bad, says in refused.items():
        answer = write(bad, hard_limit="10")
        assert (answer.status_code, answer.json()) == (403, {"message": says}), bad
    # What a cross-site form could send (no preflight) is refused before anything is read.
    form = httpx.post(f"{url}/limits", content='{"hard_limit": "10"}', headers={"Content-Type": "text/plain"})
    assert (form.status_code, form.json()) == (415, {"message": "Content-Type: must be application/json"})
    for customer in (customer_id, other):
        assert (api.limits(customer)["soft_limit"], api.limits(customer)["hard_limit"]) == (None, None)
    assert write(url, hard_limit="10").status_code == 200


def test_time_to_limit_follows_the_pace_of_the_last_day(
    client: Metronome, api: Extensions, server: RunningServer
) -> None:
    # A yearly billing period that began at least 20 days ago: the moments below stay inside it.
    start = month_start(hours_ago(20 * 24))
    customer_id, usage = billed_customer(
        client, price=100, starting_at=start, usage_statement_schedule={"frequency": "ANNUAL"}
    )
    use(client, customer_id, usage, 24)  # 2400 cents this hour
    wait_for(lambda: api.limits(customer_id), lambda v: v["current_spend"] == 2400)
    api.set_limits(customer_id, soft_limit=2000, hard_limit=3000)

    now = now_us()
    capability = Capability(customer_id, "spend_limits", now + 60_000_000, {}, {}, [])
    settings = Settings(database_url=server.database_url)
    db = Database(server.database_url, pool_size=1)
    try:
        with db.read() as conn:
            at_once = limits_panel(conn, settings, capability, now)
            next_day = limits_panel(conn, settings, capability, hour_floor(now) + 26 * US_PER_HOUR)
    finally:
        db.dispose()
    # Now: 2400 cents since the window's start, over (now - window start): about 100 an hour.
    window_us = now - (hour_floor(now) - 24 * US_PER_HOUR)
    assert at_once.per_hour == Decimal(2400) * US_PER_HOUR / window_us
    soft, hard = at_once.rows
    left_hours = Decimal(600) / at_once.per_hour  # 3000 - 2400 at that pace: about 6 hours
    assert hard.time_to_limit == f"In about {int(left_hours + Decimal('0.5'))} hours"
    assert hard.percent_used == 80
    assert (soft.time_to_limit, soft.percent_used) == ("Reached", 120)
    # A day later with no more usage the window holds none: spend is flat.
    assert next_day.per_hour == 0
    assert next_day.rows[1].time_to_limit == "Not at this pace"
