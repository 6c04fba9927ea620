"""Billable metrics: which events a metric counts, the value it takes from each, its group.

Matching follows Metronome: the event_type filter and every property filter must pass (they are
ANDed); for every aggregation but COUNT the event must carry a usable `aggregation_key` value,
otherwise the event is not counted by that metric. Nor is an event whose group values are too
long to keep as a usage key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

# Numbers are kept exactly: at most this many digits on either side of the decimal point.
MAX_INTEGER_DIGITS = 40
MAX_FRACTION_DIGITS = 40
# Usage is keyed by the canonical text of an event's group values (a column of 1024 characters).
MAX_GROUP_TEXT_CHARS = 1024
# UNIQUE values are kept verbatim up to this size; longer ones (or ones with NUL, which
# PostgreSQL text cannot hold) are kept as a digest, which counts distinct values just as well.
MAX_UNIQUE_VALUE_BYTES = 512
UNIQUE_DIGEST_PREFIX = "sha256:"


class AggregationType(StrEnum):
    COUNT = "COUNT"
    SUM = "SUM"
    MAX = "MAX"
    UNIQUE = "UNIQUE"
    LATEST = "LATEST"


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    name: str
    exists: bool | None = None
    in_values: frozenset[str] | None = None
    not_in_values: frozenset[str] | None = None

    def passes(self, properties: Mapping[str, Any]) -> bool:
        present = self.name in properties and properties[self.name] is not None
        if self.exists is True and not present:
            return False
        if self.exists is False and present:
            return False
        if self.in_values is not None and (
            not present or scalar_text(properties[self.name]) not in self.in_values
        ):
            return False
        return not (
            self.not_in_values is not None
            and present
            and scalar_text(properties[self.name]) in self.not_in_values
        )


@dataclass(frozen=True, slots=True)
class MetricRules:
    """The part of a billable metric that decides what is counted and how."""

    id: str
    aggregation_type: AggregationType
    aggregation_key: str | None = None
    event_type_in: frozenset[str] | None = None
    event_type_not_in: frozenset[str] | None = None
    property_filters: tuple[PropertyFilter, ...] = ()
    group_keys: tuple[tuple[str, ...], ...] = ()
    group_dimensions: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        dims = sorted({key for compound in self.group_keys for key in compound})
        object.__setattr__(self, "group_dimensions", tuple(dims))

    def matches(self, event_type: str, properties: Mapping[str, Any]) -> bool:
        if not self.matches_type(event_type):
            return False
        return not self.property_filters or all(f.passes(properties) for f in self.property_filters)

    def matches_type(self, event_type: str) -> bool:
        """Whether the event type filter passes this type (the property filters aside)."""
        if self.event_type_in is not None and event_type not in self.event_type_in:
            return False
        return self.event_type_not_in is None or event_type not in self.event_type_not_in

    def value_of(self, properties: Mapping[str, Any]) -> Decimal | str | None:
        """The event's contribution, or None when the event cannot be counted by this metric."""
        if self.aggregation_type is AggregationType.COUNT:
            return ONE
        assert self.aggregation_key is not None
        raw = properties.get(self.aggregation_key)
        if raw is None:
            return None
        if self.aggregation_type is AggregationType.UNIQUE:
            return unique_key(scalar_text(raw))
        return as_decimal(raw)

    def group_of(self, properties: Mapping[str, Any]) -> str | None:
        """Canonical text of the event's values for every group dimension of this metric.

        None when that text is too long to keep, so the event cannot be counted by this metric.
        """
        if not self.group_dimensions:
            return NO_GROUP
        text = encode_group({dim: _group_value(properties.get(dim)) for dim in self.group_dimensions})
        return text if len(text) <= MAX_GROUP_TEXT_CHARS else None


ONE = Decimal(1)


def _group_value(raw: Any) -> str | None:
    return None if raw is None else scalar_text(raw)


def encode_group(values: Mapping[str, str | None]) -> str:
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"))


NO_GROUP = encode_group({})  # a metric without group keys: one group


def decode_group(text: str) -> dict[str, str | None]:
    decoded: dict[str, str | None] = json.loads(text)
    return decoded


def scalar_text(value: Any) -> str:
    """How a property value reads when compared with filter values or used as a group value."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def unique_key(text: str) -> str:
    """What a UNIQUE metric stores for a value: the value itself, or a digest when it cannot be."""
    if (
        len(text.encode()) <= MAX_UNIQUE_VALUE_BYTES
        and "\x00" not in text
        and not text.startswith(UNIQUE_DIGEST_PREFIX)
    ):
        return text
    return UNIQUE_DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


NUMBER_RULE = (
    f"must be a number with at most {MAX_INTEGER_DIGITS} digits before the decimal point and "
    f"{MAX_FRACTION_DIGITS} after it"
)


def out_of_range_number(value: Any) -> bool:
    """Whether a property value is a number (JSON number or numeric string) usage cannot keep.

    Ingest refuses such values, so no event is accepted whose value `as_decimal` would leave out.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return False
    if isinstance(value, str):
        # Fewer than MAX_INTEGER_DIGITS + 1 characters and no exponent: within both bounds.
        if len(value) <= MAX_INTEGER_DIGITS and "e" not in value and "E" not in value:
            return False
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return False
    number = Decimal(value) if isinstance(value, int) else value
    return number.is_finite() and not _within_bounds(number)


def _within_bounds(number: Decimal) -> bool:
    return number.adjusted() < MAX_INTEGER_DIGITS and int(number.as_tuple().exponent) >= -MAX_FRACTION_DIGITS


def as_decimal(value: Any) -> Decimal | None:
    """Exact decimal of a JSON number or numeric string; None for anything else.

    Also None for numbers with more digits than usage keeps (see MAX_INTEGER_DIGITS), so one
    absurd value cannot make the evaluator's exact arithmetic or the database overflow.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite():
        return None
    return number if _within_bounds(number) else None


def rules_from_definition(
    metric_id: str,
    aggregation_type: str,
    aggregation_key: str | None,
    event_type_filter: Mapping[str, Sequence[str] | None] | None,
    property_filters: Sequence[Mapping[str, Any]],
    group_keys: Sequence[Sequence[str]],
) -> MetricRules:
    etf = event_type_filter or {}
    in_values = etf.get("in_values")
    not_in_values = etf.get("not_in_values")
    return MetricRules(
        id=metric_id,
        aggregation_type=AggregationType(aggregation_type),
        aggregation_key=aggregation_key,
        event_type_in=frozenset(in_values) if in_values is not None else None,
        event_type_not_in=frozenset(not_in_values) if not_in_values is not None else None,
        property_filters=tuple(
            PropertyFilter(
                name=f["name"],
                exists=f.get("exists"),
                in_values=frozenset(f["in_values"]) if f.get("in_values") is not None else None,
                not_in_values=frozenset(f["not_in_values"]) if f.get("not_in_values") is not None else None,
            )
            for f in property_filters
        ),
        group_keys=tuple(tuple(k) for k in group_keys),
    )
