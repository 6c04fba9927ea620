"""Moving the end of a commit's or credit's access and invoice schedules, and the rules it follows.

Access ends at the new time: segments starting at or after it are dropped, the one holding it is
cut there, and the last one is extended to it if it lies beyond the current end (a segment keeps
its amount: what was not drawn by then expires). Invoicing stops at the new time: schedule items
at or after it are dropped. What has been billed or drawn stays as it was, so a new end may not
fall before it (each caller names the time that bounds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from meterline.domain.contracts import AccessSegment
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import format_rfc3339


def access_ending(
    segments: Sequence[AccessSegment], ending_before_us: int, *, drawn_until_us: int | None
) -> tuple[AccessSegment, ...]:
    """The access schedule ending at `ending_before_us`; `drawn_until_us` is the end of the last
    finalized invoice that drew from it (its deductions cannot move)."""
    field = "access_ending_before"
    if not segments:
        raise InvalidInput(f"{field}: the commit has no access schedule")
    first_start = min(s.starting_at_us for s in segments)
    if ending_before_us <= first_start:
        raise InvalidInput(
            f"{field}: must be after the access schedule's start, {format_rfc3339(first_start)}"
        )
    if drawn_until_us is not None and ending_before_us < drawn_until_us:
        raise InvalidInput(
            f"{field}: a finalized invoice drew from it until {format_rfc3339(drawn_until_us)}; "
            "its end may not move before that"
        )
    kept = sorted(
        (s for s in segments if s.starting_at_us < ending_before_us), key=lambda s: s.starting_at_us
    )
    cut = [replace(s, ending_before_us=min(s.ending_before_us, ending_before_us)) for s in kept]
    if ending_before_us > max(s.ending_before_us for s in segments):  # later: the last segment reaches it
        last = max(range(len(cut)), key=lambda i: cut[i].ending_before_us)
        cut[last] = replace(cut[last], ending_before_us=ending_before_us)
    return tuple(cut)


def invoices_ending(
    timestamps: Sequence[int], ending_before_us: int, *, billed_until_us: int | None
) -> list[bool]:
    """Which schedule items are kept (those before `ending_before_us`). An item at or before
    `billed_until_us` (it has been invoiced; None: none is) may not be dropped."""
    dropped = [t for t in timestamps if t >= ending_before_us]
    if billed_until_us is not None and any(t <= billed_until_us for t in dropped):
        raise InvalidInput(
            "invoices_ending_before: would drop an invoice schedule item already invoiced "
            f"(at {format_rfc3339(min(dropped))}); it must be after every item up to now"
        )
    return [t < ending_before_us for t in timestamps]
