"""Request field types the contract-pricing routes share: timestamps and exact, bounded numbers.

Timestamps arrive as RFC 3339 text and leave the model as integer epoch microseconds. Numbers are
Decimal (see api/exact_body.py), bounded so that every accepted value fits the database.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from meterline.domain.timeutil import US_PER_HOUR, parse_rfc3339, to_us

# Who made a change, as the catalog's `created_by` fields show it. API tokens carry no user.
API_ACTOR = "api"
_NOT_A_TIMESTAMP = "must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z"


def _instant(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(_NOT_A_TIMESTAMP)
    try:
        return to_us(parse_rfc3339(value))
    except OverflowError:  # an offset that moves year 1 or 9999 out of range once in UTC
        raise ValueError("must be between years 0001 and 9999 in UTC") from None


def _hour_instant(value: Any) -> int:
    us = _instant(value)
    if us % US_PER_HOUR:
        raise ValueError("must be on an hour boundary (e.g. 01:00, not 01:30)")
    return us


# An instant, in epoch microseconds.
Instant = Annotated[int, BeforeValidator(_instant)]
# An instant on an hour boundary: usage is kept per hour, so prices and products change on hours.
HourInstant = Annotated[int, BeforeValidator(_hour_instant)]

# At most 40 digits, 20 of them after the point: far beyond any price, and storable everywhere.
NonNegativeAmount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=40, decimal_places=20)]
PositiveAmount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=40, decimal_places=20)]
# Any sign, same bounds: priorities and factors whose sign rules live in the domain.
FiniteAmount = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=40, decimal_places=20)]
# A share from 0 to 1 (a commit's rollover_fraction), exact.
Fraction = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False, max_digits=21, decimal_places=20)]
