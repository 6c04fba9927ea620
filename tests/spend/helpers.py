"""Helpers for the spend-control tests: meterline's own routes over plain httpx, and webhooks to a
real receiver. Customers, products and usage come from the SDK alert helpers (tests/sdk)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from meterline.guard import read_events
from tests.delivery.receiver import Receiver
from tests.support.waiting import wait_for

Json = dict[str, Any]


@dataclass
class Extensions:
    """meterline's spend-control routes, as a client application calls them."""

    http: httpx.Client

    def post(self, path: str, body: Json | None = None, **params: Any) -> httpx.Response:
        return self.http.post(path, json=body, params=params or None)

    def ok(self, path: str, body: Json | None = None, **params: Any) -> Json:
        answer = self.post(path, body, **params)
        assert answer.status_code == 200, answer.text
        found: Json = answer.json(parse_float=Decimal)
        return found

    def refused(self, path: str, body: Json, status: int = 400) -> str:
        """The message of a request that must fail with `status`."""
        answer = self.post(path, body)
        assert answer.status_code == status, answer.text
        message: str = answer.json()["message"]
        return message

    def set_limits(self, customer_id: str, **limits: Any) -> Json:
        found: Json = self.ok("/v1/spend-limits/set", {"customer_id": customer_id, **limits})["data"]
        return found

    def limits(self, customer_id: str, **fields: Any) -> Json:
        found: Json = self.ok("/v1/spend-limits/get", {"customer_id": customer_id, **fields})["data"]
        return found

    def check(self, *refs: str) -> list[Json]:
        found: list[Json] = self.ok("/v1/access/check", {"customer_ids": list(refs)})["data"]
        return found

    def has_access(self, ref: str) -> bool:
        return bool(self.check(ref)[0]["has_access"])

    def wait_access(self, ref: str, expected: bool) -> Json:
        """The decision once the customer's access is `expected`."""
        decision: Json = wait_for(lambda: self.check(ref)[0], lambda d: d["has_access"] is expected)
        return decision

    def wait_status(self, customer_id: str, status: str) -> Json:
        found: Json = wait_for(lambda: self.limits(customer_id), lambda v: v["status"] == status)
        return found

    def webhook_receiver(self, *types: str) -> Receiver:
        """A real receiver on 127.0.0.1, registered for these notification types."""
        receiver = Receiver().up()
        self.ok("/v1/webhooks/endpoints/create", {"url": receiver.url, "types": list(types)})
        return receiver


def received(receiver: Receiver, customer_id: str) -> list[Json]:
    """The notifications the receiver got about the customer, in arrival order."""
    found = [json.loads(r.body, parse_float=Decimal) for r in list(receiver.requests)]
    return [n for n in found if n["properties"]["customer_id"] == customer_id]


def wait_received(receiver: Receiver, customer_id: str, count: int) -> list[Json]:
    return wait_for(lambda: received(receiver, customer_id), lambda got: len(got) >= count)


class EventStream:
    """GET /v1/access/stream read on a thread of its own, every event kept as (type, data, id)."""

    def __init__(self, base_url: str, token: str, refs: list[str], heartbeat_s: float = 1.0, **headers: str):
        self.events: list[tuple[str, Json, str | None]] = []
        self.status: int | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._args = (base_url, token, refs, heartbeat_s, headers)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        base_url, token, refs, heartbeat_s, headers = self._args
        params = {"customer_ids": ",".join(refs), "heartbeat_s": str(heartbeat_s)}
        with httpx.stream(
            "GET",
            f"{base_url}/v1/access/stream",
            params=params,
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=httpx.Timeout(10, read=heartbeat_s * 3 + 5),
        ) as response:
            self.status = response.status_code
            if response.status_code != 200:
                self.error = response.read().decode()
                return
            for kind, data, event_id in read_events(response.iter_lines()):
                self.events.append((kind, json.loads(data, parse_float=Decimal), event_id))
                if self._stop.is_set():
                    return

    def of(self, kind: str) -> list[Json]:
        return [data for k, data, _id in list(self.events) if k == kind]

    def last_id(self) -> str | None:
        return next((i for _k, _d, i in reversed(list(self.events)) if i is not None), None)

    def wait(self, kind: str, count: int = 1, timeout_s: float = 10.0) -> list[Json]:
        return wait_for(lambda: self.of(kind), lambda found: len(found) >= count, timeout_s)

    def close(self) -> None:
        """Stop reading at the next event (a heartbeat at the latest)."""
        self._stop.set()
        self._thread.join(15)
