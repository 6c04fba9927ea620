"""Spend limits enforced from meterline's alerts: a reference webhook receiver.

A customer sets a SOFT and a HARD spend limit (in cents). The app creates two
`spend_threshold_reached` alerts for the customer in meterline and keeps the table that says
which is which: alert id -> (customer, SOFT or HARD). meterline's webhooks then drive access:

- `alerts.spend_threshold_reached` on the SOFT alert: the customer is notified (recorded here);
- `alerts.spend_threshold_reached` on the HARD alert: the customer's access is blocked;
- `alerts.spend_threshold_reached_resolved` on a HARD alert: the block is lifted.

A changed limit archives its alert and creates a new one (Metronome alerts have no update); an
unchanged limit keeps its alert, so raising only the HARD limit never sends the customer the SOFT
notice again. Archiving a HARD alert that is in alarm makes meterline send its `_resolved`
notification, which lifts the block; the new HARD alert blocks again at once if spend is already
past it (alerts are evaluated on creation).

Every webhook's signature is verified (Standard Webhooks, with the `standardwebhooks` library),
duplicate notification ids are ignored (delivery is at least once), and a notification older
than the last one applied for the same alert is ignored (retries may arrive out of order).
State lives in memory: a real application keeps it in its database.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metronome import Metronome
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SOFT, HARD = "SOFT", "HARD"
TRIGGERED = "alerts.spend_threshold_reached"
RESOLVED = "alerts.spend_threshold_reached_resolved"
WEBHOOK_PATH = "/webhooks/meterline"


@dataclass(frozen=True)
class Limits:
    soft_limit_cents: int
    hard_limit_cents: int
    soft_alert_id: str
    hard_alert_id: str


class SpendLimits:
    """The app's state and rules. One lock: webhooks and limit changes never interleave, so a
    webhook for an alert being created waits until the app knows the alert's id."""

    def __init__(self, client: Metronome) -> None:
        self.client = client
        self.verifier: Webhook | None = None
        self.alerts: dict[str, tuple[str, str]] = {}  # alert id -> (customer id, SOFT or HARD), archived too
        self.limits: dict[str, Limits] = {}
        self.blocked_by: dict[str, set[str]] = defaultdict(set)  # customer -> its HARD alerts in alarm
        self.notices: dict[str, list[dict[str, Any]]] = defaultdict(list)  # SOFT notifications "sent"
        self.seen: set[str] = set()
        self.applied_at: dict[str, datetime] = {}
        self.lock = threading.RLock()

    # -- meterline ----------------------------------------------------------------------------
    def register(self, webhook_url: str) -> str:
        """Register (again) as meterline's webhook endpoint for both spend types; returns its id."""
        listed = self.client.post("/v1/webhooks/endpoints/list", cast_to=object, body={})
        for endpoint in listed["data"]:  # type: ignore[index]
            if endpoint["url"] == webhook_url:
                self.client.post("/v1/webhooks/endpoints/remove", cast_to=object, body={"id": endpoint["id"]})
        created: Any = self.client.post(
            "/v1/webhooks/endpoints/create",
            cast_to=object,
            body={"url": webhook_url, "types": [TRIGGERED, RESOLVED]},
        )
        self.verifier = Webhook(created["data"]["secret"])
        return str(created["data"]["id"])

    def set_limits(self, customer_id: str, soft_cents: int, hard_cents: int) -> Limits:
        if not 0 < soft_cents <= hard_cents:
            raise ValueError("limits: need 0 < soft_limit_cents <= hard_limit_cents")
        with self.lock:
            previous = self.limits.get(customer_id)
            soft_id = self._alert_for(customer_id, SOFT, soft_cents, previous)
            hard_id = self._alert_for(customer_id, HARD, hard_cents, previous)
            self.limits[customer_id] = Limits(soft_cents, hard_cents, soft_id, hard_id)
            return self.limits[customer_id]

    def _alert_for(self, customer_id: str, level: str, threshold_cents: int, previous: Limits | None) -> str:
        """The alert for one limit: kept if its threshold is unchanged (re-creating it would notify
        the customer again of a limit already crossed), else archived and created anew."""
        if previous is not None:
            kept_cents, kept_id = (
                (previous.soft_limit_cents, previous.soft_alert_id)
                if level == SOFT
                else (previous.hard_limit_cents, previous.hard_alert_id)
            )
            if kept_cents == threshold_cents:
                return kept_id
            self.client.v1.alerts.archive(id=kept_id)
        return self._create_alert(customer_id, level, threshold_cents)

    def _create_alert(self, customer_id: str, level: str, threshold_cents: int) -> str:
        alert_id = self.client.v1.alerts.create(
            alert_type="spend_threshold_reached",
            name=f"{level} spend limit",
            threshold=threshold_cents,
            customer_id=customer_id,
        ).data.id
        self.alerts[alert_id] = (customer_id, level)
        return alert_id

    # -- webhooks -----------------------------------------------------------------------------
    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        """The HTTP status to answer: 204 when handled (or a duplicate), 400 when unverifiable."""
        if self.verifier is None:
            return 503
        try:
            notification = self.verifier.verify(body, headers)
        except WebhookVerificationError:
            return 400
        with self.lock:
            if notification["id"] not in self.seen:
                self.seen.add(notification["id"])
                self._apply(notification["type"], notification["properties"])
        return 204

    def _apply(self, kind: str, properties: dict[str, Any]) -> None:
        known = self.alerts.get(properties.get("alert_id", ""))
        if known is None or kind not in (TRIGGERED, RESOLVED):
            return  # not one of this app's alerts
        customer_id, level = known
        at = datetime.fromisoformat(properties["timestamp"])
        if at < self.applied_at.get(properties["alert_id"], at):
            return  # an older notification arriving late: the newer one already decided
        self.applied_at[properties["alert_id"]] = at
        if level == SOFT and kind == TRIGGERED:
            self.notices[customer_id].append(
                {"spend": properties.get("current_spend"), "at": properties["timestamp"]}
            )
        elif level == HARD and kind == TRIGGERED:
            self.blocked_by[customer_id].add(properties["alert_id"])
        elif level == HARD:
            self.blocked_by[customer_id].discard(properties["alert_id"])

    # -- what the product asks ------------------------------------------------------------------
    def status(self, customer_id: str) -> dict[str, Any]:
        with self.lock:
            limits = self.limits.get(customer_id)
            return {
                "customer_id": customer_id,
                "access": "blocked" if self.blocked_by[customer_id] else "allowed",
                "notices": list(self.notices[customer_id]),
                "limits": asdict(limits) if limits else None,
            }


_CUSTOMER = re.compile(r"^/customers/([^/]+)(/limits)?$")


def make_server(app: SpendLimits, host: str, port: int) -> ThreadingHTTPServer:
    """POST /webhooks/meterline, POST /customers/{id}/limits, GET /customers/{id}."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path == WEBHOOK_PATH:
                self._answer(app.receive(body, dict(self.headers.items())), None)
                return
            match = _CUSTOMER.match(self.path)
            if match is None or not match.group(2):
                self._answer(404, {"message": "not found"})
                return
            try:
                asked = json.loads(body)
                limits = app.set_limits(
                    match.group(1), int(asked["soft_limit_cents"]), int(asked["hard_limit_cents"])
                )
            except (ValueError, KeyError, TypeError) as error:
                self._answer(400, {"message": str(error)})
                return
            self._answer(200, asdict(limits))

        def do_GET(self) -> None:
            match = _CUSTOMER.match(self.path)
            if match is None or match.group(2):
                self._answer(404, {"message": "not found"})
                return
            self._answer(200, app.status(match.group(1)))

        def _answer(self, status: int, content: dict[str, Any] | None) -> None:
            data = b"" if content is None else json.dumps(content).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
