"""Re-make the screenshots of the embeddable dashboards (desktop and 360 px wide) in this folder.

    .venv/bin/python docs/screenshots/make.py

It starts meterline on a fresh SQLite database, creates a customer with a contract, a credit and
some usage through the official SDK, sets its spend limits, and photographs each dashboard in the
system's Chromium (spend_limits, meterline's own, is asked for in the body beside the SDK's types).
"""

from __future__ import annotations

import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from metronome import Metronome  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from tests.sdk.billing_helpers import (  # noqa: E402
    contract,
    fixed_product,
    flat,
    rate_card,
    segment,
    this_hour_and_period,
    usage_product,
    wait_invoice,
)
from tests.sdk.helpers import event, ingest, new_customer  # noqa: E402
from tests.support.server import start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"desktop": 1024, "360px": 360}
REGIONS = {"eu": "Europe", "us": "United States", "ap": "Asia-Pacific"}
DASHBOARDS = ("invoices", "usage", "credits", "commits_and_credits", "spend_limits")


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    server = start_server(f"sqlite:///{workdir}/screenshots.db", workdir)
    try:
        client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
        customer = _customer_with_usage(client)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for dashboard in DASHBOARDS:
                url = client.v1.dashboards.get_embeddable_url(
                    customer_id=customer,
                    dashboard="usage",
                    bm_group_key_overrides=[
                        {"group_key_name": "region", "display_name": "Region", "value_display_names": REGIONS}
                    ],
                    extra_body={"dashboard": dashboard},
                ).data.url
                for label, width in WIDTHS.items():
                    page = browser.new_page(viewport={"width": width, "height": 640})
                    page.goto(str(url))
                    page.screenshot(path=str(HERE / f"{dashboard}-{label}.png"), full_page=True)
                    page.close()
            browser.close()
    finally:
        server.stop()


def _customer_with_usage(client: Metronome) -> str:
    hour, period_start, _end = this_hour_and_period()
    product_id, event_type = usage_product(client, group_keys=[["region"]])
    customer = new_customer(client)
    credit = {
        "product_id": fixed_product(client),
        "priority": 1,
        "access_schedule": segment(500, period_start),
    }
    contract(client, customer, rate_card(client, flat(product_id, 25)), period_start, credits=[credit])
    regions = ["eu"] * 18 + ["us"] * 9 + ["ap"] * 5
    ingest(client, [event(customer, event_type, hour, region=r) for r in regions])
    wait_invoice(client, customer, period_start, subtotal=Decimal(800), total=Decimal(300))
    limits: dict[str, Any] = {"customer_id": customer, "soft_limit": 500, "hard_limit": 2500}
    client.post("/v1/spend-limits/set", cast_to=object, body=limits)
    return customer


if __name__ == "__main__":
    main()
