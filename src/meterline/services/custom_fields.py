"""Custom fields: keys per entity type, values on one entity, and the uniqueness rule.

A key need not be added before values use it (creates and setValues take any key): adding a
key lists it, and with `enforce_uniqueness` keeps two active entities of the type from holding
the same value for it (a 409 naming the key, the value and who holds it). Removing a key
removes it from the list and ends its rule; values stay on the entities.

Values on contracts, commits and credits scope alert measures (`custom_field_filters`), so a
change asks the engine to re-measure that customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from meterline.domain.custom_fields import check_entity
from meterline.domain.errors import Conflict, NotFound
from meterline.store import custom_fields as store
from meterline.store.billing_requests import request_recompute
from meterline.store.custom_fields import CustomFieldKey


def add_key(conn: Connection, entity: str, key: str, enforce_uniqueness: bool) -> None:
    check_entity(entity)
    if enforce_uniqueness:
        shared = store.shared_value(conn, entity, key)
        if shared is not None:
            raise Conflict(
                f"enforce_uniqueness: several active {entity} entities hold value {shared!r} for key "
                f"{key!r}; give them distinct values first"
            )
    store.add_key(conn, entity, key, enforce_uniqueness)


def remove_key(conn: Connection, entity: str, key: str) -> None:
    check_entity(entity)
    if not store.remove_key(conn, entity, key):
        raise NotFound(f"key: no custom field key {key!r} on entity {entity}")


def list_keys(
    conn: Connection, entities: Sequence[str] | None, after: tuple[str, str] | None, limit: int
) -> list[CustomFieldKey]:
    """Keys of the given entity types (all when None); any type the SDK names may be asked for."""
    return store.list_keys(conn, entities, after, limit)


def set_values(conn: Connection, entity: str, entity_id: str, values: Mapping[str, str]) -> None:
    """Set these keys' values on the entity, leaving its other keys as they are."""
    check_entity(entity)
    current = store.fields_of(conn, entity, entity_id)
    if not current.archived:
        check_unique(conn, entity, values, "custom_fields", entity_id)
    store.replace_values(conn, entity, entity_id, {**current.values, **values})
    _remeasure(conn, current)


def delete_values(conn: Connection, entity: str, entity_id: str, keys: Sequence[str]) -> None:
    """Remove these keys' values from the entity (keys it does not hold are ignored)."""
    check_entity(entity)
    current = store.fields_of(conn, entity, entity_id)
    kept = {k: v for k, v in current.values.items() if k not in set(keys)}
    if kept != current.values:
        store.replace_values(conn, entity, entity_id, kept)
        _remeasure(conn, current)


def check_unique(
    conn: Connection, entity: str, values: Mapping[str, str], field: str, entity_id: str | None = None
) -> None:
    """Refuse (409) a value another active entity of the type holds for a key that enforces
    uniqueness. `entity_id` is the entity being changed (None: one being created)."""
    if not values:
        return
    for key in sorted(store.unique_keys(conn, entity) & set(values)):
        holder = store.holder_of(conn, entity, key, values[key], entity_id)
        if holder is not None:
            raise Conflict(
                f"{field}.{key}: value {values[key]!r} is already held by {entity} {holder}, and key "
                f"{key!r} enforces unique values on {entity}"
            )


def _remeasure(conn: Connection, changed: store.EntityFields) -> None:
    if changed.customer_id is not None:
        request_recompute(conn, changed.customer_id)
