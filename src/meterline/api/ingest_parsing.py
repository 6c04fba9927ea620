"""Turning an ingest body into validated events, fast.

The fast path decodes straight into typed structs (msgspec, about 1 M events/s on one core).
Any body it does not accept goes through the slow path, `domain.events.validate_batch`, which is
the source of truth for the rules and reports every problem of the batch at once. The fast path
never accepts what the slow path would refuse; it only skips work for valid batches.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

import msgspec

from meterline.domain.events import BatchRejected, IngestLimits, UsageEvent, timestamp_problem, validate_batch
from meterline.domain.timeutil import to_us

_decode_untyped = msgspec.json.Decoder(float_hook=Decimal).decode


@lru_cache(maxsize=4)
def _typed_decoder(limits: IngestLimits) -> msgspec.json.Decoder[Any]:
    """A decoder whose types carry the length and time-zone rules, so msgspec checks them in C."""
    wire_event = msgspec.defstruct(
        "WireEvent",
        [
            (
                "transaction_id",
                Annotated[str, msgspec.Meta(min_length=1, max_length=limits.max_transaction_id_chars)],
            ),
            (
                "customer_id",
                Annotated[str, msgspec.Meta(min_length=1, max_length=limits.max_customer_id_chars)],
            ),
            (
                "event_type",
                Annotated[str, msgspec.Meta(min_length=1, max_length=limits.max_event_type_chars)],
            ),
            ("timestamp", Annotated[datetime, msgspec.Meta(tz=True)]),
            ("properties", dict[str, Any], {}),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    batch = Annotated[list[wire_event], msgspec.Meta(min_length=1, max_length=limits.max_events)]  # type: ignore[valid-type]
    return msgspec.json.Decoder(batch, float_hook=Decimal)


def parse_batch(body: bytes, now_us: int, limits: IngestLimits) -> list[UsageEvent]:
    events = _fast_path(body, now_us, limits)
    if events is not None:
        return events
    try:
        payload = _decode_untyped(body)
    except msgspec.DecodeError as error:
        raise BatchRejected([f"body: is not valid JSON ({error})"]) from None
    return validate_batch(payload, now_us, limits)


def _fast_path(body: bytes, now_us: int, limits: IngestLimits) -> list[UsageEvent] | None:
    if b"\\u0000" in body:
        return None  # a NUL somewhere: let the slow path say which field may not hold it
    try:
        wire = _typed_decoder(limits).decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    stamps = [to_us(event.timestamp) for event in wire]
    if any(timestamp_problem(ts, now_us, limits) for ts in (min(stamps), max(stamps))):
        return None
    return [
        UsageEvent(event.transaction_id, event.customer_id, event.event_type, ts_us, event.properties)
        for event, ts_us in zip(wire, stamps, strict=True)
    ]
