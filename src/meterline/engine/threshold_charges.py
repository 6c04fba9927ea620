"""Threshold billing in the engine: a contract whose unpaid spend reached its spend threshold, or
whose prepaid balance fell to its prepaid balance threshold, buys a commit
(`domain.threshold_billing`), and `payment_gate.threshold_reached` goes out.

It runs in the batch that derived the customer's drafts, before alerts are measured: the commit,
its notification and the batch's log position are written in one transaction, so a commit is
bought once whatever restarts, and what was bought is seen by the next measure at once (the
customer's state is read again and its drafts derived again). A bought commit takes the measure
back past its threshold (unpaid spend to zero, the balance to `recharge_to_amount`), so the
next batch buys nothing until usage crosses again.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.contracts import CREDIT, PREPAID, ContractTerms
from meterline.domain.ids import new_id
from meterline.domain.threshold_billing import SPEND, ThresholdConfig
from meterline.domain.timeutil import format_rfc3339, hour_floor
from meterline.domain.webhooks import THRESHOLD_REACHED
from meterline.engine.billing import PricingCatalog
from meterline.engine.customer_state import CustomerState
from meterline.store import alerts, balances, commits
from meterline.store.alerts import Notification
from meterline.store.invoices import DRAFT
from meterline.store.threshold_configs import bought_commit

ZERO = Decimal(0)


def buy_threshold_commits(
    conn: Connection,
    states: dict[str, CustomerState],
    customer_ids: Iterable[str],
    now_us: int,
    catalog: PricingCatalog,
) -> set[str]:
    """Buy the commits the customers' thresholds call for; returns the customers who bought."""
    bought: set[str] = set()
    written: list[tuple[Notification, int]] = []
    for customer_id in customer_ids:
        state = states[customer_id]
        for contract in state.contracts:
            if not _in_force(contract, now_us):
                continue
            fiat = catalog.rate_card(contract.rate_card_id).fiat_credit_type_id
            for config in contract.thresholds:
                notification = _buy(conn, state, contract, config, fiat, now_us)
                if notification is not None:
                    written.append((notification, now_us))
                    bought.add(customer_id)
    alerts.add_notifications(conn, written)
    return bought


def _buy(
    conn: Connection,
    state: CustomerState,
    contract: ContractTerms,
    config: ThresholdConfig,
    fiat: str,
    now_us: int,
) -> Notification | None:
    measured, access = (
        _unpaid(state, contract, fiat, now_us)
        if config.kind == SPEND
        else _prepaid(state, contract, config, fiat, now_us)
    )
    amount = config.charge(measured)
    if amount is None or access is None:
        return None
    new = bought_commit(config, amount, access, now_us, fiat)
    commit_id = commits.insert_commit(
        conn, contract.customer_id, new, contract_id=contract.id, created_at_us=now_us
    )
    properties = {
        "customer_id": contract.customer_id,
        "contract_id": contract.id,
        "commit_id": commit_id,
        "threshold_type": config.kind,
        "threshold_amount": config.threshold_amount,
        "measured_amount": measured,
        "amount": amount,
        "credit_type_id": fiat,
        "payment_gate_type": config.payment_gate_type,
        "timestamp": format_rfc3339(now_us),
    }
    return Notification(new_id(), THRESHOLD_REACHED, None, contract.customer_id, properties)


def _unpaid(
    state: CustomerState, contract: ContractTerms, fiat: str, now_us: int
) -> tuple[Decimal, tuple[int, int] | None]:
    """The contract's open usage invoice's total now, and its period (what a commit pays for)."""
    for invoice in state.invoices:
        if (
            invoice.contract_id == contract.id
            and invoice.status == DRAFT
            and invoice.credit_type_id == fiat
            and invoice.start_us <= now_us < invoice.end_us
        ):
            return invoice.total, (invoice.start_us, invoice.end_us)
    return ZERO, None


def _prepaid(
    state: CustomerState, contract: ContractTerms, config: ThresholdConfig, fiat: str, now_us: int
) -> tuple[Decimal, tuple[int, int] | None]:
    """The contract's prepaid balance now (its commits and credits, drafts drawn), and the span of
    a recharge bought now."""
    rollouts = state.rollouts()
    balance = sum(
        (
            balances.balance_of(c, state.deductions, now_us, with_ledger=False, rollouts=rollouts).balance
            for c in state.commits
            if c.kind in (PREPAID, CREDIT) and c.credit_type_id == fiat and c.applies_to_contract(contract.id)
        ),
        ZERO,
    )
    start = hour_floor(now_us)
    return balance, (start, config.commit.access_end(start))


def _in_force(contract: ContractTerms, now_us: int) -> bool:
    return contract.starting_at_us <= now_us and (
        contract.ending_before_us is None or now_us < contract.ending_before_us
    )
