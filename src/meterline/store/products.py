"""Products and their version history (the rules of how versions combine are in domain/products.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.products import (
    ProductState,
    ProductVersion,
    in_force,
    merged_fields,
    state_from_fields,
)
from meterline.domain.timeutil import now_us
from meterline.store.tables import product_versions, products

ArchiveFilter = Literal["ARCHIVED", "NOT_ARCHIVED", "ALL"]


@dataclass(frozen=True, slots=True)
class ProductRecord:
    id: str
    type: str
    custom_fields: dict[str, str]
    created_at_us: int
    archived_at_us: int | None
    versions: list[ProductVersion]  # creation order; [0] is the initial version

    def fields_at(self, at_us: int) -> dict[str, Any]:
        return merged_fields(in_force(self.versions, at_us))

    def state_at(self, at_us: int) -> ProductState:
        return state_from_fields(
            self.id, self.type, self.fields_at(at_us), self.custom_fields, self.archived_at_us
        )


def create_product(
    conn: Connection,
    *,
    product_type: str,
    fields: dict[str, Any],
    custom_fields: dict[str, str],
    created_by: str,
) -> str:
    """Store a product `services.products` has checked; `fields` are the initial version's fields
    in JSON form (decimals as text)."""
    product_id = new_id()
    now = now_us()
    conn.execute(
        products.insert().values(
            id=product_id, type=product_type, custom_fields=custom_fields, created_at_us=now
        )
    )
    _insert_version(conn, product_id, 0, None, fields, now, created_by)
    return product_id


def lock_product(conn: Connection, product_id: str) -> ProductRecord:
    """The product, locked so two concurrent updates cannot both take the same history position."""
    conn.execute(select(products.c.id).where(products.c.id == product_id).with_for_update())
    return get_product(conn, product_id)


def add_version(
    conn: Connection, product: ProductRecord, *, starting_at_us: int, changes: dict[str, Any], created_by: str
) -> None:
    """Record an update that takes effect at `starting_at_us`; the history keeps every earlier state."""
    position = len(product.versions)
    _insert_version(conn, product.id, position, starting_at_us, changes, now_us(), created_by)


def archive_product(conn: Connection, product_id: str) -> None:
    get_product(conn, product_id)
    conn.execute(
        update(products)
        .where(products.c.id == product_id, products.c.archived_at_us.is_(None))
        .values(archived_at_us=now_us())
    )


def get_product(conn: Connection, product_id: str) -> ProductRecord:
    found = _load(conn, [product_id])
    if not found:
        raise NotFound(f"product_id: no product with id {product_id}")
    return found[0]


def list_products(
    conn: Connection, *, archive_filter: ArchiveFilter, after_id: str | None, limit: int
) -> list[ProductRecord]:
    query = select(products.c.id).order_by(products.c.id).limit(limit)
    if archive_filter == "ARCHIVED":
        query = query.where(products.c.archived_at_us.is_not(None))
    elif archive_filter == "NOT_ARCHIVED":
        query = query.where(products.c.archived_at_us.is_(None))
    if after_id is not None:
        query = query.where(products.c.id > str(after_id))
    return _load(conn, list(conn.execute(query).scalars()))


def product_at(conn: Connection, product_id: str, at_us: int) -> ProductState:
    """The product as it is in force at `at_us` (archived products included: old usage still prices)."""
    return get_product(conn, product_id).state_at(at_us)


def products_at(conn: Connection, product_ids: Sequence[str], at_us: int) -> dict[str, ProductState]:
    """Like product_at for many products at once; unknown ids are left out."""
    return {p.id: p.state_at(at_us) for p in _load(conn, list(dict.fromkeys(product_ids)))}


def _insert_version(
    conn: Connection,
    product_id: str,
    position: int,
    starting_at_us: int | None,
    fields: dict[str, Any],
    created_at_us: int,
    created_by: str,
) -> None:
    conn.execute(
        product_versions.insert().values(
            product_id=product_id,
            position=position,
            starting_at_us=starting_at_us,
            fields=fields,
            created_at_us=created_at_us,
            created_by=created_by,
        )
    )


def _load(conn: Connection, ids: Sequence[str]) -> list[ProductRecord]:
    if not ids:
        return []
    versions: dict[str, list[ProductVersion]] = defaultdict(list)
    rows = conn.execute(
        select(product_versions)
        .where(product_versions.c.product_id.in_(ids))
        .order_by(product_versions.c.product_id, product_versions.c.position)
    ).mappings()
    for row in rows:
        versions[row["product_id"]].append(
            ProductVersion(
                fields=dict(row["fields"]),
                starting_at_us=row["starting_at_us"],
                created_at_us=row["created_at_us"],
                created_by=row["created_by"],
            )
        )
    by_id = {
        row["id"]: ProductRecord(
            id=row["id"],
            type=row["type"],
            custom_fields=dict(row["custom_fields"] or {}),
            created_at_us=row["created_at_us"],
            archived_at_us=row["archived_at_us"],
            versions=versions[row["id"]],
        )
        for row in conn.execute(select(products).where(products.c.id.in_(ids))).mappings()
    }
    return [by_id[i] for i in ids if i in by_id]
