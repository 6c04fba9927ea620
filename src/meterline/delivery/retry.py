"""When a failed delivery is tried again, and when it is given up.

Standard Webhooks' schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and
24 h after each failure, each delay with +-10% jitter so receivers coming back from an outage are
not hit by every sender at once. No attempt is later than 72 h after the first one: a delay that
would pass that limit (or a Retry-After asking for more) is cut to it, and the attempt made at
the limit is the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from meterline.domain.timeutil import US_PER_HOUR, US_PER_SECOND, to_us

# Delay before attempt n+1 (index n) after attempt n failed; index 0 is the first attempt.
SCHEDULE_S = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
RETRY_WINDOW_US = 72 * US_PER_HOUR
JITTER = 0.10
GONE = 410


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt's result means for the delivery."""

    state: str  # "succeeded", "failed" or "pending"
    next_attempt_at_us: int | None
    disable_endpoint: bool = False


SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"


def outcome(
    status_code: int | None,
    retry_after: str | None,
    *,
    attempts_in_round: int,
    first_attempt_at_us: int,
    attempted_at_us: int,
    jitter: float,
) -> Outcome:
    """`attempts_in_round` counts this attempt; `jitter` is uniform in [0, 1)."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(SUCCEEDED, None)
    if status_code == GONE:
        return Outcome(FAILED, None, disable_endpoint=True)
    deadline = first_attempt_at_us + RETRY_WINDOW_US
    if attempts_in_round >= len(SCHEDULE_S) or attempted_at_us >= deadline:
        return Outcome(FAILED, None)
    delay_us = round(SCHEDULE_S[attempts_in_round] * US_PER_SECOND * (1 + JITTER * (2 * jitter - 1)))
    at = attempted_at_us + delay_us
    wait_us = retry_after_us(retry_after, attempted_at_us)
    if wait_us is not None:
        at = max(at, attempted_at_us + wait_us)
    return Outcome(PENDING, min(at, deadline))


def retry_after_us(value: str | None, now_us: int) -> int | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as a wait in microseconds."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), RETRY_WINDOW_US // US_PER_SECOND) * US_PER_SECOND
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, to_us(moment) - now_us)
