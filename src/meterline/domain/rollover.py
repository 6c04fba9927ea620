"""Rolling a commit or credit over when its contract transitions to another (RENEWAL, SUPERSEDE).

At the transition instant T (the new contract's start, where the old one now ends), each of the
old contract's commits and credits with a `rollover_fraction` rolls over the unused balance of
its segments that were accessible up to T (started before T and not ended before it): unused x
fraction, exactly (amounts are exact decimals; nothing is rounded). The old segment's ledger
shows that amount leaving it (a ROLLOVER entry at T) and what did not roll over expiring; the new
contract gets one commit of the same kind holding the rolled amounts, accessible from T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Context, Decimal

from meterline.domain.contracts import AccessSegment

ZERO = Decimal(0)
ONE = Decimal(1)
# Wide enough that unused x fraction is exact for any amount and fraction meterline accepts.
_EXACT = Context(prec=80)


def rolled_amount(unused: Decimal, fraction: Decimal) -> Decimal:
    """The part of `unused` that rolls over: exact, never negative, never more than `unused`."""
    if unused <= 0 or fraction <= 0:
        return ZERO
    return _EXACT.multiply(unused, min(fraction, ONE))


def rolling_segments(segments: Sequence[AccessSegment], at_us: int) -> list[AccessSegment]:
    """The segments whose unused balance rolls over at `at_us`: accessible until then (a segment
    ending exactly at the transition, as a renewal's usually does, included)."""
    return [s for s in segments if s.starting_at_us < at_us <= s.ending_before_us]


def rolled_segments(
    segments: Sequence[AccessSegment], drawn: Mapping[str, Decimal], fraction: Decimal, at_us: int
) -> dict[str, Decimal]:
    """Per rolling segment, what rolls over: (its amount less what invoices drew) x fraction; the
    segments with nothing to roll over left out."""
    rolled = {
        s.id: rolled_amount(s.amount - drawn.get(s.id, ZERO), fraction)
        for s in rolling_segments(segments, at_us)
    }
    return {segment_id: amount for segment_id, amount in rolled.items() if amount > 0}


def rollover_access_end(new_contract_end_us: int | None, rolled: Sequence[AccessSegment], at_us: int) -> int:
    """Where the rollover commit's access ends: with the new contract; an open-ended one, after as
    long as the longest segment it rolled over from lasted."""
    if new_contract_end_us is not None:
        return new_contract_end_us
    return at_us + max(s.ending_before_us - s.starting_at_us for s in rolled)
