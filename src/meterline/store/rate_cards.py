"""Rate cards: name, fiat pricing unit, custom pricing unit conversions, aliases (rates: store/rates.py).

An alias names at most one active rate card at any instant: giving a rate card an alias that
another active rate card holds over an overlapping time range is a conflict (409). Metronome
instead moves the alias to the card it was most recently given to; meterline refuses, so an alias
never silently changes meaning. Archiving a rate card releases its aliases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, delete, select, text, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.timeutil import now_us
from meterline.store.tables import credit_types as credit_types_table
from meterline.store.tables import rate_card_aliases, rate_card_conversions, rate_cards


@dataclass(frozen=True, slots=True)
class RateCardAlias:
    name: str
    starting_at_us: int | None = None  # None: since the beginning
    ending_before_us: int | None = None  # None: open-ended

    def overlaps(self, other: RateCardAlias) -> bool:
        return starts_before(self.starting_at_us, other.ending_before_us) and starts_before(
            other.starting_at_us, self.ending_before_us
        )


@dataclass(frozen=True, slots=True)
class Conversion:
    custom_credit_type_id: str
    custom_credit_type_name: str
    fiat_per_custom_credit: Decimal


@dataclass(frozen=True, slots=True)
class RateCardRecord:
    id: str
    name: str
    description: str | None
    fiat_credit_type_id: str
    fiat_credit_type_name: str
    custom_fields: dict[str, str]
    created_at_us: int
    created_by: str
    archived_at_us: int | None
    conversions: list[Conversion]
    aliases: list[RateCardAlias]

    def fiat_per_custom_credit(self, credit_type_id: str) -> Decimal | None:
        """How many fiat units one unit of a custom pricing unit is worth here (None: no conversion)."""
        for conversion in self.conversions:
            if conversion.custom_credit_type_id == credit_type_id:
                return conversion.fiat_per_custom_credit
        return None


def insert_rate_card(
    conn: Connection,
    *,
    name: str,
    description: str | None,
    fiat_credit_type_id: str,
    custom_fields: dict[str, str],
    created_by: str,
) -> str:
    """Store a rate card `services.rate_cards` has checked (conversions and aliases follow)."""
    rate_card_id = new_id()
    conn.execute(
        rate_cards.insert().values(
            id=rate_card_id,
            name=name,
            description=description,
            fiat_credit_type_id=fiat_credit_type_id,
            custom_fields=custom_fields,
            created_at_us=now_us(),
            created_by=created_by,
        )
    )
    return rate_card_id


def set_fields(conn: Connection, rate_card_id: str, changes: dict[str, str]) -> None:
    if changes:
        conn.execute(update(rate_cards).where(rate_cards.c.id == rate_card_id).values(**changes))


def mark_archived(conn: Connection, rate_card_id: str) -> None:
    """Archived, its aliases released (they stay on its record)."""
    conn.execute(update(rate_cards).where(rate_cards.c.id == rate_card_id).values(archived_at_us=now_us()))
    conn.execute(
        update(rate_card_aliases).where(rate_card_aliases.c.rate_card_id == rate_card_id).values(active=False)
    )


def get_rate_card(conn: Connection, rate_card_id: str) -> RateCardRecord:
    found = _load(conn, [rate_card_id])
    if not found:
        raise NotFound(f"rate_card_id: no rate card with id {rate_card_id}")
    return found[0]


def rate_card_id_by_alias(conn: Connection, name: str, at_us: int) -> str | None:
    """The active rate card holding alias `name` at `at_us` (at most one: see _set_aliases)."""
    rows = conn.execute(
        select(
            rate_card_aliases.c.rate_card_id,
            rate_card_aliases.c.starting_at_us,
            rate_card_aliases.c.ending_before_us,
        ).where(rate_card_aliases.c.name == name, rate_card_aliases.c.active)
    )
    for rate_card_id, start, end in rows:
        if (start is None or start <= at_us) and (end is None or at_us < end):
            return str(rate_card_id)
    return None


def lock_rate_card(conn: Connection, rate_card_id: str) -> None:
    """Serialize writers of one rate card on PostgreSQL (SQLite writers are serialized already)."""
    conn.execute(select(rate_cards.c.id).where(rate_cards.c.id == rate_card_id).with_for_update())


def list_rate_cards(conn: Connection, *, after_id: str | None, limit: int) -> list[RateCardRecord]:
    """Rate cards not archived, by id (archived ones stay readable one by one with get_rate_card)."""
    query = (
        select(rate_cards.c.id)
        .where(rate_cards.c.archived_at_us.is_(None))
        .order_by(rate_cards.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(rate_cards.c.id > str(after_id))
    return _load(conn, list(conn.execute(query).scalars()))


def add_conversions(conn: Connection, rate_card_id: str, conversions: Sequence[tuple[str, Decimal]]) -> None:
    """Append conversions `services.rate_cards` has checked, after the card's existing ones."""
    position = len(conversion_ids(conn, rate_card_id))
    for offset, (credit_type_id, fiat_per_custom_credit) in enumerate(conversions):
        conn.execute(
            rate_card_conversions.insert().values(
                rate_card_id=rate_card_id,
                custom_credit_type_id=credit_type_id,
                fiat_per_custom_credit=fiat_per_custom_credit,
                position=position + offset,
            )
        )


