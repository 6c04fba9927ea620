"""Where an alert's latency goes, stage by stage, from the server's debug log.

With `METERLINE_LOG_LEVEL=debug` the server logs each evaluator batch (when it began reading the
log, its clock, which every notification it wrote carries as `timestamp`, when it committed and
the claims it handed over), each claim the delivery process adopted (when its id came down the
pipe, when the event loop took it up, when its deliveries were read) and each attempt (when it was
sent, under which claim). A webhook received is matched to its batch by its `timestamp` and to
its attempt by its `id`; with the acknowledgement that crossed the threshold and the arrival, that
gives the stages:

- `ack_to_read`: the acknowledgement to the start of the batch that read the crossing event (the
  batch running when it landed, and the wake);
- `read_to_clock`: reading the log and beginning the batch's transaction;
- `clock_to_commit`: the batch itself (fold, measure, alerts, writes) and its commit;
- `commit_to_handed`: the claim's id through the pipe to the delivery process;
- `handed_to_read`: the delivery process's event loop taking the claim up, and reading it;
- `read_to_sent`: waiting for one of the endpoint's slots (the webhooks ahead of it);
- `sent_to_arrival`: the request itself (signing, HTTP, the receiver).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from bench.latency import Key, key_of, nearest_rank
from bench.receiver import Arrival

STAGES = (
    "ack_to_read",
    "read_to_clock",
    "clock_to_commit",
    "commit_to_handed",
    "handed_to_read",
    "read_to_sent",
    "sent_to_arrival",
)
LOG_LEVEL_ENV = {"METERLINE_LOG_LEVEL": "debug"}


@dataclass(frozen=True, slots=True)
class _Batch:
    read_at_us: int
    at_us: int
    committed_at_us: int


@dataclass(frozen=True, slots=True)
class _Adoption:
    handed_at_us: int
    read_at_us: int


@dataclass
class ServerLog:
    """The lines of a server's debug log that time an alert's way, by what matches them."""

    batches: dict[int, _Batch] = field(default_factory=dict)  # by the batch clock, in ms
    adoptions: dict[str, _Adoption] = field(default_factory=dict)  # by claim id
    attempts: dict[str, tuple[int, str]] = field(default_factory=dict)  # notification id: (sent, claim)

    @classmethod
    def read(cls, path: Path) -> ServerLog:
        found = cls()
        with path.open("rb") as lines:
            for line in lines:
                found._note(line)
        return found

    def _note(self, line: bytes) -> None:
        if not line.startswith(b"{") or b'"event"' not in line:
            return
        try:
            entry = json.loads(line)
        except ValueError:
            return
        event = entry.get("event")
        if event == "evaluator_batch" and "at_us" in entry:
            batch = _Batch(entry["read_at_us"], entry["at_us"], entry["committed_at_us"])
            self.batches[entry["at_us"] // 1000] = batch
        elif event == "webhook_claim_adopted" and entry.get("handed_at_us") is not None:
            self.adoptions[entry["claim_id"]] = _Adoption(entry["handed_at_us"], entry["read_at_us"])
        elif event == "webhook_attempt" and "attempted_at_us" in entry:
            self.attempts.setdefault(entry["notification_id"], (entry["attempted_at_us"], entry["claim_id"]))


def breakdown(log_path: Path, crossings: Mapping[Key, int], arrivals: Iterable[Arrival]) -> dict[str, object]:
    """p50 and p99 (ms) of each stage over the crossings whose webhook is traced from end to end."""
    server = ServerLog.read(log_path)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    traced = 0
    seen: set[Key] = set()
    for arrival in sorted(arrivals, key=lambda a: a.arrived_ns):
        key = key_of(arrival)
        if key is None or key not in crossings or key in seen or arrival.evaluated_ns is None:
            continue
        seen.add(key)
        stages = _stages(server, crossings[key] // 1000, arrival)
        if stages is None:
            continue
        traced += 1
        for stage, ms in zip(STAGES, stages, strict=True):
            samples[stage].append(ms)
    found: dict[str, object] = {"traced": traced}
    for stage, values in samples.items():
        values.sort()
        found[stage] = {
            "p50_ms": _round(nearest_rank(values, 50)),
            "p99_ms": _round(nearest_rank(values, 99)),
        }
    return found


def _stages(server: ServerLog, acked_us: int, arrival: Arrival) -> Sequence[float] | None:
    assert arrival.evaluated_ns is not None
    batch = server.batches.get(arrival.evaluated_ns // 1_000_000)
    attempt = server.attempts.get(_notification_id(arrival))
    if batch is None or attempt is None:
        return None
    sent_us, claim_id = attempt
    adoption = server.adoptions.get(claim_id)
    if adoption is None:
        return None
    instants = [
        acked_us,
        batch.read_at_us,
        batch.at_us,
        batch.committed_at_us,
        adoption.handed_at_us,
        adoption.read_at_us,
        sent_us,
        arrival.arrived_ns // 1000,
    ]
    return [(later - earlier) / 1000 for earlier, later in pairwise(instants)]


def _notification_id(arrival: Arrival) -> str:
    return str(json.loads(arrival.body).get("id", ""))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def describe(found: Mapping[str, object]) -> str:
    """One line: each stage's p50 / p99."""
    parts = []
    for stage in STAGES:
        figures = found.get(stage)
        if isinstance(figures, dict):
            parts.append(f"{stage} {_ms(figures['p50_ms'])} / {_ms(figures['p99_ms'])}")
    return f"stages over {found.get('traced', 0)} traced webhooks, p50 / p99: " + ", ".join(parts)


def _ms(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:,.1f} ms"
