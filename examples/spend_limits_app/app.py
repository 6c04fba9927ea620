"""Spend limits on meterline's spend control: a reference application.

An end customer sets a soft and a hard spend limit (in cents) from the product. The app:

- sets both in one call (`POST /v1/spend-limits/set`): meterline keeps them as ordinary
  `spend_threshold_reached` alerts, replaces a changed one atomically, and leaves an unchanged
  one alone (raising only the hard limit never sends the soft notice again);
- records the soft notice when meterline's webhook says the soft limit was reached (with
  `percent_used` and `remaining`): the notice a real app would email;
- blocks the customer once spend reaches the hard limit, and lets it in again after a raise, from
  an `AccessGuard`: a local cache of meterline's access decisions, pushed by
  `GET /v1/access/stream`, answering `has_access` from memory on every request. No table of
  alert ids, no webhook to block or unblock, no polling;
- guards an expensive operation (a run of calls) with a reservation (`POST /v1/access/reserve`):
  what the run will cost is held against the hard limit before it starts, so concurrent runs can
  never together pass the limit; the run's usage carries the reservation's id, which settles it
  once meterline has counted the usage (a run that fails releases it: `/v1/access/release`).

Every webhook's signature is verified (Standard Webhooks, with the `standardwebhooks` library)
and a notification id seen before is ignored (delivery is at least once). State lives in memory:
a real application keeps its notices in its database.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metronome import APIStatusError, Metronome
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from meterline.guard import AccessGuard

SOFT_NOTICE = "alerts.spend_threshold_reached"
WEBHOOK_PATH = "/webhooks/meterline"
LIMIT_FIELDS = ("soft_limit_cents", "hard_limit_cents")
CALL_PRICE_CENTS = 100  # what the app expects a call to cost (its price on the customer's rate card)
MAX_CALLS_PER_RUN = 100


class SpendLimits:
    """The app's state and rules, over a meterline client and an access guard."""

    def __init__(self, client: Metronome, guard: AccessGuard) -> None:
        self.client = client
        self.guard = guard
        self.verifier: Webhook | None = None
        self.soft_alerts: dict[str, str] = {}  # soft-limit alert id -> customer id (replaced ones too)
        self.notices: dict[str, list[dict[str, Any]]] = defaultdict(list)  # soft notices "sent"
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    # -- meterline ----------------------------------------------------------------------------
    def register(self, webhook_url: str) -> str:
        """Register (again) as meterline's webhook endpoint for spend notices; returns its id."""
        listed: Any = self.client.post("/v1/webhooks/endpoints/list", cast_to=object, body={})
        for endpoint in listed["data"]:
            if endpoint["url"] == webhook_url:
                self.client.post("/v1/webhooks/endpoints/remove", cast_to=object, body={"id": endpoint["id"]})
        created: Any = self.client.post(
            "/v1/webhooks/endpoints/create", cast_to=object, body={"url": webhook_url, "types": [SOFT_NOTICE]}
        )
        self.verifier = Webhook(created["data"]["secret"])
        return str(created["data"]["id"])

    def set_limits(self, customer_id: str, asked: dict[str, Any]) -> dict[str, Any]:
        """Set the limits the request names (null removes one, one left out stays as it is)."""
        body = {"customer_id": customer_id}
        for field in LIMIT_FIELDS:
            if field in asked:
                value = asked[field]
                if value is not None and (not isinstance(value, int) or value < 0):
                    raise ValueError(f"{field}: must be a whole number of cents, at least 0, or null")
                body[field.removesuffix("_cents")] = value
        with self.lock:  # a notice for the new soft alert waits until its id is known
            limits: Any = self.client.post("/v1/spend-limits/set", cast_to=object, body=body)
            if limits["data"]["soft_limit_alert_id"]:
                self.soft_alerts[limits["data"]["soft_limit_alert_id"]] = customer_id
        self.guard.watch(customer_id)
        data: dict[str, Any] = limits["data"]
        return data

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
        customer_id = self.soft_alerts.get(properties.get("alert_id", ""))
        if customer_id is None or kind != SOFT_NOTICE:
            return  # not this app's soft limit (the hard one blocks through the guard)
        self.notices[customer_id].append(
            {
                "spend": properties.get("current_spend"),
                "percent_used": properties.get("percent_used"),
                "at": properties["timestamp"],
            }
        )

    # -- an expensive operation, guarded by a reservation --------------------------------------
    def run_calls(self, customer_id: str, count: Any) -> tuple[int, dict[str, Any]]:
        """Run `count` calls for the customer if their cost fits under its hard limit, with what is
        already spent and held by runs still going: 200 when run, 402 when it would pass it."""
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CALLS_PER_RUN:
            raise ValueError(f"count: must be a whole number of calls from 1 to {MAX_CALLS_PER_RUN}")
        reservation_id = f"run-{uuid.uuid4().hex}"
        held: Any = self.client.post(
            "/v1/access/reserve",
            cast_to=object,
            body={
                "customer_id": customer_id,
                "reservation_id": reservation_id,
                "amount": count * CALL_PRICE_CENTS,
                "expires_in_seconds": 300,  # a run that never reports gives its amount back then
            },
        )
        answer = held["data"]
        if not answer["granted"]:
            message = f"{count} calls would pass the hard spend limit"
            return 402, {"message": message, "reason": answer["reason"], "remaining": answer["remaining"]}
        try:
            events = [self._call(customer_id) for _ in range(count)]
        except Exception:
            self.client.post("/v1/access/release", cast_to=object, body={"reservation_id": reservation_id})
            raise
        # Only the last event names the reservation: the events of one request are evaluated in
        # order, so it settles once every call of the run is in the spend.
        events[-1]["properties"] = {"reservation_id": reservation_id}
        self.client.v1.usage.ingest(usage=events)  # type: ignore[arg-type]
        return 200, {"calls": count, "reservation_id": reservation_id, "remaining": answer["remaining"]}

    @staticmethod
    def _call(customer_id: str) -> dict[str, Any]:
        """One call of the run (the work itself is the product's), as the usage event it bills."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "transaction_id": uuid.uuid4().hex,
            "customer_id": customer_id,
            "event_type": "call",
            "timestamp": now,
        }

    # -- what the product asks ------------------------------------------------------------------
    def status(self, customer_id: str) -> dict[str, Any]:
        """Access from the guard's memory; the limits, spend and status as meterline has them."""
        allowed = self.guard.has_access(customer_id)
        decision = self.guard.decision(customer_id)
        limits: Any = self.client.post(
            "/v1/spend-limits/get", cast_to=object, body={"customer_id": customer_id}
        )
        with self.lock:
            notices = list(self.notices[customer_id])
        return {
            "customer_id": customer_id,
            "access": "allowed" if allowed else "blocked",
            "reasons": [r.code for r in decision.reasons] if decision is not None else [],
            "notices": notices,
            "limits": limits["data"],
        }


