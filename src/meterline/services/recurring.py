"""A contract's recurring commits and credits: the rules they meet, and the commit each period
creates.

Every period's commit is stored with the contract, each naming its recurring commit
(`recurring_id`): the engine sees the periods to come as segments to come (its wake-ups
re-measure balances as each starts), and the API shows a period's commit from the moment its
period starts (`CommitRecord.created_by`), as Metronome creates it then. A recurring commit
therefore needs an end, its own `ending_before` or its contract's.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from meterline.domain.commit_rules import AccessItem, field_path
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import new_id
from meterline.domain.recurring import (
    MAX_PERIODS,
    Cadence,
    RecurringGrant,
    RecurringTerms,
    cadence,
    grants,
)
from meterline.domain.timeutil import format_rfc3339
from meterline.services.commits import check_new_commit
from meterline.store import commits
from meterline.store.commits import NewCommit
from meterline.store.contracts import NewContract
from meterline.store.recurring_commits import RecurringSpec


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


def period_commits(new: NewContract, spec: RecurringSpec, path: str) -> list[NewCommit]:
    """The commits the recurring commit creates, one per period (400 naming the field if its
    terms create none, too many, or one of nothing)."""
    grants_found = grants(_terms(new, spec, path), _cadence(new, spec))
    if len(grants_found) > MAX_PERIODS:
        raise InvalidInput(
            f"{field_path(path, 'ending_before')}: would create more than {MAX_PERIODS} commits; "
            "give an earlier end or a longer recurrence_frequency"
        )
    for grant in grants_found:
        if grant.amount <= 0:
            raise InvalidInput(
                f"{field_path(path, 'proration_rounding', 'access')}: rounds the prorated amount of "
                f"the period starting {format_rfc3339(grant.starting_at_us)} to {grant.amount}; "
                "each period must grant more than 0"
            )
    return [_commit(spec, grant) for grant in grants_found]


def store_period_commits(conn: Connection, new: NewContract, contract_id: str, created_at_us: int) -> None:
    """Check and store every period's commit of the contract's recurring commits and credits,
    one microsecond apart from `created_at_us` on, so that they list in period order."""
    created = created_at_us
    for path, spec in paths(new):
        made = period_commits(new, spec, path)
        # The rules of commits (product, pricing unit, targets) hold for all periods alike.
        check_new_commit(
            conn, new.customer_id, made[0], on_contract=True, path=path, credit_type_field="access_amount"
        )
        for commit in made:
            commits.insert_commit(
                conn, new.customer_id, commit, contract_id=contract_id, path=path, created_at_us=created
            )
            created += 1


def _terms(new: NewContract, spec: RecurringSpec, path: str) -> RecurringTerms:
    ends = [e for e in (spec.ending_before_us, new.ending_before_us) if e is not None]
    if not ends:
        raise InvalidInput(
            f"{field_path(path, 'ending_before')}: meterline needs an end for a recurring commit on a "
            "contract without ending_before (it creates every period's commit up front)"
        )
    if spec.starting_at_us < new.starting_at_us:
        raise InvalidInput(
            f"{field_path(path, 'starting_at')}: must not be before the contract's starting_at"
        )
    end = min(ends)
    if end <= spec.starting_at_us:
        where = "ending_before" if spec.ending_before_us == end else "starting_at"
        raise InvalidInput(f"{field_path(path, where)}: the recurring commit must start before it ends")
    return RecurringTerms(
        amount=spec.amount,
        starting_at_us=spec.starting_at_us,
        ending_before_us=end,
        duration_periods=spec.duration_periods,
        proration=spec.proration,
        rounding=spec.rounding_in_force,
    )


def _cadence(new: NewContract, spec: RecurringSpec) -> Cadence:
    return cadence(spec.recurrence_frequency, spec.starting_at_us, new.statement_schedule())


def _commit(spec: RecurringSpec, grant: RecurringGrant) -> NewCommit:
    return NewCommit(
        kind=spec.kind,
        product_id=spec.product_id,
        access=(AccessItem(grant.amount, grant.starting_at_us, grant.ending_before_us),),
        credit_type_id=spec.credit_type_id,
        name=spec.name,
        description=spec.description,
        priority=spec.priority,
        applicable_product_ids=spec.applicable_product_ids,
        applicable_product_tags=spec.applicable_product_tags,
        specifiers=spec.specifiers,
        recurring_id=spec.id,
    )
