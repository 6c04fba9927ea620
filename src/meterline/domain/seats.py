"""A seat's own balance: which usage may draw down credit allocated to one seat.

A recurring commit or credit with INDIVIDUAL allocation grants each seat of its SEAT_BASED
subscription a balance of its own. Usage draws it down only when its charge carries the seat:
the subscription's `seat_group_key` among the line's pricing or presentation group values, with
the seat's id as its value (Metronome asks that the key be a group key of the billable metric
and a pricing or presentation group key of the product, for this reason). Usage without the
key, or of a value that is no seat, draws nothing from seat balances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SeatScope:
    """The seat a balance belongs to. `seat_id` None: a period's anchor that no seat draws
    (a period that starts with no seat assigned grants nothing at its start)."""

    group_key: str
    seat_id: str | None

    def carried_by(
        self, pricing_values: Mapping[str, str], presentation_values: Mapping[str, str | None]
    ) -> bool:
        """Whether a charge of these group values is this seat's usage."""
        if self.seat_id is None:
            return False
        return (
            pricing_values.get(self.group_key) == self.seat_id
            or presentation_values.get(self.group_key) == self.seat_id
        )