_CUSTOMER = re.compile(r"^/customers/([^/]+)(/limits|/calls)?$")


def make_server(app: SpendLimits, host: str, port: int) -> ThreadingHTTPServer:
    """POST /webhooks/meterline, POST /customers/{id}/limits, POST /customers/{id}/calls
    ({"count"}: a run of calls, guarded by a reservation), GET /customers/{id}."""

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
                if not isinstance(asked, dict):
                    raise ValueError("body: must be an object")
                if match.group(2) == "/calls":
                    self._answer(*app.run_calls(match.group(1), asked.get("count")))
                else:
                    self._answer(200, app.set_limits(match.group(1), asked))
            except ValueError as error:
                self._answer(400, {"message": str(error)})
            except APIStatusError as refused:  # meterline's own word on it (a bad limit, no customer)
                self._answer(refused.status_code, {"message": refused.response.json()["message"]})

        def do_GET(self) -> None:
            match = _CUSTOMER.match(self.path)
            if match is None or match.group(2):
                self._answer(404, {"message": "not found"})
                return
            try:
                self._answer(200, app.status(match.group(1)))
            except APIStatusError as refused:
                self._answer(refused.status_code, {"message": refused.response.json()["message"]})

        def _answer(self, status: int, content: dict[str, Any] | None) -> None:
            data = b"" if content is None else json.dumps(content, default=_number).encode()
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


def _number(value: object) -> float | int:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
