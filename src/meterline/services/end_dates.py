"""End-date updates: a commit's or credit's access and invoicing, and a contract's end.

Each checks that nothing finalized would change (`domain.end_dates`), stores the new schedules,
and asks the engine to bill the customer again in the same transaction (`billing_requests`): its
drafts, balances and balance alerts (and their clock wake-ups) then follow the new end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection

from meterline.domain.contract_rules import check_contract_span
from meterline.domain.contracts import CREDIT, PREPAID
from meterline.domain.end_dates import access_ending, invoices_ending
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import subscriptions
from meterline.store import commits, contracts, invoices, partitions
from meterline.store.billing_requests import request_recompute
from meterline.store.commits import CommitRecord, InvoiceScheduleRecord


def update_commit_end(
    conn: Connection,
    customer_id: str,
    commit_id: str,
    *,
    access_ending_before_us: int | None,
    invoices_ending_before_us: int | None,
) -> None:
    """customerCommits/updateEndDate: PREPAID commits only, as Metronome."""
    commit = _commit(conn, customer_id, commit_id, "commit_id", (PREPAID,))
    _update(conn, commit, access_ending_before_us, invoices_ending_before_us)


def update_credit_end(
    conn: Connection, customer_id: str, credit_id: str, access_ending_before_us: int
) -> None:
    """customerCredits/updateEndDate: a credit has no invoices, only access."""
    credit = _commit(conn, customer_id, credit_id, "credit_id", (CREDIT,))
    _update(conn, credit, access_ending_before_us, None)


def update_contract_end(
    conn: Connection,
    customer_id: str,
    contract_id: str,
    ending_before_us: int | None,
    *,
    allow_before_finalized: bool,
    field: str = "ending_before",
    allow_field: str = "allow_ending_before_finalized_invoice",
) -> None:
    """contracts/updateEndDate (and v2 contracts/edit `update_contract_end_date`, whose fields
    `field` and `allow_field` name). Finalized invoices stay as they are; unless allowed
    (Metronome's default), the end may not fall before the last of them. Subscriptions running
    past the new end are cut there (`subscriptions.cut_at_contract_end`)."""
    contract = contracts.get_contract(conn, customer_id, contract_id)
    if contract.archived_at_us is not None:
        raise InvalidInput(f"contract_id: contract {contract_id} is archived")
    check_contract_span(contract.starting_at_us, ending_before_us, field)
    if contract.recurring:
        # Their periods' commits were made for the contract's span as it was created.
        raise InvalidInput(
            f"{field}: meterline does not move the end of a contract with recurring commits or "
            "credits yet (their periods' commits were created for its span)"
        )
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes one of its invoices meanwhile
    finalized = invoices.finalized_until(conn, contract_id)
    if (
        not allow_before_finalized
        and finalized is not None
        and ending_before_us is not None
        and ending_before_us < finalized
    ):
        raise InvalidInput(
            f"{field}: the contract has a finalized invoice until {format_rfc3339(finalized)}; "
            f"set {allow_field} to end it before that (the invoice stays as it is)"
        )
    if ending_before_us is not None:
        subscriptions.cut_at_contract_end(conn, contract, ending_before_us, field)
    contracts.set_ending_before(conn, contract_id, ending_before_us)
    request_recompute(conn, customer_id)


def _commit(
    conn: Connection, customer_id: str, commit_id: str, field: str, kinds: Sequence[str]
) -> CommitRecord:
    commits.lock_commit(conn, commit_id)  # before reading it: the checks hold until this commits
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes a drawdown from it meanwhile
    found = commits.get_commit(conn, customer_id, commit_id, kinds)
    if found is None:
        what = "credit" if kinds == (CREDIT,) else "PREPAID commit"
        if commits.get_commit(conn, customer_id, commit_id, (*commits.COMMIT_KINDS, CREDIT)) is not None:
            raise InvalidInput(
                f"{field}: {commit_id} is not a {what}; only a {what}'s end date is updated here"
            )
        raise NotFound(f"{field}: customer {customer_id} has no {what} with id {commit_id}")
    if found.archived_at_us is not None:
        raise InvalidInput(f"{field}: {commit_id} is archived")
    if _follows_a_subscription(conn, found):
        raise InvalidInput(
            f"{field}: {commit_id} was created by a recurring commit tied to a subscription, whose "
            "quantity edits set its access schedule; meterline does not move its end yet"
        )
    return found


def _follows_a_subscription(conn: Connection, commit: CommitRecord) -> bool:
    if commit.recurring_id is None or commit.contract_id is None:
        return False
    contract = contracts.get_contract(conn, commit.customer_id, commit.contract_id)
    return any(s.id == commit.recurring_id and s.subscription is not None for s in contract.recurring)


def _update(
    conn: Connection, commit: CommitRecord, access_end_us: int | None, invoices_end_us: int | None
) -> None:
    segments = commit.segments
    if access_end_us is not None:
        segments = access_ending(
            segments, access_end_us, drawn_until_us=invoices.drawn_until(conn, commit.id)
        )
    schedule = commit.invoice_schedule
    if invoices_end_us is not None:
        schedule = _invoices_until(schedule, invoices_end_us)
    commits.set_schedules(conn, commit.id, segments, schedule)
    request_recompute(conn, commit.customer_id)


def _invoices_until(schedule: InvoiceScheduleRecord | None, ending_before_us: int) -> InvoiceScheduleRecord:
    if schedule is None:
        raise InvalidInput("invoices_ending_before: the commit has no invoice schedule")
    # Items of a schedule that bills are invoiced on their dates; with do_not_invoice, never.
    billed_until = now_us() if schedule.bills else None
    kept = invoices_ending(
        [i.timestamp_us for i in schedule.items], ending_before_us, billed_until_us=billed_until
    )
    return replace(
        schedule, items=tuple(item for item, keep in zip(schedule.items, kept, strict=True) if keep)
    )
