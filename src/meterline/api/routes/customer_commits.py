"""Customer-level commits and credits: /v1/contracts/customerCommits/{create,list} and
/v1/contracts/customerCredits/{create,list}.

A customer-level commit or credit applies to every contract of the customer. The lists show
customer-level ones, and contract-level ones too when include_contract_commits/credits is set;
they page by id with `limit` and `next_page` in the body (as the SDK sends them), 25 by default.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends

from meterline.api.catalog_fields import Instant
from meterline.api.commit_views import commit_extras, commit_view
from meterline.api.contract_fields import CustomerCommitCreate, CustomerCreditCreate
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.contracts import CREDIT
from meterline.services import commits as service
from meterline.store import commits as store
from meterline.store import customers
from meterline.store.commits import COMMIT_KINDS, CommitQuery, NewCommit

router = APIRouter(route_class=ExactDecimalRoute)
DEFAULT_PAGE = 25


class ListFields(StrictModel):
    customer_id: str
    covering_date: Instant | None = None
    starting_at: Instant | None = None
    effective_before: Instant | None = None
    include_archived: bool = False
    include_balance: bool = False
    include_ledgers: bool = False
    limit: int | None = None  # DEFAULT_PAGE
    next_page: str | None = None


class CommitList(ListFields):
    commit_id: str | None = None
    include_contract_commits: bool = False
    access_type: Literal["SPEND", "QUANTITY"] | None = None

    def query(self) -> CommitQuery:
        # Every meterline commit is drawn down by spend: a QUANTITY filter matches none.
        kinds = () if self.access_type == "QUANTITY" else COMMIT_KINDS
        return _query(self, kinds, self.commit_id, self.include_contract_commits)


class CreditList(ListFields):
    credit_id: str | None = None
    include_contract_credits: bool = False

    def query(self) -> CommitQuery:
        return _query(self, (CREDIT,), self.credit_id, self.include_contract_credits)


@router.post("/v1/contracts/customerCommits/create")
def create_commit(body: CustomerCommitCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _create(state, body.customer_id, body.new())


@router.post("/v1/contracts/customerCredits/create")
def create_credit(body: CustomerCreditCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _create(state, body.customer_id, body.new())


@router.post("/v1/contracts/customerCommits/list")
def list_commits(body: CommitList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _list(state, body, body.query(), "customer_commits")


@router.post("/v1/contracts/customerCredits/list")
def list_credits(body: CreditList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    return _list(state, body, body.query(), "customer_credits")


def _create(state: AppState, customer_id: str, new: NewCommit) -> ExactJSONResponse:
    with state.db.write() as conn:
        commit_id = service.create_customer_commit(conn, customer_id, new)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(commit_id))


def _list(state: AppState, body: ListFields, query: CommitQuery, list_name: str) -> ExactJSONResponse:
    asked = page_request(
        state, list_name, str, limit=body.limit, token=body.next_page, default_size=DEFAULT_PAGE
    )
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        found = store.list_commits(conn, body.customer_id, query, after_id=asked.after, limit=asked.size + 1)
        page, cursor = asked.cut(found, lambda c: c.id)
        extras = commit_extras(
            conn,
            body.customer_id,
            page,
            settings=state.settings,
            include_balance=body.include_balance,
            include_ledgers=body.include_ledgers,
        )
    return ExactJSONResponse({"data": [commit_view(c, extras) for c in page], "next_page": cursor})


def _query(
    body: ListFields, kinds: tuple[str, ...], commit_id: str | None, contract_level: bool
) -> CommitQuery:
    return CommitQuery(
        kinds=kinds,
        commit_id=commit_id,
        covering_us=body.covering_date,
        starting_at_us=body.starting_at,
        effective_before_us=body.effective_before,
        include_archived=body.include_archived,
        include_contract_level=contract_level,
    )
