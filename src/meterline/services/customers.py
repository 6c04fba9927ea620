"""Customers: an ingest alias belongs to one active customer at a time (409 otherwise), archived
customers take nothing new, and archiving releases a customer's aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, InvalidInput
from meterline.services.custom_fields import check_unique
from meterline.store import customers as store
from meterline.store.billing_requests import request_recompute
from meterline.store.customers import CustomerRecord


def create_customer(
    conn: Connection,
    name: str,
    ingest_aliases: Sequence[str],
    custom_fields: dict[str, str],
    billing_config: dict[str, Any] | None = None,
) -> CustomerRecord:
    """`billing_config` is kept as given (the customer's account at a billing provider)."""
    aliases = _distinct(ingest_aliases)
    _refuse_aliases_in_use(conn, aliases, None)
    check_unique(conn, "customer", custom_fields, "custom_fields")
    created = store.insert_customer(conn, name, aliases, custom_fields, billing_config)
    # All-customers alerts apply to a new customer at once: its first measurement is due now.
    request_recompute(conn, created.id)
    return created


def active_customer(conn: Connection, customer_id: str) -> CustomerRecord:
    """The customer, refusing archived ones (they take no new contracts, commits or credits)."""
    customer = store.get_customer(conn, customer_id)
    if customer.archived_at_us is not None:
        raise InvalidInput(f"customer_id: customer {customer_id} is archived")
    return customer


def archive_customer(conn: Connection, customer_id: str) -> None:
    """Archive once (again is a no-op); the aliases stay on its record but another may use them."""
    if store.get_customer(conn, customer_id).archived_at_us is None:
        store.mark_archived(conn, customer_id)


def set_ingest_aliases(conn: Connection, customer_id: str, aliases: Sequence[str]) -> None:
    """An archived customer keeps its aliases on record without holding them."""
    customer = store.get_customer(conn, customer_id)
    wanted = _distinct(aliases)
    active = customer.archived_at_us is None
    if active:
        _refuse_aliases_in_use(conn, wanted, customer_id)
    store.replace_aliases(conn, customer_id, wanted, active=active)


def set_name(conn: Connection, customer_id: str, name: str) -> CustomerRecord:
    store.get_customer(conn, customer_id)
    return store.set_name(conn, customer_id, name)


def _refuse_aliases_in_use(conn: Connection, aliases: Sequence[str], customer_id: str | None) -> None:
    taken = store.alias_held_elsewhere(conn, aliases, customer_id)
    if taken is not None:
        raise Conflict(f"ingest_aliases: alias {taken!r} is already used by another customer")


def _distinct(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
