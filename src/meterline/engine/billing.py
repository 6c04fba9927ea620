"""Deriving a customer's draft invoices, their drawdown and deductions, from its usage aggregates
and the schedules that bill on dates (`scheduled_billing`).

Drafts are never stored: the engine derives them for every customer a batch touched or whose
contracts or commits changed (and keeps them in memory), the API derives them when it reads, and
both run this same code, so they agree. Every open (not finalized) period of every active
contract that overlaps the window in which events may still arrive (or whose draft is marked
open from before it) is computed from the usage aggregates, earliest first, so that earlier
invoices draw down shared commits and credits before later ones. Finalized invoices are never
touched: their deductions are taken as given.

A draft carries its computation, structured; Metronome's line items are rendered from it only
when it is shown (`api`) or finalized (`finalized_record`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import pairwise
from typing import TypeVar

from sqlalchemy import Connection

from meterline.domain import spend_bounds
from meterline.domain.aggregation import merged
from meterline.domain.contracts import CREDIT, PREPAID, CommitTerms, ContractTerms
from meterline.domain.invoicing import (
    CommitSegment,
    InvoiceComputation,
    PricingInterval,
    ProductPricing,
    UsageLine,
    compute_invoice,
    sliced,
    usage_lines,
)
from meterline.domain.metrics import AggregationType
from meterline.domain.periods import Period
from meterline.domain.products import ProductState
from meterline.domain.rates import RateInForce
from meterline.domain.scheduled_items import POSTPAID_TRUEUP, ScheduledItem
from meterline.domain.spend_bounds import SpendBounds
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR
from meterline.engine import scheduled_billing
from meterline.engine.customer_state import CustomerState, load_states
from meterline.engine.invoice_lines import line_items
from meterline.engine.subscription_lines import own_invoices, subscription_lines
from meterline.store import (
    billable_metrics,
    credit_types,
    invoices,
    price_changes,
    products,
)
from meterline.store import rates as rate_store
from meterline.store.invoices import DRAFT, FINALIZED, USAGE, Deduction, InvoiceRecord
from meterline.store.period_usage import MonthlyRows, usage_by_group
from meterline.store.rate_cards import RateCardRecord, get_rate_card

ZERO = Decimal(0)
T = TypeVar("T")


# The engine's defaults: events may arrive 34 days late, and a period is final 24 hours after it ends.
DEFAULT_OPEN_HORIZON_US = 34 * US_PER_DAY + 24 * US_PER_HOUR


@dataclass(frozen=True, slots=True)
class BillingWindow:
    now_us: int
    open_since_us: int  # periods ending before this are left alone (events can no longer reach them)


class CatalogMemo:
    """Catalog reads (rate cards, rates, products, metrics) and what is derived from them alone,
    kept by the engine across batches while the catalog's version (`store.catalog_version`,
    moved by database triggers on every catalog table) stays the same: a batch then reads none
    of them again. The version is read at the start of the batch transaction, before any of
    these, so an entry is never older than its version."""

    MAX_ENTRIES = 10_000  # keys carry period starts: a bound, so a long-running engine never grows

    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: dict[tuple[object, ...], object] = {}

    def at_version(self, version: int) -> CatalogMemo:
        if version != self.version or len(self.entries) > self.MAX_ENTRIES:
            self.version, self.entries = version, {}
        return self

    def clear(self) -> None:
        self.version, self.entries = None, {}

    def get(self, key: tuple[object, ...], load: Callable[[], T]) -> T:
        if key not in self.entries:
            self.entries[key] = load()
        return self.entries[key]  # type: ignore[return-value]


class PricingCatalog:
    """Rate cards, rates, products and metrics read once per evaluator batch, not once per customer.

    Customers on the same rate card share every one of these reads; the catalog only lives for
    one batch transaction, so it never serves anything stale across batches.
    """

    def __init__(self, conn: Connection, customer_ids: Sequence[str] = (), memo: CatalogMemo | None = None):
        self.conn = conn
        # What was read or derived from the catalog: this catalog's own, or kept by the engine
        # across batches for as long as the catalog's version stays (`CatalogMemo`).
        self._memo = CatalogMemo() if memo is None else memo
        # The batch's customers' stored period usage, read once for all of them.
        self.periods = MonthlyRows(conn, customer_ids)
        # Set (`leave_out_usage_from`): drafts derived from then on read only the usage before
        # that moment, as if the rest had not been sent yet (how fast spend goes: spend_limits).
        self.usage_before_us: int | None = None

    def leave_out_usage_from(self, moment_us: int) -> None:
        """From now on, read only the usage before `moment_us` (an hour boundary)."""
        self.usage_before_us = moment_us

    def before(self, moment_us: int) -> PricingCatalog:
        """This catalog (its reads shared), reading only the usage before `moment_us`."""
        other = copy.copy(self)
        other.usage_before_us = moment_us
        return other

    def usage_end(self, end_us: int) -> int:
        """The end of an interval's usage as this catalog reads it."""
        return end_us if self.usage_before_us is None else min(end_us, self.usage_before_us)

    def _get(self, key: tuple[object, ...], load: Callable[[], T]) -> T:
        return self._memo.get(key, load)

    def rate_card(self, rate_card_id: str) -> RateCardRecord:
        return self._get(("card", rate_card_id), lambda: get_rate_card(self.conn, rate_card_id))

    def rates(self, rate_card_id: str, at_us: int) -> list[RateInForce]:
        return self._get(
            ("rates", rate_card_id, at_us), lambda: rate_store.rates_in_force(self.conn, rate_card_id, at_us)
        )

    def products(self, product_ids: tuple[str, ...], at_us: int) -> dict[str, ProductState]:
        return self._get(
            ("products", product_ids, at_us), lambda: products.products_at(self.conn, product_ids, at_us)
        )

    def aggregations(self, metric_ids: tuple[str, ...]) -> dict[str, AggregationType]:
        def load() -> dict[str, AggregationType]:
            found = billable_metrics.list_metrics(
                self.conn, include_archived=True, after_id=None, limit=None, ids=metric_ids
            )
            return {m.id: AggregationType(m.aggregation_type) for m in found}

        return self._get(("metrics", metric_ids), load)

    def change_points(self, rate_card_id: str, start_us: int, end_us: int) -> set[int]:
        return set(
            self._get(
                ("changes", rate_card_id, start_us, end_us),
                lambda: price_changes.change_points(self.conn, rate_card_id, start_us, end_us),
            )
        )

    def credit_type_names(self) -> dict[str, str]:
        return self._get(("names",), lambda: credit_types.names_by_id(self.conn))


