"""Billable metrics: the rules a metric's definition must meet.

meterline aggregates with COUNT, SUM, MAX, UNIQUE or LATEST; SQL metrics are refused by name.
Every aggregation but COUNT reads a property (`aggregation_key`), and each group key is a
non-empty list of property names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from meterline.domain.errors import InvalidInput
from meterline.services.custom_fields import check_unique
from meterline.store import billable_metrics as store


@dataclass(frozen=True, slots=True)
class NewMetric:
    """A metric as requested (`create_metric` checks it)."""

    name: str
    aggregation_type: str | None
    aggregation_key: str | None = None
    event_type_filter: dict[str, list[str]] | None = None
    property_filters: list[dict[str, Any]] = field(default_factory=list)
    group_keys: list[list[str]] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)
    sql: str | None = None


def create_metric(conn: Connection, new: NewMetric) -> str:
    if new.sql is not None:
        raise InvalidInput("sql: SQL billable metrics are not supported by meterline; use aggregation_type")
    if new.aggregation_type is None:
        raise InvalidInput("aggregation_type: is required")
    if new.aggregation_type != "COUNT" and not new.aggregation_key:
        raise InvalidInput(f"aggregation_key: is required for {new.aggregation_type} metrics")
    if any(not key for key in new.group_keys) or any(not part for key in new.group_keys for part in key):
        raise InvalidInput("group_keys: each group key must be a non-empty list of property names")
    check_unique(conn, "billable_metric", new.custom_fields, "custom_fields")
    return store.create_metric(
        conn,
        name=new.name,
        aggregation_type=new.aggregation_type,
        aggregation_key=new.aggregation_key if new.aggregation_type != "COUNT" else None,
        event_type_filter=new.event_type_filter,
        property_filters=new.property_filters,
        group_keys=new.group_keys,
        custom_fields=new.custom_fields,
    )
