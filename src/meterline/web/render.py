"""Jinja2 rendering of the dashboards: the whole page, its body alone (what the live stream
pushes), and the 403 page. Autoescaped throughout: names and group values are the customer's data."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection

from meterline.api.dashboard_capability import Capability, Refusal
from meterline.domain.timeutil import from_us
from meterline.settings import Settings
from meterline.store.usage_position import customer_fold_position
from meterline.web import commits_board, invoices_board, limits_board, usage_board
from meterline.web.chart import bar_chart
from meterline.web.theme import css_variables

TITLES = {
    "invoices": "Invoices",
    "usage": "Usage",
    "credits": "Credits",
    "commits_and_credits": "Commits and credits",
    "spend_limits": "Spend limits",
}
# The credits dashboard is commits_and_credits' page for credits alone.
TEMPLATES = {"credits": "commits_and_credits.html"}
# Ledger entry types shown without their kind prefix, in words: SEGMENT_START -> "Segment start".
ENTRY_PREFIXES = ("PREPAID_COMMIT_", "POSTPAID_COMMIT_", "CREDIT_")
CENTS = "USD (cents)"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("meterline.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["day"] = lambda rfc3339: str(rfc3339)[:10]
    env.filters["number"] = number
    env.filters["entry_name"] = entry_name
    env.filters["cents"] = cents
    env.filters["dollars_input"] = dollars_input
    return env


def page(conn: Connection, settings: Settings, cap: Capability, token: str, nonce: str, now_us: int) -> str:
    position = customer_fold_position(conn, cap.customer_id)
    data = _data(conn, settings, cap, now_us)
    return (
        _environment()
        .get_template("page.html")
        .render(
            title=TITLES[cap.dashboard],
            colors=css_variables(cap.colors),
            nonce=nonce,
            stream=f"{token}/stream?since={position}",
            body=_body(cap, data),
            limits_form=_limits_form(data, f"{token}/limits"),
        )
    )


def body(conn: Connection, settings: Settings, cap: Capability, now_us: int) -> str:
    """What the live stream pushes: the page's `<main>`, rendered again."""
    return _body(cap, _data(conn, settings, cap, now_us))


def _body(cap: Capability, data: dict[str, Any]) -> str:
    template = _environment().get_template(TEMPLATES.get(cap.dashboard, f"{cap.dashboard}.html"))
    return template.render(title=TITLES[cap.dashboard], **data)


def _limits_form(data: dict[str, Any], action: str) -> str:
    """The form setting the limits: outside the live body, so an update never clears what is typed."""
    if "panel" not in data:
        return ""
    return _environment().get_template("spend_limits_form.html").render(panel=data["panel"], action=action)


def refused(refusal: Refusal, nonce: str) -> str:
    return (
        _environment()
        .get_template("refused.html")
        .render(text=refusal.value, nonce=nonce, colors=css_variables({}))
    )


def _data(conn: Connection, settings: Settings, cap: Capability, now_us: int) -> dict[str, Any]:
    if cap.dashboard == "commits_and_credits":
        return {"commits": commits_board.commits_and_credits(conn, settings, cap.customer_id)}
    if cap.dashboard == "credits":
        return {"commits": commits_board.credits(conn, settings, cap.customer_id), "empty": "No credits."}
    if cap.dashboard == "spend_limits":
        return {"panel": limits_board.limits_panel(conn, settings, cap, now_us)}
    if cap.dashboard == "invoices":
        return {"invoices": invoices_board.invoices(conn, settings, cap.customer_id, cap.options, now_us)}
    boards = usage_board.usage_by_metric(conn, cap.customer_id, cap.groups, now_us)
    charts = []
    for board in boards:
        categories = [_month(m.start_us) for m in board.months]
        charts.append((board, categories, bar_chart(categories, board.series)))
    return {"charts": charts}


def money(amount: Decimal, credit_type: dict[str, str]) -> str:
    """USD cents shown as dollars; any other pricing unit as an amount and its name."""
    if credit_type.get("name") == CENTS:
        dollars = Decimal(amount) / 100
        return f"-${-dollars:,.2f}" if dollars < 0 else f"${dollars:,.2f}"
    return f"{number(amount)} {credit_type.get('name', '')}"


def cents(amount: Decimal | None) -> str:
    """A USD-cents amount in dollars; None (no limit) as a dash."""
    return "-" if amount is None else money(amount, {"name": CENTS})


def dollars_input(amount: Decimal | None) -> str:
    """A USD-cents amount as the dollars a form field holds: 1250 -> 12.50."""
    return "" if amount is None else f"{Decimal(amount) / 100:.2f}"


def number(value: Decimal | None) -> str:
    return "-" if value is None else f"{Decimal(value):,}"


def entry_name(entry_type: str) -> str:
    bare = next((entry_type[len(p) :] for p in ENTRY_PREFIXES if entry_type.startswith(p)), entry_type)
    return bare.replace("_", " ").capitalize()


def _month(start_us: int) -> str:
    return from_us(start_us).strftime("%b %Y")
