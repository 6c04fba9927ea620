"""A contract's recurring commits and credits: the rules they meet, and the commits their periods
create when the contract is created.

A recurring commit with an end (its own `ending_before`, or its contract's) has every period's
commit stored with the contract: the engine sees the periods to come as segments to come (its
wake-ups re-measure balances as each starts), and the API shows a period's commit from the
moment its period starts (`CommitRecord.created_by`), as Metronome creates it then. One without
an end has the commits of the periods started so far; the engine creates each later one when its
period starts (`engine.recurring_periods`). Each names its recurring commit (`recurring_id`).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.commit_rules import field_path
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import new_id
from meterline.domain.recurring import MAX_PERIODS, RecurringGrant, RecurringSpec, cadence, grants, terms_of
from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339
from meterline.services.commits import check_new_commit
from meterline.store import commits
from meterline.store.commits import NewCommit
from meterline.store.contracts import NewContract
from meterline.store.recurring_commits import period_commit


def with_ids(specs: tuple[RecurringSpec, ...]) -> tuple[RecurringSpec, ...]:
    return tuple(replace(spec, id=new_id()) for spec in specs)


def paths(new: NewContract) -> list[tuple[str, RecurringSpec]]:
    """Each recurring commit and credit with its place in the request."""
    given: list[tuple[str, RecurringSpec]] = []
    counts = {"recurring_commits": 0, "recurring_credits": 0}
    for spec in new.recurring:
        field = "recurring_credits" if spec.kind == "CREDIT" else "recurring_commits"
        given.append((f"{field}.{counts[field]}", spec))
        counts[field] += 1
    return given


def period_commits(new: NewContract, spec: RecurringSpec, path: str, now_us: int) -> list[NewCommit]:
    """The commits the recurring commit creates now: one per period, every period when it has an
    end, those started by `now_us` when it has none (400 naming the field if its terms create
    too many, or one of nothing)."""
    _check_span(new, spec, path)
    terms = terms_of(spec, new.ending_before_us)
    made = grants(
        terms, cadence(spec.recurrence_frequency, spec.starting_at_us, new.statement_schedule()), now_us
    )
    if len(made) > MAX_PERIODS:
        raise InvalidInput(
            f"{field_path(path, 'ending_before')}: would create more than {MAX_PERIODS} commits; "
            "give an earlier end or a longer recurrence_frequency"
        )
    for grant in made:
        if grant.amount <= 0:
            raise InvalidInput(
                f"{field_path(path, 'proration_rounding', 'access')}: rounds the prorated amount of "
                f"the period starting {format_rfc3339(grant.starting_at_us)} to {grant.amount}; "
                "each period must grant more than 0"
            )
        if grant.invoice_amount is not None and grant.invoice_amount < 0:
            raise InvalidInput(
                f"{field_path(path, 'proration_rounding', 'invoice')}: rounds the prorated invoice "
                f"amount of the period starting {format_rfc3339(grant.starting_at_us)} to "
                f"{grant.invoice_amount}; an invoice amount must not be negative"
            )
    return [period_commit(spec, grant) for grant in made]


def store_period_commits(conn: Connection, new: NewContract, contract_id: str, created_at_us: int) -> None:
    """Check the contract's recurring commits and credits, and store the commits their periods
    create now, one microsecond apart from `created_at_us` on, so that they list in period order."""
    created = created_at_us
    for path, spec in paths(new):
        made = period_commits(new, spec, path, created_at_us)
        # The rules of commits (product, pricing unit, targets) hold for all periods alike.
        start = spec.starting_at_us
        sample = (
            made[0]
            if made
            else period_commit(spec, RecurringGrant(spec.amount, start, start + US_PER_HOUR, _invoiced(spec)))
        )
        check_new_commit(
            conn,
            new.customer_id,
            sample,
            on_contract=True,
            path=path,
            credit_type_field="access_amount",
            invoice_field="invoice_amount",
        )
        for commit in made:
            commits.insert_commit(
                conn, new.customer_id, commit, contract_id=contract_id, path=path, created_at_us=created
            )
            created += 1


def _invoiced(spec: RecurringSpec) -> Decimal | None:
    return None if spec.invoice is None else spec.invoice.amount


def _check_span(new: NewContract, spec: RecurringSpec, path: str) -> None:
    if spec.starting_at_us < new.starting_at_us:
        raise InvalidInput(
            f"{field_path(path, 'starting_at')}: must not be before the contract's starting_at"
        )
    end = terms_of(spec, new.ending_before_us).ending_before_us
    if end is not None and end <= spec.starting_at_us:
        where = "ending_before" if spec.ending_before_us == end else "starting_at"
        raise InvalidInput(f"{field_path(path, where)}: the recurring commit must start before it ends")
