"""The commits_and_credits dashboard: the customer's commits and credits in force (customer-level
and on its contracts), each with its balance and ledger, rendered exactly as the API shows them
(`api.commit_views`, balances derived with the drafts by `services.billing`). The credits
dashboard is the same for its credits alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from meterline.api.commit_views import commit_extras, commit_view
from meterline.domain.contracts import CREDIT, POSTPAID, PREPAID
from meterline.settings import Settings
from meterline.store import commits
from meterline.store.commits import CommitQuery

IN_FORCE = CommitQuery(kinds=(PREPAID, POSTPAID, CREDIT), include_contract_level=True)
CREDITS_IN_FORCE = CommitQuery(kinds=(CREDIT,), include_contract_level=True)
MAX_SHOWN = 500


def commits_and_credits(conn: Connection, settings: Settings, customer_id: str) -> list[dict[str, Any]]:
    return _shown(conn, settings, customer_id, IN_FORCE)


def credits(conn: Connection, settings: Settings, customer_id: str) -> list[dict[str, Any]]:
    return _shown(conn, settings, customer_id, CREDITS_IN_FORCE)


def _shown(
    conn: Connection, settings: Settings, customer_id: str, query: CommitQuery
) -> list[dict[str, Any]]:
    found = commits.list_commits(conn, customer_id, query, after_id=None, limit=MAX_SHOWN)
    extras = commit_extras(
        conn, customer_id, found, settings=settings, include_balance=True, include_ledgers=True
    )
    views = [commit_view(c, extras) for c in found]
    views.sort(key=lambda v: (v["type"] != CREDIT, v.get("name") or v["product"]["name"], v["id"]))
    return views
