"""Recording a contract's edits (v2 contracts/getEditHistory) in the transaction that applies them.

A route that changes a contract takes the contract as shown before (`before_edit`), applies the
change, then `record_edit` stores what changed (`api.edit_parts`) as one edit, if anything did; a
request that is refused rolls its edit back with everything else. `before_edit` first holds the
customer's home partition (as every contract change does), so that no other change of the
contract, nor an engine batch, lands between the two views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from meterline.api.contract_views import contract_v2_view, contract_views
from meterline.api.edit_parts import edit_parts
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import NotFound
from meterline.domain.timeutil import now_us
from meterline.settings import Settings
from meterline.store import commits, contract_edits, partitions
from meterline.store import contracts as store
from meterline.store.contracts import ContractRecord
from meterline.store.subscriptions import SubscriptionRecord


@dataclass(frozen=True, slots=True)
class ContractBefore:
    """A contract as it was before a request changed it."""

    customer_id: str
    contract_id: str
    shown: dict[str, Any]  # the SDK's ContractV2
    subscriptions: tuple[SubscriptionRecord, ...]


def before_edit(
    conn: Connection, customer_id: str, contract_id: str, settings: Settings
) -> ContractBefore | None:
    """None if the customer has no such contract: the request refuses it, and there is no edit."""
    partitions.lock_home_partition(conn, customer_id)
    try:
        contract = store.get_contract(conn, customer_id, contract_id)
    except NotFound:
        return None
    return ContractBefore(customer_id, contract_id, _shown(conn, contract, settings), contract.subscriptions)


def before_commit_edit(
    conn: Connection, customer_id: str, commit_id: str, settings: Settings
) -> ContractBefore | None:
    """The contract of a commit or credit before its end date moves (None: it is the customer's)."""
    found = commits.get_commit(conn, customer_id, commit_id, (*commits.COMMIT_KINDS, CREDIT))
    if found is None or found.contract_id is None:
        return None
    return before_edit(conn, customer_id, found.contract_id, settings)


def record_edit(conn: Connection, before: ContractBefore | None, settings: Settings) -> None:
    """Store what the request changed in the contract as one edit (nothing if nothing changed)."""
    if before is None:
        return
    contract = store.get_contract(conn, before.customer_id, before.contract_id)
    parts = edit_parts(
        before.shown, _shown(conn, contract, settings), before.subscriptions, contract.subscriptions
    )
    if parts:
        contract_edits.insert_edit(conn, contract.id, now_us(), parts)


def _shown(conn: Connection, contract: ContractRecord, settings: Settings) -> dict[str, Any]:
    [shown] = contract_views(
        conn, contract.customer_id, [contract], settings, False, False, shape=contract_v2_view
    )
    return shown
