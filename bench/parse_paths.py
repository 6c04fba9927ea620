"""Which parser should the ingest hot path use? Measures each candidate on the same batches.

Every path turns one HTTP body (a JSON array of 100 Metronome usage events) into validated
events. Figures are events/s on one core and the ratio to the baseline measured in the same run:
msgspec decoding the bytes with no validation at all.

    python bench/parse_paths.py [--batches 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meterline.api.ingest_parsing import parse_batch
from meterline.domain.events import IngestLimits, validate_batch
from meterline.domain.timeutil import now_us

EVENTS_PER_BATCH = 100


def make_bodies(count: int) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(hours=1)
    bodies = []
    for b in range(count):
        events = [
            {
                "transaction_id": str(uuid.uuid4()),
                "customer_id": f"customer-{(b * EVENTS_PER_BATCH + i) % 500}",
                "event_type": ("completion", "embedding", "image", "audio")[i % 4],
                "timestamp": (start + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
                "properties": {
                    "region": "us-east-1",
                    "model": "m1",
                    "tokens": 1200 + i,
                    "duration_ms": "12.5",
                },
            }
            for i in range(EVENTS_PER_BATCH)
        ]
        bodies.append(json.dumps(events).encode())
    return bodies


class PydanticEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transaction_id: str
    customer_id: str
    event_type: str
    timestamp: datetime
    properties: dict[str, Any] = {}


class StructEvent(msgspec.Struct, forbid_unknown_fields=True):
    transaction_id: str
    customer_id: str
    event_type: str
    timestamp: str
    properties: dict[str, Any] = {}


def candidates() -> dict[str, Callable[[bytes], object]]:
    limits = IngestLimits()
    now = now_us()
    untyped = msgspec.json.Decoder(float_hook=Decimal).decode
    typed = msgspec.json.Decoder(list[StructEvent], float_hook=Decimal).decode
    adapter = TypeAdapter(list[PydanticEvent])
    return {
        "baseline: msgspec decode, no validation": msgspec.json.decode,
        "chosen: parse_batch (typed msgspec + range checks)": lambda body: parse_batch(body, now, limits),
        "msgspec typed Struct alone (first error only)": typed,
        "slow path: msgspec untyped + validate_batch (all errors)": lambda body: validate_batch(
            untyped(body), now, limits
        ),
        "stdlib json + meterline validate_batch": lambda body: validate_batch(
            json.loads(body, parse_float=Decimal), now, limits
        ),
        "pydantic TypeAdapter.validate_json": adapter.validate_json,
    }


def measure(parse: Callable[[bytes], object], bodies: list[bytes], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for body in bodies:
            parse(body)
        rates.append(len(bodies) * EVENTS_PER_BATCH / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bodies = make_bodies(args.batches)
    results: dict[str, float] = {}
    with Progress(console=Console(stderr=True)) as progress:
        paths = candidates()
        task = progress.add_task("measuring parse paths", total=len(paths))
        for name, parse in paths.items():
            results[name] = measure(parse, bodies, args.repeats)
            progress.advance(task)
    baseline = next(iter(results.values()))
    table = Table(
        title=f"Ingest parse paths: {args.batches} batches of {EVENTS_PER_BATCH} events, median of {args.repeats}"
    )
    table.add_column("path")
    table.add_column("events/s", justify="right")
    table.add_column("ratio to baseline", justify="right")
    for name, rate in results.items():
        table.add_row(name, f"{rate:,.0f}", f"{rate / baseline:.2f}")
    console = Console()
    console.print(table)
    console.print(
        f"python {platform.python_version()}, msgspec {msgspec.__version__}, pydantic {pydantic.VERSION}, "
        f"{platform.machine()} {platform.processor() or ''}".strip()
    )


if __name__ == "__main__":
    main()
