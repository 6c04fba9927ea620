"""Which invoice bills each schedule item (`domain.scheduled_items`) not billed yet.

An item named by a finalized or voided invoice (its `schedule_item_ids`) is never billed again:
that, and the stable id of an item's own SCHEDULED invoice, is what bills every item exactly
once, whatever restarts. Of the others, on a contract that consolidates
(`scheduled_charges_on_usage_invoices: "ALL"`), an item in the invoice's currency dated at the
end of one of the contract's usage periods goes on that period's usage invoice while it is open:
on its draft when the period is derived, and until then (a period still to come) nowhere. Every
other item has a SCHEDULED invoice of its own, a draft at once, finalized on the item's date.

A postpaid commit's true-up item is never consolidated: it has a TRUEUP invoice of its own,
billing what usage left of the commit as of now (`trued_up`; no invoice while usage has reached
the commit), finalized once its date and the grace period are over; at finalization it draws the
commit down by what it billed (`trueup_deductions`), so that nothing is left to bill twice. A
contract that took over with `future_invoice_behavior.trueup: REMOVE` removes the true-ups of the
contract it took over from that are dated from its start on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from meterline.domain.contracts import ContractTerms
from meterline.domain.invoicing import InvoiceComputation
from meterline.domain.periods import Period
from meterline.domain.scheduled_items import POSTPAID_TRUEUP, ScheduledItem, trued_up
from meterline.engine.customer_state import CustomerState
from meterline.store import invoices
from meterline.store.invoices import CLOSED, SCHEDULED, TRUEUP, Deduction, InvoiceRecord


@dataclass(slots=True)
class ItemRoutes:
    on_usage: dict[str, list[ScheduledItem]] = field(default_factory=dict)  # usage invoice id -> items
    own: list[ScheduledItem] = field(default_factory=list)  # items billed on invoices of their own


def route_items(
    state: CustomerState,
    open_periods: Sequence[tuple[ContractTerms, Period]],
    fiat_of: Callable[[ContractTerms], str],
    now_us: int,
) -> ItemRoutes:
    """Where each item not billed yet goes; `open_periods`: the usage drafts derived now."""
    routes = ItemRoutes()
    unbilled = list(unbilled_items(state, now_us))
    if not unbilled:
        return routes  # the usual customer: nothing more to look at
    open_usage_ids = {invoices.invoice_id(contract.id, period.start_us) for contract, period in open_periods}
    closed_ids = {inv.id for inv in state.invoices if inv.status in CLOSED}
    for contract, item in unbilled:
        usage_id = _usage_invoice_ending_at(contract, item, fiat_of)
        if usage_id is None or usage_id in closed_ids:
            routes.own.append(item)
        elif usage_id in open_usage_ids:
            routes.on_usage.setdefault(usage_id, []).append(item)
        elif item.timestamp_us <= now_us:
            routes.own.append(item)  # its period is past and will never be derived again
    return routes


def unbilled_items(state: CustomerState, now_us: int) -> Iterator[tuple[ContractTerms, ScheduledItem]]:
    """The items of the customer's contracts and commits in force by `now_us` that no closed
    invoice billed."""
    items = list(_items(state, now_us))
    if not items:
        return
    billed = {i for inv in state.invoices if inv.status in CLOSED for i in inv.schedule_item_ids}
    by_id = {c.id: c for c in state.contracts}
    for item in items:
        contract = by_id.get(item.contract_id)
        if contract is not None and item.item_id not in billed:
            yield contract, item


def items_with_ids(state: CustomerState, item_ids: Sequence[str]) -> list[ScheduledItem]:
    """These items of the customer's contracts and commits in force, billed or not."""
    wanted = set(item_ids)
    return [i for i in _items(state) if i.item_id in wanted]


def _items(state: CustomerState, now_us: int | None = None) -> Iterator[ScheduledItem]:
    """`now_us`: leave out the commits a recurring commit creates after it (each period's commit,
    and its invoice, appear when its period starts, as Metronome creates them then)."""
    removed = {c.transition_from_contract_id: c.starting_at_us for c in state.contracts if c.removes_trueups}
    for contract in state.contracts:
        yield from contract.scheduled_items
    for commit in state.commits:
        if now_us is None or commit.recurring_id is None or commit.segments[0].starting_at_us <= now_us:
            yield from (i for i in commit.invoice_items if not _removed(i, removed))