def conversion_ids(conn: Connection, rate_card_id: str) -> set[str]:
    query = select(rate_card_conversions.c.custom_credit_type_id).where(
        rate_card_conversions.c.rate_card_id == rate_card_id
    )
    return set(conn.execute(query).scalars())


def replace_aliases(conn: Connection, rate_card_id: str, aliases: Sequence[RateCardAlias]) -> None:
    """Replace the rate card's aliases with ones `services.rate_cards` has checked."""
    conn.execute(delete(rate_card_aliases).where(rate_card_aliases.c.rate_card_id == rate_card_id))
    if aliases:
        conn.execute(
            rate_card_aliases.insert(),
            [
                {
                    "rate_card_id": rate_card_id,
                    "position": i,
                    "name": a.name,
                    "starting_at_us": a.starting_at_us,
                    "ending_before_us": a.ending_before_us,
                    "active": True,
                }
                for i, a in enumerate(aliases)
            ],
        )


def lock_alias_names(conn: Connection, names: set[str]) -> None:
    """Serialize writers of the same alias names on PostgreSQL, so two cannot both pass the check.

    SQLite needs nothing: its write transactions already run one at a time (BEGIN IMMEDIATE).
    """
    if conn.dialect.name != "postgresql":
        return
    for name in sorted(names):  # a fixed order, so two writers cannot deadlock
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"rate_card_alias:{name}"})


def aliases_held_elsewhere(
    conn: Connection, rate_card_id: str, names: set[str]
) -> list[tuple[str, RateCardAlias]]:
    """(rate card id, alias) of every active alias with one of these names on another rate card."""
    if not names:
        return []
    rows = conn.execute(
        select(
            rate_card_aliases.c.rate_card_id,
            rate_card_aliases.c.name,
            rate_card_aliases.c.starting_at_us,
            rate_card_aliases.c.ending_before_us,
        ).where(
            rate_card_aliases.c.name.in_(sorted(names)),
            rate_card_aliases.c.active,
            rate_card_aliases.c.rate_card_id != rate_card_id,
        )
    )
    return [(str(card), RateCardAlias(name, start, end)) for card, name, start, end in rows]


def _load(conn: Connection, ids: Sequence[str]) -> list[RateCardRecord]:
    if not ids:
        return []
    conversions = _load_conversions(conn, ids)
    aliases = _load_aliases(conn, ids)
    fiat = credit_types_table.alias("fiat")
    rows = conn.execute(
        select(rate_cards, fiat.c.name.label("fiat_name"))
        .join(fiat, fiat.c.id == rate_cards.c.fiat_credit_type_id)
        .where(rate_cards.c.id.in_(ids))
    ).mappings()
    by_id = {
        row["id"]: RateCardRecord(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            fiat_credit_type_id=row["fiat_credit_type_id"],
            fiat_credit_type_name=row["fiat_name"],
            custom_fields=dict(row["custom_fields"] or {}),
            created_at_us=row["created_at_us"],
            created_by=row["created_by"],
            archived_at_us=row["archived_at_us"],
            conversions=conversions[row["id"]],
            aliases=aliases[row["id"]],
        )
        for row in rows
    }
    return [by_id[i] for i in ids if i in by_id]


def _load_conversions(conn: Connection, ids: Sequence[str]) -> dict[str, list[Conversion]]:
    found: dict[str, list[Conversion]] = defaultdict(list)
    rows = conn.execute(
        select(
            rate_card_conversions.c.rate_card_id,
            rate_card_conversions.c.custom_credit_type_id,
            credit_types_table.c.name,
            rate_card_conversions.c.fiat_per_custom_credit,
        )
        .join(credit_types_table, credit_types_table.c.id == rate_card_conversions.c.custom_credit_type_id)
        .where(rate_card_conversions.c.rate_card_id.in_(ids))
        .order_by(rate_card_conversions.c.rate_card_id, rate_card_conversions.c.position)
    )
    for card_id, credit_type_id, name, fiat_per_custom_credit in rows:
        found[card_id].append(Conversion(credit_type_id, name, fiat_per_custom_credit))
    return found


def _load_aliases(conn: Connection, ids: Sequence[str]) -> dict[str, list[RateCardAlias]]:
    found: dict[str, list[RateCardAlias]] = defaultdict(list)
    rows = conn.execute(
        select(
            rate_card_aliases.c.rate_card_id,
            rate_card_aliases.c.name,
            rate_card_aliases.c.starting_at_us,
            rate_card_aliases.c.ending_before_us,
        )
        .where(rate_card_aliases.c.rate_card_id.in_(ids))
        .order_by(rate_card_aliases.c.rate_card_id, rate_card_aliases.c.position)
    )
    for card_id, name, start, end in rows:
        found[card_id].append(RateCardAlias(name, start, end))
    return found


def starts_before(start: int | None, end: int | None) -> bool:
    """start < end, where a missing start is the beginning of time and a missing end is never."""
    return start is None or end is None or start < end
