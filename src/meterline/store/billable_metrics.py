"""Billable metrics: definitions as the API shows them, and the rules the evaluator applies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.metrics import MetricRules, rules_from_definition
from meterline.domain.timeutil import now_us
from meterline.store.tables import billable_metrics


@dataclass(frozen=True, slots=True)
class MetricRecord:
    id: str
    name: str
    aggregation_type: str
    aggregation_key: str | None
    event_type_filter: dict[str, list[str]] | None
    property_filters: list[dict[str, Any]]
    group_keys: list[list[str]]
    custom_fields: dict[str, str]
    archived_at_us: int | None

    def rules(self) -> MetricRules:
        return rules_from_definition(
            self.id,
            self.aggregation_type,
            self.aggregation_key,
            self.event_type_filter,
            self.property_filters,
            self.group_keys,
        )


def create_metric(
    conn: Connection,
    *,
    name: str,
    aggregation_type: str,
    aggregation_key: str | None,
    event_type_filter: dict[str, list[str]] | None,
    property_filters: list[dict[str, Any]],
    group_keys: list[list[str]],
    custom_fields: dict[str, str],
) -> str:
    metric_id = new_id()
    conn.execute(
        billable_metrics.insert().values(
            id=metric_id,
            name=name,
            aggregation_type=aggregation_type,
            aggregation_key=aggregation_key,
            event_type_filter=event_type_filter,
            property_filters=property_filters,
            group_keys=group_keys,
            custom_fields=custom_fields,
            created_at_us=now_us(),
        )
    )
    return metric_id


def get_metric(conn: Connection, metric_id: str) -> MetricRecord:
    found = list_metrics(conn, ids=[metric_id], include_archived=True, after_id=None, limit=1)
    if not found:
        raise NotFound(f"billable_metric_id: no billable metric with id {metric_id}")
    return found[0]


def list_metrics(
    conn: Connection,
    *,
    include_archived: bool,
    after_id: str | None,
    limit: int | None,
    ids: Sequence[str] | None = None,
) -> list[MetricRecord]:
    query = select(billable_metrics).order_by(billable_metrics.c.id)
    if not include_archived:
        query = query.where(billable_metrics.c.archived_at_us.is_(None))
    if after_id is not None:
        query = query.where(billable_metrics.c.id > after_id)
    if ids is not None:
        query = query.where(billable_metrics.c.id.in_(list(ids)))
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in conn.execute(query).mappings()]


def active_metric_rules(conn: Connection) -> list[MetricRules]:
    return [m.rules() for m in list_metrics(conn, include_archived=False, after_id=None, limit=None)]


def archive_metric(conn: Connection, metric_id: str) -> None:
    get_metric(conn, metric_id)
    conn.execute(
        update(billable_metrics)
        .where(billable_metrics.c.id == metric_id, billable_metrics.c.archived_at_us.is_(None))
        .values(archived_at_us=now_us())
    )


def rename_metric(conn: Connection, metric_id: str, name: str) -> None:
    get_metric(conn, metric_id)
    conn.execute(update(billable_metrics).where(billable_metrics.c.id == metric_id).values(name=name))


def _record(row: Any) -> MetricRecord:
    return MetricRecord(
        id=row["id"],
        name=row["name"],
        aggregation_type=row["aggregation_type"],
        aggregation_key=row["aggregation_key"],
        event_type_filter=row["event_type_filter"],
        property_filters=list(row["property_filters"] or []),
        group_keys=[list(k) for k in row["group_keys"] or []],
        custom_fields=dict(row["custom_fields"] or {}),
        archived_at_us=row["archived_at_us"],
    )