Drafts = list[tuple[InvoiceRecord, list[Deduction]]]


def billing_window(now_us: int, open_horizon_us: int) -> BillingWindow:
    return BillingWindow(now_us=now_us, open_since_us=now_us - open_horizon_us)


def derive_drafts(state: CustomerState, window: BillingWindow, catalog: PricingCatalog) -> Drafts:
    """The customer's open drafts, computed from its usage; `state` follows them (see
    `customer_state`). Reads, never writes: the engine marks new drafts open itself."""
    existing = {inv.id: inv for inv in state.invoices}
    if not state.contracts and not existing:
        return []  # nothing is billed to this customer
    used = state.finalized_usage()
    for segment_id, amount in state.rolled_out().items():  # what rolled over is no longer there to draw
        used[segment_id] = used.get(segment_id, ZERO) + amount
    drafts: Drafts = []
    bounds: list[SpendBounds] = []
    periods = _open_periods(state, existing, window)
    routes = scheduled_billing.route_items(
        state,
        periods,
        lambda contract: catalog.rate_card(contract.rate_card_id).fiat_credit_type_id,
        window.now_us,
    )
    for contract, period in periods:
        on_usage = routes.on_usage.get(invoices.invoice_id(contract.id, period.start_us), [])
        priced = _invoice(
            catalog, contract, period, state.commits, used, window.now_us, _named(catalog, on_usage)
        )
        for deduction in priced.deductions:
            used[deduction.segment_id] = used.get(deduction.segment_id, ZERO) + deduction.amount
        drafts.append((priced.record, priced.deductions))
        bounds.append(priced.bounds)
    if routes.own:
        drafts += [(record, []) for record in _own_records(state, catalog, routes.own, used, window.now_us)]
    subscribed = [contract for contract in state.contracts if contract.subscriptions]
    if subscribed:
        closed_ids = {inv.id for inv in state.invoices if inv.status in invoices.CLOSED}
        # A subscription's own draft marked open before the window (the engine was stopped) is
        # still derived.
        marked = (i.start_us for i in state.invoices if i.id in state.marked_drafts)
        since = min([window.open_since_us, *marked])
        for contract in subscribed:
            drafts += [(r, []) for r in own_invoices(catalog, contract, closed_ids, since, window.now_us)]
    state.replace_drafts(drafts)
    state.spend_bounds = spend_bounds.summed(bounds)
    return drafts


