"""Usage events as Metronome's ingest API defines them, and the rules a batch must pass.

A batch is validated whole: every problem is collected with its event index and field, and a
batch with any problem is refused entirely, so nothing of it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterline.domain.metrics import NUMBER_RULE, out_of_range_number
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, parse_rfc3339, to_us

EVENT_FIELDS = frozenset({"transaction_id", "customer_id", "event_type", "timestamp", "properties"})
REQUIRED_FIELDS = ("transaction_id", "customer_id", "event_type", "timestamp")


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_events: int = 100
    max_backdate_days: int = 34
    max_future_hours: int = 24
    max_transaction_id_chars: int = 128
    # What the event log keeps: longer ids could not be stored, so they are refused up front.
    max_customer_id_chars: int = 256
    max_event_type_chars: int = 256


@dataclass(frozen=True, slots=True)
class UsageEvent:
    transaction_id: str
    customer_ref: str
    event_type: str
    timestamp_us: int
    properties: dict[str, Any]


class BatchRejected(ValueError):
    """The batch breaks at least one rule; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def validate_batch(payload: Any, now_us: int, limits: IngestLimits) -> list[UsageEvent]:
    if not isinstance(payload, list):
        raise BatchRejected(["body: must be a JSON array of usage events"])
    if not 1 <= len(payload) <= limits.max_events:
        raise BatchRejected([f"body: must hold between 1 and {limits.max_events} events, got {len(payload)}"])
    problems: list[str] = []
    events: list[UsageEvent] = []
    for index, raw in enumerate(payload):
        event = _validate_event(index, raw, now_us, limits, problems)
        if event is not None:
            events.append(event)
    if problems:
        raise BatchRejected(problems)
    return events


def _validate_event(
    index: int, raw: Any, now_us: int, limits: IngestLimits, problems: list[str]
) -> UsageEvent | None:
    where = f"events[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a JSON object")
        return None
    before = len(problems)
    problems.extend(f"{where}.{name}: unknown field" for name in sorted(set(raw) - EVENT_FIELDS))
    for name in REQUIRED_FIELDS:
        value = raw.get(name)
        if value is None:
            problems.append(f"{where}.{name}: is required")
        elif not isinstance(value, str):
            problems.append(f"{where}.{name}: must be a string, got {_json_type(value)}")
        elif not value:
            problems.append(f"{where}.{name}: must not be empty")
        elif "\x00" in value:
            problems.append(f"{where}.{name}: must not contain NUL characters")
    for name, max_chars in (
        ("transaction_id", limits.max_transaction_id_chars),
        ("customer_id", limits.max_customer_id_chars),
        ("event_type", limits.max_event_type_chars),
    ):
        value = raw.get(name)
        if isinstance(value, str) and len(value) > max_chars:
            problems.append(f"{where}.{name}: must be at most {max_chars} characters")
    properties = raw.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        problems.append(f"{where}.properties: must be an object, got {_json_type(properties)}")
    else:
        problems.extend(property_problems(where, properties))
    timestamp_us = _check_timestamp(where, raw.get("timestamp"), now_us, limits, problems)
    if len(problems) > before or timestamp_us is None:
        return None
    return UsageEvent(
        transaction_id=raw["transaction_id"],
        customer_ref=raw["customer_id"],
        event_type=raw["event_type"],
        timestamp_us=timestamp_us,
        properties=properties,
    )


def property_problems(where: str, properties: Mapping[str, Any]) -> list[str]:
    """Numbers a metric would read but usage could not keep: refused, never accepted and dropped."""
    return [
        f"{where}.properties.{key}: {NUMBER_RULE}"
        for key, value in properties.items()
        if out_of_range_number(value)
    ]


def timestamp_problem(ts_us: int, now_us: int, limits: IngestLimits) -> str | None:
    """Why a timestamp is outside the accepted range, or None when it is inside."""
    if ts_us > now_us + limits.max_future_hours * US_PER_HOUR:
        return f"must not be more than {limits.max_future_hours} hours in the future"
    if ts_us < now_us - limits.max_backdate_days * US_PER_DAY:
        return f"must not be more than {limits.max_backdate_days} days in the past"
    return None


def _check_timestamp(
    where: str, value: Any, now_us: int, limits: IngestLimits, problems: list[str]
) -> int | None:
    if not isinstance(value, str) or not value:
        return None  # already reported as missing or of the wrong type
    try:
        ts_us = to_us(parse_rfc3339(value))
    except (ValueError, OverflowError) as error:
        problems.append(f"{where}.timestamp: {error}")
        return None
    problem = timestamp_problem(ts_us, now_us, limits)
    if problem is not None:
        problems.append(f"{where}.timestamp: {problem}")
        return None
    return ts_us


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"
