"""Products: the rules a product and each update of it must meet.

Only USAGE and FIXED products; usage fields only on USAGE products, which price a billable metric
that exists, is not archived, and has the group keys the product names. An archived product takes
no updates, and an update changes at least one field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from meterline.domain.errors import InvalidInput
from meterline.domain.products import check_group_keys, refuse_unsupported_type, refuse_usage_fields_on
from meterline.services.custom_fields import check_unique
from meterline.store import billable_metrics
from meterline.store import products as store


def create_product(
    conn: Connection,
    *,
    product_type: str,
    fields: dict[str, Any],
    custom_fields: dict[str, str],
    created_by: str,
) -> str:
    """`fields` are the initial version's fields in JSON form (decimals as text)."""
    refuse_unsupported_type(product_type)
    refuse_usage_fields_on(product_type, fields)
    if product_type == "USAGE":
        _check_metric(conn, fields)
    check_unique(conn, "contract_product", custom_fields, "custom_fields")
    return store.create_product(
        conn, product_type=product_type, fields=fields, custom_fields=custom_fields, created_by=created_by
    )


def update_product(
    conn: Connection, product_id: str, *, starting_at_us: int, changes: dict[str, Any], created_by: str
) -> None:
    """An update that takes effect at `starting_at_us`; the history keeps every earlier state."""
    product = store.lock_product(conn, product_id)
    if product.archived_at_us is not None:
        raise InvalidInput(f"product_id: product {product_id} is archived and cannot be updated")
    if not changes:
        raise InvalidInput("body: give at least one field to change besides starting_at")
    refuse_usage_fields_on(product.type, changes)
    if product.type == "USAGE" and _touches_metric(changes):
        _check_metric(conn, {**product.fields_at(starting_at_us), **changes})
    store.add_version(conn, product, starting_at_us=starting_at_us, changes=changes, created_by=created_by)


def _touches_metric(changes: Mapping[str, Any]) -> bool:
    return any(k in changes for k in ("billable_metric_id", "pricing_group_key", "presentation_group_key"))


def _check_metric(conn: Connection, fields: Mapping[str, Any]) -> None:
    metric_id = fields.get("billable_metric_id")
    if not metric_id:
        raise InvalidInput("billable_metric_id: is required for USAGE products")
    found = billable_metrics.list_metrics(
        conn, ids=[metric_id], include_archived=True, after_id=None, limit=1
    )
    if not found:
        raise InvalidInput(f"billable_metric_id: no billable metric with id {metric_id}")
    if found[0].archived_at_us is not None:
        raise InvalidInput(f"billable_metric_id: billable metric {metric_id} is archived")
    check_group_keys(fields, found[0].rules().group_dimensions, metric_id)
