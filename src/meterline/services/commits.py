"""Commits and credits: the rules a new one must meet, and creating a customer-level one.

A commit or credit is checked here whether it comes alone (customerCommits/create,
customerCredits/create) or with a new contract (`services.contracts`); `store.commits` only stores
what passed. Errors name the request field, prefixed by the commit's place in a contract
(`commits.0.product_id`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from meterline.domain.commit_rules import (
    check_amount_shorthand,
    check_commit_schedules,
    check_targets,
    field_path,
)
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.timeutil import now_us
from meterline.services.custom_fields import check_unique
from meterline.services.customers import active_customer
from meterline.store import commits as store
from meterline.store import contracts, credit_types, products
from meterline.store.billing_requests import request_recompute
from meterline.store.commits import NewCommit
from meterline.store.scheduled_charges import NewScheduledCharge


def create_customer_commit(conn: Connection, customer_id: str, new: NewCommit) -> str:
    """A customer-level commit or credit, applying to all the customer's contracts."""
    active_customer(conn, customer_id)
    check_new_commit(conn, customer_id, new, on_contract=False)
    commit_id = store.insert_commit(conn, customer_id, new)
    request_recompute(conn, customer_id)
    return commit_id


def check_new_commit(
    conn: Connection,
    customer_id: str,
    new: NewCommit,
    *,
    on_contract: bool,
    path: str = "",
    credit_type_field: str = "access_schedule",
    invoice_field: str = "invoice_schedule",
) -> None:
    """Refuse a commit or credit that breaks a rule (400 naming the field). `path` prefixes error
    fields ("commits.0"); a commit on a contract is invoiced on that contract. `credit_type_field`
    holds the access credit_type_id in the request (a recurring commit's is in access_amount),
    `invoice_field` the invoice's (a recurring commit's is in invoice_amount)."""
    check_commit_schedules(new.kind, new.access, new.credit_type_id, new.invoice, path)
    check_amount_shorthand(new.amount, new.access, path)
    check_targets(new.applicable_product_ids, new.applicable_product_tags, new.specifiers, path)
    _check_references(conn, new, path, credit_type_field, invoice_field)
    entity = "contract_credit" if new.kind == CREDIT else "commit"
    check_unique(conn, entity, new.custom_fields, field_path(path, "custom_fields"))
    if not on_contract:
        _check_invoice_contract(conn, customer_id, new, path)


def _check_references(
    conn: Connection, new: NewCommit, path: str, credit_type_field: str, invoice_field: str
) -> None:
    _check_fixed_product(conn, new.product_id, field_path(path, "product_id"))
    _check_credit_type(conn, new.credit_type_id, field_path(path, credit_type_field, "credit_type_id"))
    if new.invoice is not None:
        _check_invoice_currency(conn, new.invoice.credit_type_id, field_path(path, invoice_field))
    _check_targeted_products(conn, new, path)


def check_edited_commit(conn: Connection, edited: NewCommit, path: str, *, customer_id: str | None) -> None:
    """A commit or credit as an edit leaves it (v2 contracts/edit `update_commits`, v2
    contracts/commits/edit) meets the rules of a new one on its schedules, the products it applies
    to and, with `customer_id` (a customer's commit moved to another contract), the contract that
    bills it (its product, pricing unit, custom fields and uniqueness key were checked when it was
    made, and stay)."""
    check_commit_schedules(edited.kind, edited.access, edited.credit_type_id, edited.invoice, path)
    check_targets(edited.applicable_product_ids, edited.applicable_product_tags, edited.specifiers, path)
    _check_targeted_products(conn, edited, path)
    if customer_id is not None:
        _check_invoice_contract(conn, customer_id, edited, path)


def _check_targeted_products(conn: Connection, new: NewCommit, path: str) -> None:
    named = [
        (product_id, field_path(path, "applicable_product_ids", index))
        for index, product_id in enumerate(new.applicable_product_ids or ())
    ]
    named += [
        (s.product_id, field_path(path, "specifiers", index, "product_id"))
        for index, s in enumerate(new.specifiers or ())
        if s.product_id is not None
    ]
    _check_products_exist(conn, named)


def check_scheduled_charge(conn: Connection, charge: NewScheduledCharge, path: str) -> None:
    """A scheduled charge bills a FIXED product in a fiat currency, on at least one date."""
    where = field_path(path, "schedule")
    if not charge.schedule.items:
        raise InvalidInput(
            f"{where}.schedule_items: give at least one schedule item, or a recurring_schedule"
        )
    if charge.schedule.do_not_invoice:
        raise InvalidInput(
            f"{where}.do_not_invoice: applies to commits' invoice schedules only; a scheduled charge "
            "always bills (leave the charge out instead)"
        )
    _check_fixed_product(conn, charge.product_id, field_path(path, "product_id"))
    _check_invoice_currency(conn, charge.schedule.credit_type_id, where)


def _check_invoice_currency(conn: Connection, credit_type_id: str, schedule_path: str) -> None:
    where = field_path(schedule_path, "credit_type_id")
    if not _check_credit_type(conn, credit_type_id, where).is_currency:
        raise InvalidInput(f"{where}: invoices are in a fiat currency, not a custom pricing unit")


def _check_fixed_product(conn: Connection, product_id: str, where: str) -> None:
    try:
        product = products.get_product(conn, product_id)
    except NotFound:
        raise InvalidInput(f"{where}: no product with id {product_id}") from None
    if product.type != "FIXED":
        raise InvalidInput(f"{where}: must be a FIXED product; {product_id} is {product.type}")
    if product.archived_at_us is not None:
        raise InvalidInput(f"{where}: product {product_id} is archived")


def _check_products_exist(conn: Connection, named: Sequence[tuple[str, str]]) -> None:
    """Each (product id, request field naming it) names a product, archived ones included."""
    if not named:
        return
    known = products.products_at(conn, [product_id for product_id, _ in named], now_us())
    for product_id, where in named:
        if product_id not in known:
            raise InvalidInput(f"{where}: no product with id {product_id}")


def _check_credit_type(conn: Connection, credit_type_id: str, where: str) -> credit_types.CreditTypeRecord:
    try:
        record = credit_types.get_credit_type(conn, credit_type_id)
    except NotFound:
        raise InvalidInput(f"{where}: no pricing unit with id {credit_type_id}") from None
    if record.archived_at_us is not None:
        raise InvalidInput(f"{where}: pricing unit {credit_type_id} is archived")
    return record


def _check_invoice_contract(conn: Connection, customer_id: str, new: NewCommit, path: str) -> None:
    """A customer-level commit that bills names the customer's contract its invoices go on."""
    where = field_path(path, "invoice_contract_id")
    if new.invoice_contract_id is None:
        if new.invoice is not None and new.invoice.bills:
            raise InvalidInput(
                f"{where}: is required for commits with an invoice schedule (unless do_not_invoice is true)"
            )
        return
    owner = contracts.contract_owner(conn, new.invoice_contract_id)
    if owner is None or owner[0] != customer_id:
        raise InvalidInput(f"{where}: the customer has no contract with id {new.invoice_contract_id}")
    if owner[1] is not None:
        raise InvalidInput(f"{where}: contract {new.invoice_contract_id} is archived")
