"""The embeddable dashboards in a real browser (the system's Chromium), opened from URLs the
official SDK obtained, checked against the API's own numbers, updated live, framed and refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from metronome import Metronome

from meterline.domain.timeutil import now_us
from tests.sdk.billing_helpers import (
    balances,
    contract,
    fixed_product,
    flat,
    rate_card,
    segment,
    this_hour_and_period,
    usage_product,
    wait_invoice,
)
from tests.sdk.helpers import event, ingest, new_customer
from tests.support.browser import expect
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.web.capabilities import signed_url

LIVE_TIMEOUT_MS = 5_000


def _billed_customer(client: Metronome) -> tuple[str, str, Any]:
    """A customer on a 25-cent-per-event contract with three events: two in `eu`, one in `us`."""
    hour, period_start, _end = this_hour_and_period()
    product_id, event_type = usage_product(client, group_keys=[["region"]])
    customer = new_customer(client)
    contract(client, customer, rate_card(client, flat(product_id, 25)), period_start)
    ingest(client, [event(customer, event_type, hour, region=r) for r in ("eu", "eu", "us")])
    invoice = wait_invoice(client, customer, period_start, subtotal=Decimal(75), total=Decimal(75))
    return customer, event_type, invoice


def test_invoices_and_usage_show_the_apis_numbers_and_follow_new_usage_live(
    client: Metronome, page: Any
) -> None:
    customer, event_type, invoice = _billed_customer(client)
    invoices_url = client.v1.dashboards.get_embeddable_url(
        customer_id=customer, dashboard="invoices"
    ).data.url
    page.goto(invoices_url)
    draft = page.locator(f"[data-invoice-id='{invoice['id']}']")
    assert draft.locator("[data-total]").inner_text() == f"${invoice['total'] / 100:.2f}"
    assert "Draft" in draft.locator("h2").inner_text()

    usage_url = client.v1.dashboards.get_embeddable_url(
        customer_id=customer,
        dashboard="usage",
        bm_group_key_overrides=[
            {"group_key_name": "region", "display_name": "Region", "value_display_names": {"eu": "Europe"}}
        ],
        color_overrides=[{"name": "UsageLine_0", "value": "#123456"}],
    ).data.url
    page.goto(usage_url)
    europe = page.locator("tr[data-group='Region: Europe'] td").last
    assert europe.inner_text() == "2"
    assert page.locator("tr[data-group='Region: us'] td").last.inner_text() == "1"
    assert page.locator("rect[fill='var(--UsageLine_0)']").count() > 0
    color = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--UsageLine_0')")
    assert color.strip() == "#123456"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll at 360 px

    page.evaluate("window.notReloaded = true")
    hour, _start, _end = this_hour_and_period()
    ingest(client, [event(customer, event_type, hour, region="eu") for _ in range(2)])
    expect(page.locator("tr[data-group='Region: Europe'] td").last).to_have_text("4", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.notReloaded === true")


def test_commits_and_credits_show_the_apis_balances_and_ledgers_live(client: Metronome, page: Any) -> None:
    hour, period_start, _end = this_hour_and_period()
    product_id, event_type = usage_product(client)
    customer = new_customer(client)
    credit = {
        "product_id": fixed_product(client),
        "priority": 1,
        "access_schedule": segment(100, period_start),
    }
    contract(client, customer, rate_card(client, flat(product_id, 25)), period_start, credits=[credit])
    ingest(client, [event(customer, event_type, hour) for _ in range(3)])
    wait_invoice(client, customer, period_start, subtotal=Decimal(75), total=Decimal(0))
    [(credit_id, found)] = balances(client, customer).items()

    url = client.v1.dashboards.get_embeddable_url(
        customer_id=customer, dashboard="commits_and_credits"
    ).data.url
    page.goto(url)
    shown = page.locator(f"[data-commit-id='{credit_id}']")
    assert shown.locator("[data-balance]").inner_text() == f"${found['balance'] / 100:.2f}" == "$0.25"
    ledger = shown.locator("tbody tr")
    assert ledger.count() == len(found["ledger"]) == 2
    assert "Automated invoice deduction" in ledger.last.inner_text()

    ingest(client, [event(customer, event_type, hour)])
    expect(shown.locator("[data-balance]")).to_have_text("$0.00", timeout=LIVE_TIMEOUT_MS)


def test_framed_by_the_origins_the_operator_lists_and_no_other(tmp_path: Path, page: Any) -> None:
    # The application's page is served for real on loopback (Chromium's local-network checks
    # block a page it cannot place from framing a loopback server, whatever the CSP says). The
    # same server is one origin as 127.0.0.1 (listed) and another as localhost (not listed).
    with host_page() as (port, set_body):
        allowed, forbidden = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
        # SQLite only: what is under test is a header, the same on every database.
        database = f"sqlite:///{tmp_path}/framed.db"
        server = start_server(
            database, tmp_path, **ENGINE_IN_THREADS, METERLINE_EMBED_FRAME_ANCESTORS=f"'self' {allowed}"
        )
        try:
            client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
            customer = new_customer(client)
            url = client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard="usage").data.url
            set_body(f"<!doctype html><title>app</title><iframe src='{url}' title='usage'></iframe>")
            page.goto(f"{allowed}/")
            assert page.frame_locator("iframe").locator("h1").inner_text() == "Usage"
            page.goto(f"{forbidden}/")
            page.wait_for_load_state("load")
            assert "Usage" not in page.frames[-1].content()  # the browser refused to frame it
        finally:
            server.stop()


@contextmanager
def host_page() -> Iterator[tuple[int, Callable[[str], None]]]:
    """An application's page, on a port of its own: (port, set its HTML)."""
    body = {"html": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body["html"])

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], lambda html: body.update(html=html.encode())
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tampered_and_expired_urls_show_a_403_page(
    client: Metronome, server: RunningServer, page: Any
) -> None:
    customer = new_customer(client)
    url = client.v1.dashboards.get_embeddable_url(customer_id=customer, dashboard="usage").data.url
    assert url is not None
    tampered = url[:-2] + ("AA" if not url.endswith("AA") else "BB")
    response = page.goto(tampered)
    assert response.status == 403
    assert "not valid" in page.locator("p.refused").inner_text()
    response = page.goto(signed_url(server, customer, "usage", now_us() - 1))
    assert response.status == 403
    assert "expired" in page.locator("p.refused").inner_text()
