"""SQLite's exact decimal functions (`store.db`, the usage upserts' merge): their shortcut for
whole numbers gives the text the Decimal arithmetic gives, digit for digit, for any stored text."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.aggregation import exact_sum
from meterline.store.db import _decimal_max, _decimal_sum
from meterline.store.types import decimal_as_text


def stored_sum(a: str, b: str) -> str:
    return format(exact_sum(Decimal(a), Decimal(b)), "f")


def stored_max(a: str, b: str) -> str:
    return b if Decimal(b) > Decimal(a) else a


whole = st.integers(0, 10**120).map(str)
decimals = st.decimals(allow_nan=False, allow_infinity=False).map(decimal_as_text)
texts = st.one_of(
    whole,
    decimals,
    st.sampled_from(["0", "-0", "00", "007", "1", "1.0", "-1", "10", "9" * 98, "9" * 99, "٣", "1_0"]),
)


@given(texts, texts)
def test_a_sum_is_the_exact_decimal_sum_as_text(a: str, b: str) -> None:
    try:
        expected = stored_sum(a, b)
    except ArithmeticError:  # text Decimal cannot read
        return
    assert _decimal_sum(a, b) == expected


@given(texts, texts)
def test_a_maximum_is_the_larger_text_and_the_first_of_equals(a: str, b: str) -> None:
    try:
        expected = stored_max(a, b)
    except ArithmeticError:
        return
    assert _decimal_max(a, b) == expected
    assert _decimal_max(None, b) == b and _decimal_max(a, None) == a


def test_whole_numbers_sum_as_integers_and_keep_every_digit() -> None:
    assert _decimal_sum("41", "1") == "42"
    assert _decimal_sum("007", "1") == "8"
    assert _decimal_sum("9" * 98, "1") == "1" + "0" * 98
    assert _decimal_sum("0.50", "1") == "1.50"
    assert _decimal_sum("-0", "-0") == "-0"
