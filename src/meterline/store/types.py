"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
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
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def decimal_as_text(value: Decimal | None) -> str | None:
    """An `ExactDecimal` as SQLite stores it: every digit, no exponent."""
    return None if value is None else format(value, "f")
