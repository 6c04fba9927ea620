"""The evaluator's hand-over to a dispatcher in another process.

When the evaluator's batch writes notifications, it fans them out and claims the due deliveries in
that same transaction, then, once it has committed, sends the claim's id down the delivery
process's pipe; the dispatcher there reads the claim and sends at once (`Dispatcher.adopt`). A
webhook thus leaves right after the commit that made it. The alternative, the delivery process
claiming in a write transaction of its own, queues behind the evaluator's next batch on SQLite's
single write lock: under load that was half a second per claim, so a burst of crossings waited
seconds for its webhooks.

The claim takes every due delivery of an endpoint up to HANDOFF_BUDGET held at once (counted in
the database: the dispatcher's own counts are in another process), so a burst of crossings is
sent at the receiver's pace; the dispatcher extends the leases of the claims it holds while they
wait for their turn. A claim whose id is lost (the delivery process is down and its pipe full)
is sent when its lease expires.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from meterline.delivery.dispatcher import fan_out_fresh, lease_us
from meterline.store import webhooks as store
from meterline.store.webhooks import Taken

# Deliveries per endpoint the dispatcher may hold (claimed, not yet recorded) through hand-overs;
# a slow receiver's backlog past this waits in the database, not in the dispatcher's memory
# (about 2 KB each there). A burst of 3,000 crossings is handed over whole: what is left past the
# budget waits for a write transaction of the dispatcher's own, queued behind the evaluator's.
HANDOFF_BUDGET = 5000


class ClaimChannel(Protocol):
    """Where claim ids go: the delivery process's pipe."""

    def send_claim(self, claim_id: str) -> None: ...


class RemoteOutbox:
    """The evaluator's `OutboxHandoff` when the dispatcher runs in another process."""

    def __init__(self, channel: ClaimChannel, *, timeout_s: float) -> None:
        self.channel = channel
        self.budget = HANDOFF_BUDGET
        self.lease_us = lease_us(timeout_s)

    def claim_in(self, conn: Connection, now_us: int) -> list[Taken]:
        """Fan out the outbox and claim what is due, in the evaluator's batch transaction. Only
        the claim's id goes to the delivery process, which reads the rest: nothing is read here
        that the evaluator's transaction (holding the write lock) would only carry."""
        if not fan_out_fresh(conn, now_us):
            return []
        held: dict[str, int] | None = None

        def room(endpoint_id: str) -> int:
            nonlocal held
            if held is None:  # counted once, and only when something is due
                held = store.claimed_counts(conn, now_us)
            return self.budget - held.get(endpoint_id, 0)

        taken = store.take_due(conn, now_us, now_us + self.lease_us, room)
        return [] if taken is None else [taken]

    def hand_over(self, claims: list[Taken]) -> None:
        """After the commit that made `claims`: tell the delivery process which claim to send."""
        for taken in claims:
            self.channel.send_claim(taken.claim_id)
