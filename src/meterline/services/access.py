"""Access decisions for many customers, from what the engine has evaluated (meterline's extension).

Two statements whatever the number of customers, never one per customer: one on the state
database (`store.access.read_facts`: the customers the references name, their blocking alerts and
states, the changes not yet applied, the partitions' positions, all in one snapshot), then one on
the event log (its end, and the arrival of the oldest event not yet evaluated). That order is what
makes `as_of` true: the log is read after the states, so an event it shows waiting may be missing
from them, never the other way round.

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

from sqlalchemy import Connection

from meterline.domain.access import Decision, decide
from meterline.store import access
from meterline.store.health import log_readings

MAX_CUSTOMERS_PER_CHECK = 100
MAX_REF_CHARS = 256  # an ingest alias's length at most; a meterline id is shorter


def decisions(conn: Connection, log: Connection, refs: Sequence[str], now_us: int) -> list[Decision]:
    """The decision for each reference, in order (`conn`: the state database; `log`: the event log)."""
    facts = access.read_facts(conn, refs, now_us)
    oldest_waiting = log_readings(log, facts.position).oldest_unevaluated_us
    log_as_of = now_us if oldest_waiting is None else min(now_us, oldest_waiting - 1)
    return [_decision(facts, ref, log_as_of) for ref in refs]


def _decision(facts: access.AccessFacts, ref: str, log_as_of: int) -> Decision:
    customer = facts.named.get(ref)
    if customer is None:
        return decide(ref, None, False, (), log_as_of)
    customer_id = customer.customer_id
    alarms = list(facts.alarms[customer_id].values()) if customer_id in facts.alarms else []
    changes = [facts.pending[customer_id]] if customer_id in facts.pending else []
    if customer_id in facts.unmeasured and not customer.archived:  # archived ones are never measured
        changes.append(facts.unmeasured[customer_id])
    as_of = min(log_as_of, min(changes) - 1) if changes else log_as_of
    return decide(ref, customer_id, customer.archived, alarms, as_of)
