"""The webhook receiver (records when each notification arrives and what it is about) and the
sink the load generator's ceiling is measured against (answers 200 `{}`, records nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bench.httpserver import ServerProcess


@dataclass(frozen=True)
class Arrival:
    arrived_ns: int
    type: str
    customer_id: str
    alert_id: str
    alert_name: str
    evaluated_ns: int | None = None  # the payload's timestamp: when its evaluator batch began (ms)
    body: bytes = b""  # as received: the bare client's baseline posts the same bodies


def _record(arrived_ns: int, _head: bytes, body: bytes) -> tuple[int, bytes]:
    return arrived_ns, body  # parsed after the run: arrival costs as little as possible


def _discard(_arrived_ns: int, _head: bytes, _body: bytes) -> None:
    return None


def parse(arrived_ns: int, body: bytes) -> Arrival:
    payload = json.loads(body)
    properties = payload.get("properties", {})
    return Arrival(
        arrived_ns,
        str(payload.get("type", "")),
        str(properties.get("customer_id", "")),
        str(properties.get("alert_id", "")),
        str(properties.get("alert_name", "")),
        _instant_ns(properties.get("timestamp")),
        body,
    )


def _instant_ns(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000
    except ValueError:
        return None


class Receiver:
    """A webhook endpoint on 127.0.0.1 in its own process."""

    def __init__(self) -> None:
        self._server = ServerProcess(_record)
        self.url = self._server.url + "/webhooks"
        self._arrivals: list[Arrival] | None = None

    @property
    def received(self) -> int:
        return self._server.received

    def stop(self) -> list[Arrival]:
        """Stop receiving (once); returns every arrival, oldest first."""
        if self._arrivals is None:
            self._arrivals = sorted(
                (parse(arrived, body) for arrived, body in self._server.stop()), key=lambda a: a.arrived_ns
            )
        return self._arrivals


class Sink:
    """Answers every request with 200 `{}` at once, in its own process."""

    def __init__(self) -> None:
        self._server = ServerProcess(_discard)
        self.port = self._server.port

    def stop(self) -> None:
        self._server.stop()
