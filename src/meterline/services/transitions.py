"""Contract transitions: a new contract taking over from another of the same customer (contracts/create
`transition`, RENEWAL or SUPERSEDE).

The new contract starts where the old one now ends: the old contract's end moves to the new one's
start (earlier, or an open-ended one gets an end), and its commits' and credits' access is cut
there. At that instant the engine rolls over what the old contract's commits with a
`rollover_fraction` left unused (`engine.rollovers`). Refused with a 400 naming the field: a
contract of another customer (or none), an archived one, one already taken over, a start not after
the old contract's start or after its end (there would be a gap, and nothing left to take over), a
start before the end of its last finalized invoice, and moving the end of a contract with recurring
commits (as contracts/updateEndDate). Its subscriptions are cut at its new end, as
contracts/updateEndDate cuts them (`subscriptions.cut_at_contract_end`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from meterline.domain.end_dates import access_ending
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.timeutil import format_rfc3339
from meterline.services import subscriptions
from meterline.store import commits, contracts, invoices, partitions
from meterline.store.contracts import ContractRecord, NewContract

FIELD = "transition.from_contract_id"


def checked_source(conn: Connection, new: NewContract) -> ContractRecord | None:
    """The contract `new` takes over from, checked (None: `new` has no transition)."""
    if new.transition is None:
        return None
    from_id = new.transition.from_contract_id
    # Held until the contract is stored: no batch finalizes one of its invoices meanwhile.
    partitions.lock_home_partition(conn, new.customer_id)
    try:
        source = contracts.get_contract(conn, new.customer_id, from_id)
    except NotFound:
        raise InvalidInput(f"{FIELD}: customer {new.customer_id} has no contract with id {from_id}") from None
    if source.archived_at_us is not None:
        raise InvalidInput(f"{FIELD}: contract {from_id} is archived")
    successor = contracts.successor_of(conn, from_id)
    if successor is not None:
        raise InvalidInput(f"{FIELD}: contract {from_id} was already taken over by contract {successor}")
    _check_start(conn, source, new.starting_at_us)
    return source


def take_over(conn: Connection, source: ContractRecord, at_us: int) -> None:
    """End `source` at `at_us`, where the contract taking over from it starts, and cut its
    commits' and credits' access there (what they leave unused then rolls over or expires); in
    the transaction that `checked_source` checked it in."""
    if source.ending_before_us != at_us:
        subscriptions.cut_at_contract_end(conn, source, at_us, "starting_at")
        contracts.set_ending_before(conn, source.id, at_us)
    for commit in commits.commits_on_contract(conn, source.id):
        segments = commit.segments
        if min(s.starting_at_us for s in segments) < at_us < max(s.ending_before_us for s in segments):
            cut = access_ending(segments, at_us, drawn_until_us=invoices.drawn_until(conn, commit.id))
            commits.set_schedules(conn, commit.id, cut, commit.invoice_schedule)


def _check_start(conn: Connection, source: ContractRecord, starting_at_us: int) -> None:
    if starting_at_us <= source.starting_at_us:
        raise InvalidInput(
            f"starting_at: must be after the start of contract {source.id} ({FIELD}), "
            f"{format_rfc3339(source.starting_at_us)}"
        )
    end = source.ending_before_us
    if end is not None and starting_at_us > end:
        raise InvalidInput(
            f"starting_at: contract {source.id} ({FIELD}) ends at {format_rfc3339(end)}; the "
            "contract taking over from it starts at that end or before"
        )
    if starting_at_us != end and source.recurring:
        raise InvalidInput(
            f"starting_at: contract {source.id} ({FIELD}) has recurring commits or credits, whose "
            "periods' commits were created for its span; meterline does not move its end yet, so "
            f"the contract taking over from it must start at its end"
            + ("" if end is None else f", {format_rfc3339(end)}")
        )
    finalized = invoices.finalized_until(conn, source.id)
    if finalized is not None and starting_at_us < finalized:
        raise InvalidInput(
            f"starting_at: contract {source.id} ({FIELD}) has a finalized invoice until "
            f"{format_rfc3339(finalized)}; the contract taking over from it may not start before that"
        )
