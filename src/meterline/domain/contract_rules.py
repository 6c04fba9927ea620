"""Rules of a contract's own terms: its time range and its usage statement schedule."""

from __future__ import annotations

from meterline.domain.billing_periods import AnchorDay
from meterline.domain.errors import InvalidInput

LOWEST_MULTIPLIER = "LOWEST_MULTIPLIER"
EXPLICIT = "EXPLICIT"


def check_contract_span(
    starting_at_us: int, ending_before_us: int | None, field: str = "ending_before"
) -> None:
    if ending_before_us is not None and ending_before_us <= starting_at_us:
        raise InvalidInput(f"{field}: must be after starting_at")


def check_statement_anchor(day: AnchorDay, billing_anchor_us: int | None) -> None:
    """A billing anchor date means something only for CUSTOM_DATE, which cannot do without one."""
    where = "usage_statement_schedule.billing_anchor_date"
    if day is AnchorDay.CUSTOM_DATE and billing_anchor_us is None:
        raise InvalidInput(f"{where}: is required when day is CUSTOM_DATE")
    if day is not AnchorDay.CUSTOM_DATE and billing_anchor_us is not None:
        raise InvalidInput(f"{where}: is only allowed when day is CUSTOM_DATE")