def _own_records(
    state: CustomerState,
    catalog: PricingCatalog,
    items: Sequence[ScheduledItem],
    used: Mapping[str, Decimal],
    now_us: int,
) -> Iterable[InvoiceRecord]:
    """The invoices of their own of these items: SCHEDULED ones, and TRUEUP ones from what the
    usage drafts derived before them (`used`) left of their postpaid commits."""
    contracts = {contract.id: contract for contract in state.contracts}
    for item in _named(catalog, items):
        contract = contracts[item.contract_id]
        if item.line_type == POSTPAID_TRUEUP:
            record = scheduled_billing.trueup_record(state, contract, item, used, now_us)
            if record is not None:
                yield record
        else:
            yield scheduled_billing.scheduled_record(contract, item, now_us)


def with_drafts(
    conn: Connection,
    customer_ids: Sequence[str],
    window: BillingWindow,
    catalog: PricingCatalog | None = None,
) -> dict[str, CustomerState]:
    """The customers' states, loaded and their drafts derived (the API's and the sweeps' read)."""
    catalog = catalog or PricingCatalog(conn, customer_ids)
    states = load_states(conn, customer_ids)
    for state in states.values():
        derive_drafts(state, window, catalog)
    return states


def mark_open_drafts(conn: Connection, states: Iterable[CustomerState]) -> int:
    """Store a row for each draft newly open (what finalization looks for), again for a draft
    whose period end moved (a contract's end did: finalization must wait for the new one),
    and drop those of drafts no longer backed by a contract period (an archived contract, a
    moved end). Nothing is written for a customer whose open drafts stay the same: the usual
    case. Returns how many rows it stored."""
    opened: list[InvoiceRecord] = []
    closed: list[str] = []
    for state in states:
        drafts = {inv.id: inv for inv in state.invoices if inv.status == DRAFT}
        opened.extend(inv for i, inv in drafts.items() if state.marked_drafts.get(i) != inv.end_us)
        closed.extend(i for i in state.marked_drafts if i not in drafts)
        state.marked_drafts = {i: inv.end_us for i, inv in drafts.items()}
    invoices.mark_drafts(conn, opened)
    invoices.remove_drafts(conn, closed)
    return len(opened)


def finalized_record(draft: InvoiceRecord, names: dict[str, str], at_us: int) -> InvoiceRecord:
    """The draft as it is stored at finalization: its line items rendered, its status FINALIZED."""
    assert draft.computation is not None
    items = line_items(draft.computation, names, draft.start_us, draft.end_us)
    return replace(draft, status=FINALIZED, line_items=items, finalized_at_us=at_us, computation=None)


def _open_periods(
    state: CustomerState, existing: dict[str, InvoiceRecord], window: BillingWindow
) -> list[tuple[ContractTerms, Period]]:
    # A draft marked open before the window (the engine was stopped past a grace period) is
    # still derived, so that it can be finalized.
    since = min(window.open_since_us, state.earliest_marked_start() or window.open_since_us)
    found: list[tuple[ContractTerms, Period]] = []
    for contract in state.contracts:
        for period in contract.schedule().periods_between(since, window.now_us + 1):
            previous = existing.get(invoices.invoice_id(contract.id, period.start_us))
            if previous is None or previous.status not in invoices.CLOSED:
                found.append((contract, period))
    return sorted(found, key=lambda item: (item[1].start_us, item[0].id))


def priced_period(
    catalog: PricingCatalog,
    state: CustomerState,
    contract: ContractTerms,
    period: Period,
    now_us: int,
    schedule_item_ids: Sequence[str] = (),
) -> tuple[InvoiceRecord, list[Deduction]]:
    """One period of a contract priced now (an invoice regenerated), drawing on what finalized
    invoices left of the commits and credits, billing these schedule items again (those the
    invoice it replaces billed); the record's id is the period's own."""
    items = _named(catalog, scheduled_billing.items_with_ids(state, schedule_item_ids))
    priced = _invoice(catalog, contract, period, state.commits, state.finalized_usage(), now_us, items)
    return priced.record, priced.deductions


