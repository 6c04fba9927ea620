"""v2 contracts/edit: the edits of one request applied in one transaction, all or nothing.

Each edit goes through the rules and writers contracts/create and the other endpoints use for
what it changes: the contract's end (`services.end_dates`, the rule of contracts/updateEndDate);
its subscriptions (`services.subscriptions`); new commits, credits and scheduled charges
(`services.commits`); new and updated recurring commits and credits (`services.recurring`; a
`subscription_config` names a subscription of the contract by id, or one added by the same edit
by its temporary_id); updated commits, credits and scheduled charges (`services.commit_edits`);
overrides and threshold billing added (`services.contracts`), overrides removed; commits,
credits and scheduled charges archived once no finalized invoice drew from or billed them.

The first broken rule answers with a 400 naming its field and the caller's transaction rolls
back, so nothing of the edit is written. The engine is asked to bill the customer again in the
same transaction: balances, drafts, scheduled invoices and alerts follow at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.contract_rules import EXPLICIT
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput
from meterline.domain.override_rules import OverrideSpec
from meterline.domain.recurring import RecurringSpec
from meterline.domain.threshold_billing import FIELDS, ThresholdConfig
from meterline.domain.timeutil import now_us
from meterline.services import commit_edits, end_dates, recurring, subscriptions
from meterline.services.commit_edits import ChargeUpdate, CommitUpdate
from meterline.services.commits import check_new_commit, check_scheduled_charge
from meterline.services.contracts import check_overrides, check_thresholds
from meterline.services.recurring import RecurringUpdate
from meterline.services.subscriptions import SubscriptionUpdate
from meterline.store import commits, contracts, invoices, partitions, rate_cards
from meterline.store.billing_requests import request_recompute
from meterline.store.commits import COMMIT_KINDS, CommitRecord, InvoiceItemRecord, NewCommit
from meterline.store.contracts import ContractRecord
from meterline.store.invoices import FINALIZED
from meterline.store.scheduled_charges import NewScheduledCharge
from meterline.store.subscriptions import NewSubscription

EDIT_PREFIX = "add_"  # new terms are the `add_<field of contracts/create>` of an edit


@dataclass(frozen=True, slots=True)
class ContractEdit:
    customer_id: str
    contract_id: str
    new_subscriptions: tuple[NewSubscription, ...] = ()
    subscription_updates: tuple[SubscriptionUpdate, ...] = ()
    commits: tuple[NewCommit, ...] = ()
    credits: tuple[NewCommit, ...] = ()
    scheduled_charges: tuple[NewScheduledCharge, ...] = ()
    recurring: tuple[RecurringSpec, ...] = ()  # recurring commits, then recurring credits
    set_end: bool = False  # update_contract_end_date given (None: open-ended)
    ending_before_us: int | None = None
    allow_before_finalized: bool = True
    set_name: bool = False  # update_contract_name given (None: no name)
    name: str | None = None
    set_payment_terms: bool = False  # update_net_payment_terms_days given (None: none)
    net_payment_terms_days: Decimal | None = None
    archive_commits: tuple[str, ...] = ()
    archive_credits: tuple[str, ...] = ()
    archive_scheduled_charges: tuple[str, ...] = ()
    commit_updates: tuple[CommitUpdate, ...] = ()
    credit_updates: tuple[CommitUpdate, ...] = ()
    charge_updates: tuple[ChargeUpdate, ...] = ()
    recurring_commit_updates: tuple[RecurringUpdate, ...] = ()
    recurring_credit_updates: tuple[RecurringUpdate, ...] = ()
    thresholds: tuple[ThresholdConfig, ...] = ()  # threshold billing added (spend, prepaid balance)
    new_overrides: tuple[OverrideSpec, ...] = ()
    removed_overrides: tuple[str, ...] = ()


def edit_contract(conn: Connection, edit: ContractEdit, *, open_horizon_us: int) -> None:
    customer_id, contract_id = edit.customer_id, edit.contract_id
    subscriptions.editable_contract(conn, customer_id, contract_id)
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes one of its invoices meanwhile
    if edit.set_end:
        end_dates.update_contract_end(
            conn,
            customer_id,
            contract_id,
            edit.ending_before_us,
            allow_before_finalized=edit.allow_before_finalized,
            field="update_contract_end_date",
            allow_field="allow_contract_ending_before_finalized_invoice",
        )
    if edit.set_name:
        contracts.rename(conn, contract_id, edit.name)
    if edit.set_payment_terms:
        terms = edit.net_payment_terms_days
        contracts.set_integration_field(
            conn, contract_id, "net_payment_terms_days", None if terms is None else format(terms, "f")
        )
    added: list[str] = []
    if edit.new_subscriptions:
        added = subscriptions.add(
            conn, customer_id, contract_id, edit.new_subscriptions, open_horizon_us=open_horizon_us
        )
    if edit.subscription_updates:
        subscriptions.update(conn, customer_id, contract_id, edit.subscription_updates)
    contract = contracts.get_contract(conn, customer_id, contract_id)  # as edited so far
    created = now_us()
    if edit.charge_updates:
        commit_edits.update_charges(conn, contract, edit.charge_updates)
    _archive(conn, edit, contract, created)
    if edit.new_overrides or edit.removed_overrides:
        _edit_overrides(conn, edit, contract, created)
    if edit.commit_updates:
        commit_edits.update_commits(conn, contract, edit.commit_updates, credits=False)
    if edit.credit_updates:
        commit_edits.update_commits(conn, contract, edit.credit_updates, credits=True)
    created = _add_commits(conn, edit, created)
    for index, charge in enumerate(edit.scheduled_charges):
        check_scheduled_charge(conn, charge, f"{EDIT_PREFIX}scheduled_charges.{index}")
    for updates, credits in ((edit.recurring_commit_updates, False), (edit.recurring_credit_updates, True)):
        if updates:
            current = contracts.get_contract(conn, customer_id, contract_id)
            recurring.update_specs(conn, current, updates, credits=credits, now_us=created)
    if edit.recurring:
        _add_recurring(conn, edit, contracts.get_contract(conn, customer_id, contract_id), added, created)
    if edit.thresholds:
        _add_thresholds(conn, edit, contract)
    contracts.add_terms(conn, contract_id, charges=edit.scheduled_charges)
    request_recompute(conn, customer_id)


def _edit_overrides(conn: Connection, edit: ContractEdit, contract: ContractRecord, created_us: int) -> None:
    """`remove_overrides` (by id), then `add_overrides` (the rules of contracts/create). Drafts are
    priced with the overrides as edited; finalized invoices stay as they were priced."""
    held = {o.id for o in contract.overrides}
    for index, override_id in enumerate(edit.removed_overrides):
        if override_id not in held:
            raise InvalidInput(
                f"remove_overrides.{index}.id: contract {contract.id} has no override {override_id}"
            )
    card = rate_cards.get_rate_card(conn, contract.rate_card_id)
    check_overrides(conn, edit.new_overrides, card, contract.prioritization == EXPLICIT, "add_overrides")
    kept = [o for o in contract.overrides if o.id not in set(edit.removed_overrides)]
    added = [replace(o, created_at_us=created_us) for o in edit.new_overrides]
    contracts.set_overrides(conn, contract.id, [*kept, *added])


def _add_thresholds(conn: Connection, edit: ContractEdit, contract: ContractRecord) -> None:
    """`add_spend_threshold_configuration`, `add_prepaid_balance_threshold_configuration`: the rules
    of contracts/create, on a contract without one of that kind (updating one is not built). The
    engine measures the contract against it at once, as for a new contract."""
    for config in edit.thresholds:
        if any(held.kind == config.kind for held in contract.thresholds):
            raise InvalidInput(
                f"{EDIT_PREFIX}{FIELDS[config.kind]}: the contract has one already; meterline does "
                "not replace or update it yet"
            )
    card = rate_cards.get_rate_card(conn, contract.rate_card_id)
    check_thresholds(
        conn, contract.customer_id, edit.thresholds, contract.starting_at_us, card, prefix=EDIT_PREFIX
    )
    contracts.add_terms(conn, contract.id, thresholds=edit.thresholds)


def _archive(conn: Connection, edit: ContractEdit, contract: ContractRecord, at_us: int) -> None:
    """`archive_commits`, `archive_credits`, `archive_scheduled_charges`, as Metronome: what a
    finalized invoice billed or drew from must be voided first (the invoice stays as it is, and
    would still name it); drafts stop drawing from an archived commit or credit, and the draft
    invoices of its schedule items (or a charge's) are dropped. Archived ones stay readable, with
    `archived_at`; archiving one twice is a no-op."""
    billed = invoices.schedule_items_billed(conn, edit.customer_id, frozenset({FINALIZED}))
    on_contract = {c.id: c for c in commits.commits_of_contracts(conn, [contract.id])[contract.id]}
    for field, ids, kinds in (
        ("archive_commits", edit.archive_commits, COMMIT_KINDS),
        ("archive_credits", edit.archive_credits, (CREDIT,)),
    ):
        for index, commit_id in enumerate(ids):
            _check_archivable(
                conn, on_contract.get(commit_id), commit_id, kinds, billed, f"{field}.{index}.id"
            )
        commits.mark_archived(conn, ids, at_us)
    charges = {c.id: c for c in contract.scheduled_charges}
    for index, charge_id in enumerate(edit.archive_scheduled_charges):
        where = f"archive_scheduled_charges.{index}.id"
        charge = charges.get(charge_id)
        if charge is None:
            raise InvalidInput(f"{where}: contract {contract.id} has no scheduled charge {charge_id}")
        _check_unbilled(charge.schedule.items, billed, where, f"scheduled charge {charge_id}")
    if edit.archive_scheduled_charges:
        contracts.archive_scheduled_charges(conn, contract.id, edit.archive_scheduled_charges, at_us)


def _check_archivable(
    conn: Connection,
    found: CommitRecord | None,
    commit_id: str,
    kinds: Sequence[str],
    billed: Mapping[str, str],
    where: str,
) -> None:
    what = "credit" if kinds == (CREDIT,) else "commit"
    if found is None or found.kind not in kinds:
        raise InvalidInput(f"{where}: the contract has no {what} {commit_id}")
    if found.archived_at_us is not None:
        return  # archived already: nothing changes
    if found.recurring_id is not None:
        raise InvalidInput(
            f"{where}: {what} {commit_id} was made for one period of recurring {what} "
            f"{found.recurring_id}; meterline does not archive a period's {what} yet"
        )
    if invoices.drawn_until(conn, commit_id) is not None:
        raise InvalidInput(
            f"{where}: a finalized invoice drew from {what} {commit_id}; void that invoice before "
            f"archiving the {what}"
        )
    if found.invoice_schedule is not None:
        _check_unbilled(found.invoice_schedule.items, billed, where, f"{what} {commit_id}")


def _check_unbilled(
    items: Sequence[InvoiceItemRecord], billed: Mapping[str, str], where: str, what: str
) -> None:
    for item in items:
        if item.id in billed:
            raise InvalidInput(
                f"{where}: finalized invoice {billed[item.id]} bills {what}; void it before archiving"
            )


def _add_commits(conn: Connection, edit: ContractEdit, created_us: int) -> int:
    """Check and store `add_commits` and `add_credits` as contracts/create does its commits and
    credits, one microsecond apart so that they list in the order given; the next free instant."""
    given = [(f"{EDIT_PREFIX}commits.{i}", c) for i, c in enumerate(edit.commits)]
    given += [(f"{EDIT_PREFIX}credits.{i}", c) for i, c in enumerate(edit.credits)]
    for offset, (path, commit) in enumerate(given):
        check_new_commit(conn, edit.customer_id, commit, on_contract=True, path=path)
        commits.insert_commit(
            conn,
            edit.customer_id,
            commit,
            contract_id=edit.contract_id,
            path=path,
            created_at_us=created_us + offset,
        )
    return created_us + len(given)


def _add_recurring(
    conn: Connection, edit: ContractEdit, contract: ContractRecord, added: list[str], created_us: int
) -> None:
    """`add_recurring_commits` and `add_recurring_credits`, checked and stored as contracts/create
    does them, over the contract's span and statement schedule as edited."""
    by_id = {s.id: s for s in contract.subscriptions}
    new = recurring.on_contract(contract, recurring.with_ids(edit.recurring), edit.new_subscriptions)
    new = recurring.with_subscriptions(
        new,
        [by_id[i] for i in added],
        [s for s in contract.subscriptions if s.id not in added],
        prefix=EDIT_PREFIX,
    )
    contracts.add_terms(conn, contract.id, recurring=new.recurring)
    recurring.store_period_commits(
        conn, new, contract.id, created_us, contract.subscriptions, prefix=EDIT_PREFIX
    )
