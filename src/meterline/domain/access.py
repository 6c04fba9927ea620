"""Access decisions (meterline's extension): whether a customer may use the product now, and why not.

A customer has access unless something denies it: it is unknown, it is archived, or one of its
blocking alerts is in alarm (a hard spend limit, or any alert created with `blocking`). The
decision lists every reason, so an application can tell "over the hard limit" from "account
closed". `as_of` is the instant up to which the engine's evaluation is reflected: every event
acknowledged before it has been evaluated, and every change made before it applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

HARD_LIMIT_REACHED = "hard_limit_reached"
BLOCKING_ALERT = "blocking_alert"
CUSTOMER_ARCHIVED = "customer_archived"
UNKNOWN_CUSTOMER = "unknown_customer"
REASON_CODES = (HARD_LIMIT_REACHED, BLOCKING_ALERT, CUSTOMER_ARCHIVED, UNKNOWN_CUSTOMER)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    alert_id: str | None = None
    threshold: Decimal | None = None
    value: Decimal | None = None  # the alert's measure when it went in alarm


@dataclass(frozen=True, slots=True)
class Alarm:
    """A blocking alert in alarm for a customer."""

    alert_id: str
    threshold: Decimal
    value: Decimal | None
    hard_limit: bool  # a hard spend limit (spend-limits/set), else an alert created blocking

    def reason(self) -> Reason:
        code = HARD_LIMIT_REACHED if self.hard_limit else BLOCKING_ALERT
        return Reason(code, self.alert_id, self.threshold, self.value)


@dataclass(frozen=True, slots=True)
class Decision:
    customer_id: str  # as the caller named the customer: its id or an ingest alias
    reasons: tuple[Reason, ...]
    as_of_us: int
    resolved_id: str | None = None  # the meterline id of the customer named, if one is

    @property
    def has_access(self) -> bool:
        return not self.reasons

    def key(self) -> tuple[str, tuple[tuple[str, str | None], ...]]:
        """What a change of access is: the customer's reasons (none: access), not their measures
        or the instant of the decision."""
        return self.customer_id, tuple((r.code, r.alert_id) for r in self.reasons)


def decide(
    ref: str, customer_id: str | None, archived: bool, alarms: Sequence[Alarm], as_of_us: int
) -> Decision:
    """The decision for the customer a reference names (`customer_id`: None when it names none)."""
    if customer_id is None:
        return Decision(ref, (Reason(UNKNOWN_CUSTOMER),), as_of_us)
    if not archived and not alarms:
        return Decision(ref, (), as_of_us, customer_id)  # the usual answer, without the sorting
    if not archived and len(alarms) == 1:  # one hard limit reached: nothing to sort
        return Decision(ref, (alarms[0].reason(),), as_of_us, customer_id)
    reasons = [Reason(CUSTOMER_ARCHIVED)] if archived else []
    reasons += sorted((a.reason() for a in alarms), key=lambda r: (r.code, r.alert_id or ""))
    return Decision(ref, tuple(reasons), as_of_us, customer_id)


def fingerprint(decisions: Iterable[Decision]) -> str:
    """A short digest of a set of decisions' keys: two sets with the same digest grant the same
    access for the same reasons (a stream's client resumes without being sent them again)."""
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(d.key() for d in decisions):
        digest.update(repr(key).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