def _named(catalog: PricingCatalog, items: Sequence[ScheduledItem]) -> list[ScheduledItem]:
    def product_name(item: ScheduledItem) -> str:
        found = catalog.products((item.product_id,), item.timestamp_us).get(item.product_id)
        return found.name if found is not None else ""

    return scheduled_billing.named(items, product_name)


@dataclass(frozen=True, slots=True)
class _Priced:
    record: InvoiceRecord
    deductions: list[Deduction]
    bounds: SpendBounds  # how far more usage could move its amounts (`domain.spend_bounds`)


def _invoice(
    catalog: PricingCatalog,
    contract: ContractTerms,
    period: Period,
    customer_commits: Sequence[CommitTerms],
    used: dict[str, Decimal],
    now_us: int,
    scheduled: Sequence[ScheduledItem] = (),
) -> _Priced:
    card = catalog.rate_card(contract.rate_card_id)
    intervals = _intervals(catalog, contract, card, period)
    lines = [line for interval in intervals for line in usage_lines(interval)]
    lines += subscription_lines(catalog, contract, card, period)
    segments = _segments(catalog, customer_commits, contract.id, period, used)
    lines = _sliced_at_segment_bounds(catalog, contract.customer_id, lines, segments)
    conversions = {c.custom_credit_type_id: c.fiat_per_custom_credit for c in card.conversions}
    computation = compute_invoice(lines, segments, card.fiat_credit_type_id, conversions)
    computation.bill_scheduled(scheduled)
    record = period_record(contract, period, card, computation, now_us)
    deductions = [Deduction(a.segment.segment_id, a.segment.commit_id, a.amount) for a in computation.applied]
    return _Priced(record, deductions, _bounds(catalog, contract, card, intervals, conversions))


def _bounds(
    catalog: PricingCatalog,
    contract: ContractTerms,
    card: RateCardRecord,
    intervals: Sequence[PricingInterval],
    conversions: Mapping[str, Decimal],
) -> SpendBounds:
    """How far usage can move the invoice (`domain.spend_bounds`): from prices alone, so shared,
    like the products priced, by the customers on the same card without overrides."""

    def compute() -> SpendBounds:
        products = (interval.products for interval in intervals)
        return spend_bounds.spend_bounds(products, card.fiat_credit_type_id, conversions)

    if contract.overrides:
        return compute()
    spans = tuple((i.start_us, i.end_us) for i in intervals)
    return catalog._get(("bounds", card.id, spans, contract.explicit_override_priority), compute)


def _intervals(
    catalog: PricingCatalog, contract: ContractTerms, card: RateCardRecord, period: Period
) -> list[PricingInterval]:
    points = catalog.change_points(card.id, period.start_us, period.end_us)
    points.update(
        p
        for o in contract.overrides
        for p in (o.starting_at_us, o.ending_before_us)
        if p is not None and period.start_us < p < period.end_us
    )
    bounds = [period.start_us, *sorted(points), period.end_us]
    return [_interval(catalog, contract, card, start, end) for start, end in pairwise(bounds) if start < end]


def _interval(
    catalog: PricingCatalog, contract: ContractTerms, card: RateCardRecord, start_us: int, end_us: int
) -> PricingInterval:
    priced, aggregation = _priced_products(catalog, contract, card, start_us)
    usage = usage_by_group(
        catalog.conn, contract.customer_id, aggregation, start_us, catalog.usage_end(end_us), catalog.periods
    )
    return PricingInterval(start_us, end_us, priced, usage)


def _priced_products(
    catalog: PricingCatalog, contract: ContractTerms, card: RateCardRecord, start_us: int
) -> tuple[tuple[ProductPricing, ...], dict[str, AggregationType]]:
    """The usage products priced from `start_us` and their metrics' aggregations. Without
    overrides they depend only on the rate card: customers on the same card share them in a batch."""
    if contract.overrides:
        return _products_priced(catalog, contract, card, start_us)
    key = ("priced", card.id, start_us, contract.explicit_override_priority)
    return catalog._get(key, lambda: _products_priced(catalog, contract, card, start_us))


