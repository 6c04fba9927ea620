"""How the store writes values into JSON columns and reads them back: decimals as exact text,
optional sequences as lists (tuples in the records)."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """Every digit, never an exponent (what `Decimal(text)` reads back exactly)."""
    return format(value, "f")


def optional_list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def optional_tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
