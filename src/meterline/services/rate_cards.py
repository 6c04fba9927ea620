"""Rate cards: the rules a rate card and each change of it must meet.

A rate card is priced in a fiat pricing unit and converts custom pricing units to it (each at
most once; a conversion never changes). An alias names at most one active rate card at any
instant: giving a rate card an alias another active card holds at an overlapping time is a 409.
An archived rate card takes no changes and no new rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.services.custom_fields import check_unique
from meterline.store import credit_types
from meterline.store import rate_cards as store
from meterline.store.rate_cards import RateCardAlias, RateCardRecord, starts_before


def create_rate_card(
    conn: Connection,
    *,
    name: str,
    description: str | None,
    fiat_credit_type_id: str,
    conversions: Sequence[tuple[str, Decimal]],
    aliases: Sequence[RateCardAlias],
    custom_fields: dict[str, str],
    created_by: str,
) -> str:
    _check_fiat(conn, fiat_credit_type_id)
    check_unique(conn, "rate_card", custom_fields, "custom_fields")
    rate_card_id = store.insert_rate_card(
        conn,
        name=name,
        description=description,
        fiat_credit_type_id=fiat_credit_type_id,
        custom_fields=custom_fields,
        created_by=created_by,
    )
    _add_conversions(conn, rate_card_id, conversions, "credit_type_conversions")
    _set_aliases(conn, rate_card_id, aliases)
    return rate_card_id


def update_rate_card(
    conn: Connection,
    rate_card_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    aliases: Sequence[RateCardAlias] | None = None,
    add_conversions: Sequence[tuple[str, Decimal]] = (),
) -> None:
    store.lock_rate_card(conn, rate_card_id)
    card = active_rate_card(conn, rate_card_id)
    store.set_fields(
        conn, card.id, {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    )
    _add_conversions(conn, card.id, add_conversions, "add_credit_type_conversions")
    if aliases is not None:
        _set_aliases(conn, card.id, aliases)


def archive_rate_card(conn: Connection, rate_card_id: str) -> None:
    """Archive once (again is a no-op), releasing its aliases."""
    if store.get_rate_card(conn, rate_card_id).archived_at_us is None:
        store.mark_archived(conn, rate_card_id)


def active_rate_card(conn: Connection, rate_card_id: str) -> RateCardRecord:
    """The rate card, refusing archived ones (they take no changes and no new rates)."""
    card = store.get_rate_card(conn, rate_card_id)
    if card.archived_at_us is not None:
        raise InvalidInput(f"rate_card_id: rate card {rate_card_id} is archived")
    return card


def _check_fiat(conn: Connection, credit_type_id: str) -> None:
    credit_type = _referenced_credit_type(conn, credit_type_id, "fiat_credit_type_id")
    if not credit_type.is_currency:
        raise InvalidInput(
            f"fiat_credit_type_id: {credit_type_id} is a custom pricing unit, not a fiat currency"
        )


def _add_conversions(
    conn: Connection, rate_card_id: str, conversions: Sequence[tuple[str, Decimal]], field: str
) -> None:
    if not conversions:
        return
    existing = store.conversion_ids(conn, rate_card_id)
    for index, (credit_type_id, _fiat_per_custom_credit) in enumerate(conversions):
        name = f"{field}.{index}.custom_credit_type_id"
        credit_type = _referenced_credit_type(conn, credit_type_id, name)
        if credit_type.is_currency:
            raise InvalidInput(f"{name}: {credit_type_id} is a fiat currency, not a custom pricing unit")
        if credit_type_id in existing:
            raise InvalidInput(
                f"{name}: the rate card already converts {credit_type_id}; conversions cannot be changed"
            )
        existing.add(credit_type_id)
    store.add_conversions(conn, rate_card_id, conversions)


def _referenced_credit_type(
    conn: Connection, credit_type_id: str, field: str
) -> credit_types.CreditTypeRecord:
    try:
        record = credit_types.get_credit_type(conn, credit_type_id)
    except NotFound:
        raise InvalidInput(f"{field}: no pricing unit with id {credit_type_id}") from None
    if record.archived_at_us is not None:
        raise InvalidInput(f"{field}: pricing unit {credit_type_id} is archived")
    return record


def _set_aliases(conn: Connection, rate_card_id: str, aliases: Sequence[RateCardAlias]) -> None:
    """Replace the rate card's aliases, refusing any an active rate card holds at an overlapping time."""
    _check_own_aliases(aliases)
    # Writers of the same names queue here, so two cannot both pass the check below.
    store.lock_alias_names(conn, {a.name for a in aliases})
    for other_card, held in store.aliases_held_elsewhere(conn, rate_card_id, {a.name for a in aliases}):
        if any(a.name == held.name and a.overlaps(held) for a in aliases):
            raise Conflict(
                f"aliases: alias {held.name!r} is already used by rate card {other_card} at an overlapping time"
            )
    store.replace_aliases(conn, rate_card_id, aliases)


def _check_own_aliases(aliases: Sequence[RateCardAlias]) -> None:
    for index, alias in enumerate(aliases):
        if not starts_before(alias.starting_at_us, alias.ending_before_us):
            raise InvalidInput(f"aliases.{index}.ending_before: must be after starting_at")
        for earlier in aliases[:index]:
            if earlier.name == alias.name and earlier.overlaps(alias):
                raise InvalidInput(
                    f"aliases.{index}: alias {alias.name!r} is given twice for overlapping times"
                )