def _products_priced(
    catalog: PricingCatalog, contract: ContractTerms, card: RateCardRecord, start_us: int
) -> tuple[tuple[ProductPricing, ...], dict[str, AggregationType]]:
    rates = catalog.rates(card.id, start_us)
    states = catalog.products(tuple(sorted({r.product_id for r in rates})), start_us)
    aggregation = catalog.aggregations(
        tuple(sorted({s.billable_metric_id for s in states.values() if s.billable_metric_id}))
    )
    priced: list[ProductPricing] = []
    for product_id, state in sorted(states.items()):
        if state.type != "USAGE" or state.billable_metric_id not in aggregation:
            continue
        overrides = tuple(
            o.as_override() for o in contract.overrides if o.in_force(start_us) and o.applies_to(state)
        )
        priced.append(
            ProductPricing(
                product=state,
                aggregation=aggregation[state.billable_metric_id],
                rates=tuple(r for r in rates if r.product_id == product_id),
                overrides=overrides,
                explicit_override_priority=contract.explicit_override_priority,
            )
        )
    return tuple(priced), aggregation


def _sliced_at_segment_bounds(
    catalog: PricingCatalog, customer_id: str, lines: list[UsageLine], segments: Sequence[CommitSegment]
) -> list[UsageLine]:
    """Split each line's charge where a segment's access starts or ends inside its interval, so a
    segment only covers usage from while it was accessible (usually nothing to split)."""
    bounds = sorted({b for s in segments for b in (s.starts_us, s.ends_us)})
    result: list[UsageLine] = []
    for line in lines:
        cuts = [b for b in bounds if line.start_us < b < line.end_us]
        metric_id = line.product.billable_metric_id
        if not cuts or metric_id is None or line.aggregation is None:
            result.append(line)
            continue
        edges = [line.start_us, *cuts, line.end_us]
        raw = [
            (start, end, _line_usage(catalog, customer_id, line, metric_id, start, end))
            for start, end in pairwise(edges)
        ]
        result.append(sliced(line, raw))
    return result


def _line_usage(
    catalog: PricingCatalog, customer_id: str, line: UsageLine, metric_id: str, start_us: int, end_us: int
) -> Decimal:
    assert line.aggregation is not None
    grouped = usage_by_group(
        catalog.conn, customer_id, {metric_id: line.aggregation}, start_us, catalog.usage_end(end_us)
    )
    total = merged(aggregate for group, aggregate in grouped.get(metric_id, ()) if line.in_group(group))
    return total.value(line.aggregation) or ZERO


def _segments(
    catalog: PricingCatalog,
    customer_commits: Sequence[CommitTerms],
    contract_id: str,
    period: Period,
    used: dict[str, Decimal],
) -> list[CommitSegment]:
    # Applied lines are named after the commit, or else its product, as Metronome shows them.
    product_names = {
        p.id: p.name
        for p in catalog.products(
            tuple(sorted({c.product_id for c in customer_commits})), period.start_us
        ).values()
    }
    result: list[CommitSegment] = []
    for commit in customer_commits:
        if not commit.applies_to_contract(contract_id):
            continue
        for segment in commit.segments:
            if not segment.overlaps(period.start_us, period.end_us):
                continue
            result.append(
                CommitSegment(
                    commit_id=commit.id,
                    segment_id=segment.id,
                    kind=commit.kind,
                    name=commit.name or product_names.get(commit.product_id, commit.kind.lower()),
                    product_id=commit.product_id,
                    credit_type_id=commit.credit_type_id,
                    available=max(segment.amount - used.get(segment.id, ZERO), ZERO),
                    priority=commit.priority if commit.priority is not None else Decimal("Infinity"),
                    is_free=commit.kind == CREDIT or (commit.kind == PREPAID and not commit.is_paid),
                    starts_us=segment.starting_at_us,
                    ends_us=segment.ending_before_us,
                    applicable_product_ids=commit.applicable_product_ids,
                    applicable_product_tags=commit.applicable_product_tags,
                    specifiers=commit.specifiers,
                    seat=segment.seat,
                    is_rollover=commit.rolled_over_from is not None,
                )
            )
    return result


def period_record(
    contract: ContractTerms,
    period: Period,
    card: RateCardRecord,
    computation: InvoiceComputation,
    now_us: int,
) -> InvoiceRecord:
    """A contract period's draft as computed (its id the period's own)."""
    return invoices.computed_draft(
        invoices.invoice_id(contract.id, period.start_us),
        contract.customer_id,
        contract.id,
        card.fiat_credit_type_id,
        USAGE,
        period.start_us,
        period.end_us,
        computation,
        now_us,
    )