def _removed(item: ScheduledItem, removed: Mapping[str | None, int]) -> bool:
    """A true-up a transition with `trueup: REMOVE` removed (dated from the new contract's start)."""
    since = removed.get(item.contract_id)
    return item.line_type == POSTPAID_TRUEUP and since is not None and item.timestamp_us >= since


def draft_invoice_id(contract: ContractTerms, item: ScheduledItem, fiat_credit_type_id: str) -> str:
    """The id of the invoice that bills the item while it is not billed yet (contract views)."""
    usage_id = _usage_invoice_ending_at(contract, item, lambda _c: fiat_credit_type_id)
    return usage_id if usage_id is not None else invoices.scheduled_invoice_id(item.item_id)


def scheduled_record(contract: ContractTerms, item: ScheduledItem, now_us: int) -> InvoiceRecord:
    """The item's own SCHEDULED invoice, as a draft: dated at the item (start and end alike)."""
    return _dated_record(contract, item, SCHEDULED, now_us)


def trueup_record(
    state: CustomerState,
    contract: ContractTerms,
    item: ScheduledItem,
    used: Mapping[str, Decimal],
    now_us: int,
) -> InvoiceRecord | None:
    """A postpaid commit's TRUEUP invoice, as a draft: what `used` (drawn from each segment by
    finalized invoices and the drafts derived before it) left of the commit; None: nothing left."""
    commit = next((c for c in state.commits if c.id == item.source_id), None)
    if commit is None:
        return None
    consumed = sum((used.get(s.id, Decimal(0)) for s in commit.segments), Decimal(0))
    billed = trued_up(item, consumed)
    return None if billed is None else _dated_record(contract, billed, TRUEUP, now_us)


def _dated_record(
    contract: ContractTerms, item: ScheduledItem, invoice_type: str, now_us: int
) -> InvoiceRecord:
    """The item's own invoice, as a draft, dated at the item (start and end alike), its id the item's."""
    computation = InvoiceComputation(item.credit_type_id)
    computation.bill_scheduled([item])
    return invoices.computed_draft(
        invoices.scheduled_invoice_id(item.item_id),
        contract.customer_id,
        contract.id,
        item.credit_type_id,
        invoice_type,
        item.timestamp_us,
        item.timestamp_us,
        computation,
        now_us,
    )


def trueup_deductions(state: CustomerState, draft: InvoiceRecord) -> list[Deduction]:
    """What a TRUEUP draft draws from its commit when it is finalized: what it bills (the commit's
    one segment holds nothing more then). A draft draws nothing: the commit's balance is what
    usage left of it until the true-up is billed."""
    if draft.type != TRUEUP or draft.computation is None:
        return []
    by_id = {c.id: c for c in state.commits}
    return [
        Deduction(by_id[item.source_id].segments[0].id, item.source_id, item.amount)
        for item in draft.computation.scheduled
        if item.line_type == POSTPAID_TRUEUP and item.source_id in by_id
    ]


def named(
    items: Sequence[ScheduledItem], product_names: Callable[[ScheduledItem], str]
) -> list[ScheduledItem]:
    """Items shown with a name: their own, or else their product's (as Metronome shows them)."""
    return [item if item.name else replace(item, name=product_names(item)) for item in items]


def _usage_invoice_ending_at(
    contract: ContractTerms, item: ScheduledItem, fiat_of: Callable[[ContractTerms], str]
) -> str | None:
    """The usage invoice the item consolidates onto, if any (see the module's rule)."""
    if (
        item.line_type == POSTPAID_TRUEUP
        or not contract.charges_on_usage_invoices
        or item.credit_type_id != fiat_of(contract)
    ):
        return None
    period = contract.schedule().period_containing(item.timestamp_us - 1)
    if period is None or period.end_us != item.timestamp_us:
        return None
    return invoices.invoice_id(contract.id, period.start_us)
