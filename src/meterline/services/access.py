"""Access decisions for many customers, from what the engine has evaluated (meterline's extension).

At most two statements whatever the number of customers, never one per customer: one on the
state database (`store.access.read_facts`: the customers the references name, their blocking
alerts and states, the changes not yet applied, the partitions' positions, all in one snapshot),
then, where the event log is a database of its own (SQLite), one on the log (the arrival of the
oldest event not yet evaluated). That order is what makes `as_of` true: the log is read after the
states, so an event it shows waiting may be missing from them, never the other way round. Where
the log shares the database (PostgreSQL), the first statement reads it too, in the same snapshot.

`as_of`: every event acknowledged before it has been evaluated, and every change made before it
applied. When the engine has applied the whole log (an idle engine is up to date), it is the
instant of the check; otherwise just before the oldest event still waiting arrived. A change to
the customer the engine has not applied yet moves it back to just before that change: a blocking
alert not yet measured for the customer (its creation), an archive or reset not yet applied, a
recompute asked for (a contract change, or usage another engine counted), a time-driven instant
that has come (a period rolling over). In a deployment of several engines, usage counted by an
engine other than the customer's home one reaches the decision one batch of the home engine
later, and its `as_of` is that of the recompute request.
"""

from __future__ import annotations

from collections.abc import Sequence

from meterline.domain.access import Decision, decide
from meterline.store import access
from meterline.store.db import Database

MAX_CUSTOMERS_PER_CHECK = 100
MAX_REF_CHARS = 256  # an ingest alias's length at most; a meterline id is shorter


def decisions(db: Database, refs: Sequence[str], now_us: int) -> list[Decision]:
    """The decision for each reference, in order."""
    facts = access.read_facts(db, refs, now_us)
    oldest_waiting = facts.oldest_waiting_us
    log_as_of = now_us if oldest_waiting is None else min(now_us, oldest_waiting - 1)
    named, alarms, pending, unmeasured = facts.named, facts.alarms, facts.pending, facts.unmeasured
    found = []
    for ref in refs:
        customer = named.get(ref)
        if customer is None:
            found.append(decide(ref, None, False, (), log_as_of))
            continue
        customer_id, archived = customer.customer_id, customer.archived
        mine = alarms.get(customer_id)
        as_of = log_as_of
        if customer_id in pending:
            as_of = min(as_of, pending[customer_id] - 1)
        if customer_id in unmeasured and not archived:  # archived customers are never measured
            as_of = min(as_of, unmeasured[customer_id] - 1)
        found.append(decide(ref, customer_id, archived, list(mine.values()) if mine else (), as_of))
    return found
