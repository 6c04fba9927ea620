"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import numbers
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """Money and usage quantities: NUMERIC on PostgreSQL, text on SQLite, Decimal in Python.

    SQLite has no exact decimal type; storing text keeps every digit, and what little arithmetic
    SQLite does on these columns goes through meterline's own decimal functions (`store.db`).
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return value
        return decimal_as_text(value)

    def bind_processor(self, dialect: Dialect) -> Any:
        """`process_bind_param` chosen once per dialect: the engine binds three of these for every
        usage row it writes, and SQLAlchemy's generic path costs more than the formatting."""
        if dialect.name == "postgresql":
            return super().bind_processor(dialect)
        return decimal_as_text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return decimal_from_stored(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """`process_result_value` called directly on SQLite (whose text needs no processing of
        its own first): a batch's state reads convert thousands of these per customer read."""
        if dialect.name == "postgresql":
            return super().result_processor(dialect, coltype)
        return decimal_from_stored


class Json(TypeDecorator[Any]):
    """JSON, read on SQLite with one call per value where SQLAlchemy's own reader makes three.

    The evaluator reads about thirty JSON values for each customer whose state it loads
    (contracts, commits, alerts), and SQLAlchemy's nested readers cost several times the
    decoding itself. The values are the same: the engine's JSON decoder on text, and, as
    SQLAlchemy's SQLite reader does, a number kept as it is (a column declared JSON has numeric
    affinity, so SQLite stores a bare JSON number as one). PostgreSQL reads as SQLAlchemy does.
    """

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        decode = dialect._json_deserializer or json.loads  # type: ignore[attr-defined]

        def process(value: Any) -> Any:
            if value.__class__ is str:
                return decode(value)
            if value is None or isinstance(value, numbers.Number):
                return value
            return decode(value)

        return process


def decimal_from_stored(value: Any) -> Decimal | None:
    """An `ExactDecimal` as read: SQLite's text (or a number an expression made) as a Decimal."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(value)


def decimal_as_text(value: Decimal | None) -> str | None:
    """An `ExactDecimal` as SQLite stores it: every digit, no exponent."""
    return None if value is None else format(value, "f")
