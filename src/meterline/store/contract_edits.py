"""The edit history of contracts: each edit as Metronome's v2 contracts/getEditHistory shows it.

The API renders an edit (what it added, updated, archived and removed) and stores it here in the
edit's own transaction, so the history never misses an edit that was applied nor shows one that
was rolled back. The document is kept as the exact JSON it was rendered to: numbers are written as
JSON numbers by msgspec and read back as Decimal, never through float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, select

from meterline.domain.ids import new_id
from meterline.store.tables import contract_edits

_encoder = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class ContractEditRecord:
    id: str
    edited_at_us: int
    parts: dict[str, Any]  # Metronome's fields of the edit (add_commits, update_contract_end_date, ...)


def insert_edit(conn: Connection, contract_id: str, edited_at_us: int, parts: dict[str, Any]) -> str:
    """Store one edit of the contract; its id."""
    edit_id = new_id()
    conn.execute(
        contract_edits.insert().values(
            id=edit_id,
            contract_id=contract_id,
            edited_at_us=edited_at_us,
            edit=_encoder.encode(parts).decode(),
        )
    )
    return edit_id


def edits_of(conn: Connection, contract_id: str) -> list[ContractEditRecord]:
    """The contract's edits, in the order they were applied."""
    query = (
        select(contract_edits.c.id, contract_edits.c.edited_at_us, contract_edits.c.edit)
        .where(contract_edits.c.contract_id == contract_id)
        .order_by(contract_edits.c.seq)
    )
    return [
        ContractEditRecord(row.id, row.edited_at_us, json.loads(row.edit, parse_float=Decimal))
        for row in conn.execute(query)
    ]
