"""Headroom: how much usage a customer can take before any of its alerts could transition.

When the engine measures a customer's alerts, it also notes how far each measure is from its
threshold, in units of spend per credit type (or of usage per metric, for usage alerts), and how
far a unit of each metric's usage can move spend (`domain.spend_bounds`). Until usage could have
used up one of those distances, no alert of the customer can change state, so a batch that
touches the customer only folds its usage into the aggregates (which it does for every event):
its drafts are not derived and its alerts not measured. That is what keeps the cost of an event
flat when traffic spreads over many customers, each with usage far from its thresholds.

The check is conservative by construction: the bounds are the largest prices, a measure moves
by at most the spend of its credit type, and the comparison is strict. A headroom holds only
while what it was computed from holds, so it is dropped whenever any of that may change: a
contract, commit or alert change (the customer is then measured again anyway), the catalog
(rates, products, metrics, credit types: `store.catalog_version`), a time-driven instant or the
end of a period (`valid_until_us`), a failed batch, a change in the partitions held. A customer
without one is measured in full, which computes a new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from sqlalchemy import Connection

from meterline.domain.alerts import Measure, kind_of
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.metrics import AggregationType
from meterline.domain.spend_bounds import BOUNDED, SpendBounds, UnitBound
from meterline.domain.usage_fold import Movement
from meterline.engine.alert_measures import Measurement
from meterline.engine.customer_state import CustomerState
from meterline.store import headrooms as stored
from meterline.store.alerts import AlertRecord
from meterline.store.invoices import FINALIZED

ZERO = Decimal(0)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
SPEND_MEASURES = (Measure.SPEND, Measure.INVOICE_TOTAL, Measure.BALANCE, Measure.PERCENTAGE)
# Customers whose headroom is kept (least recently touched go first): about 1 KB each.
DEFAULT_CUSTOMERS = 1_000_000


@dataclass(slots=True)
class Headroom:
    spend_rooms: dict[str, Decimal]  # credit type id -> spend left before a threshold
    usage_rooms: dict[str, Decimal]  # metric id -> usage left before a usage threshold
    bounds: SpendBounds
    valid_until_us: int | None  # None: no instant ends it

    def absorb(self, moved: Sequence[tuple[str, Movement]], now_us: int) -> bool:
        """Take this batch's usage of the customer if no alert could transition; else False (and
        nothing taken)."""
        if self.valid_until_us is not None and now_us >= self.valid_until_us:
            return False
        spend: dict[str, Decimal] = {}
        usage: dict[str, Decimal] = {}
        for metric_id, movement in moved:
            if metric_id in self.usage_rooms:
                usage[metric_id] = usage.get(metric_id, ZERO) + movement.magnitude
            for credit_type_id, bound in self.bounds.get(metric_id, {}).items():
                if credit_type_id in self.spend_rooms:
                    moves = bound.of(movement.magnitude, movement.events)
                    spend[credit_type_id] = spend.get(credit_type_id, ZERO) + moves
        if any(used >= self.spend_rooms[c] for c, used in spend.items()):
            return False
        if any(used >= self.usage_rooms[m] for m, used in usage.items()):
            return False
        for credit_type_id, used in spend.items():
            self.spend_rooms[credit_type_id] -= used
        for metric_id, used in usage.items():
            self.usage_rooms[metric_id] -= used
        return True

    def encoded(self) -> str:
        return _encode(
            {
                "spend": {c: str(r) for c, r in self.spend_rooms.items()},
                "usage": {m: str(r) for m, r in self.usage_rooms.items()},
                "bounds": {
                    m: {c: [str(b.per_unit), str(b.per_event)] for c, b in per_type.items()}
                    for m, per_type in self.bounds.items()
                },
                "valid_until_us": self.valid_until_us,
            }
        ).decode()

    @classmethod
    def decoded(cls, body: str) -> Headroom:
        raw = _decode(body)
        return cls(
            {c: Decimal(r) for c, r in raw["spend"].items()},
            {m: Decimal(r) for m, r in raw["usage"].items()},
            {
                m: {c: UnitBound(Decimal(b[0]), Decimal(b[1])) for c, b in per_type.items()}
                for m, per_type in raw["bounds"].items()
            },
            raw["valid_until_us"],
        )


def headroom_of(
    state: CustomerState,
    measured: Iterable[tuple[AlertRecord, Measurement]],
    aggregations: Mapping[str, AggregationType],
    now_us: int,
) -> Headroom:
    """The headroom of a customer whose alerts were just measured (`measured`), its drafts derived."""
    spend_rooms: dict[str, Decimal] = {}
    usage_rooms: dict[str, Decimal] = {}

    def narrow(rooms: dict[str, Decimal], key: str, room: Decimal) -> None:
        rooms[key] = min(rooms.get(key, room), room)

    seen: set[str] = set()
    for alert, measurement in measured:
        seen.add(alert.id)
        measure = kind_of(alert.alert_type).measure
        if measure is Measure.DAYS:
            continue  # moves with the clock only (`valid_until_us`)
        distance = ZERO if measurement.value is None else (measurement.value - alert.threshold).copy_abs()
        if measure is Measure.USAGE:
            metric_id = alert.billable_metric_id or ""
            bounded = aggregations.get(metric_id) in BOUNDED  # MAX, LATEST, UNIQUE may jump anywhere
            narrow(usage_rooms, metric_id, distance if bounded else ZERO)
            continue
        if measure not in SPEND_MEASURES:
            distance = ZERO  # a measure no bound here is known for: measured at every usage
        room = distance / measurement.per_spend
        if _groups_start_at_zero(alert):
            room = min(room, alert.threshold.copy_abs())  # a group value not seen yet
        narrow(spend_rooms, _credit_type(alert), room)
    for alert in state.alerts:
        if alert.id in seen or kind_of(alert.alert_type).measure is Measure.DAYS:
            continue
        # Not measured in this evaluation (its first measurement is its creation sweep's, or it
        # had nothing to measure yet): no room; measured again at the customer's next usage.
        if kind_of(alert.alert_type).measure is Measure.USAGE:
            narrow(usage_rooms, alert.billable_metric_id or "", ZERO)
        else:
            narrow(spend_rooms, _credit_type(alert), ZERO)
    return Headroom(spend_rooms, usage_rooms, state.spend_bounds, _valid_until(state, now_us))


def _groups_start_at_zero(alert: AlertRecord) -> bool:
    return kind_of(alert.alert_type).measure is Measure.SPEND and bool(alert.group_values)


def _credit_type(alert: AlertRecord) -> str:
    return alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID


def _valid_until(state: CustomerState, now_us: int) -> int | None:
    """The first instant past which the measures may move without usage: a time-driven instant
    of its alerts, the end of a period being billed, a contract starting or ending."""
    instants = [state.wakeup_us] if state.wakeup_us is not None else []
    instants += [inv.end_us for inv in state.invoices if inv.status != FINALIZED and inv.end_us > now_us]
    for contract in state.contracts:
        instants += [
            t for t in (contract.starting_at_us, contract.ending_before_us) if t is not None and t > now_us
        ]
    return min(instants, default=None)


class HeadroomBook:
    """The headrooms the engine keeps in memory, at most `capacity` (least recently touched are
    dropped first), and stored (`store.headrooms`): written when computed, deleted when dropped,
    read for customers not in memory on their first touch."""

    def __init__(self, capacity: int = DEFAULT_CUSTOMERS):
        self.capacity = capacity
        self._rooms: OrderedDict[str, Headroom] = OrderedDict()
        self._catalog_version: int | None = None
        self._partitions: object = None
        self._computed: dict[str, Headroom] = {}  # this batch's, to store
        self._dropped: set[str] = set()  # this batch's, to delete
        self.absorbed = 0  # customer-batches that needed no measurement (for benchmarks)

    def begin(self, catalog_version: int, partitions: object) -> None:
        """Call at the start of each batch: a catalog or partitions different from the last
        batch's drop every headroom in memory (stored ones of another catalog are never read)."""
        if (catalog_version, partitions) != (self._catalog_version, self._partitions):
            self._rooms.clear()
            self._catalog_version, self._partitions = catalog_version, partitions
        self._computed, self._dropped = {}, set()

    def load_missing(self, conn: Connection, customer_ids: Iterable[str]) -> None:
        """Read the stored headrooms that still hold of these customers not in memory. Call
        before the batch folds its usage (which would make them not hold any more)."""
        if self.capacity <= 0 or self._catalog_version is None:
            return
        missing = sorted(c for c in customer_ids if c not in self._rooms)
        if missing:
            for customer_id, body in stored.still_holding(conn, missing, self._catalog_version).items():
                self._remember(customer_id, Headroom.decoded(body))

    def absorb(
        self, customer_ids: Iterable[str], movements: Mapping[tuple[str, str], Movement], now_us: int
    ) -> set[str]:
        """The customers whose usage this batch cannot move any alert: nothing more to do for them."""
        by_customer: dict[str, list[tuple[str, Movement]]] = {}
        for (customer_id, metric_id), movement in movements.items():
            by_customer.setdefault(customer_id, []).append((metric_id, movement))
        absorbed: set[str] = set()
        for customer_id in customer_ids:
            room = self._rooms.get(customer_id)
            if room is not None and room.absorb(by_customer.get(customer_id, ()), now_us):
                self._rooms.move_to_end(customer_id)
                absorbed.add(customer_id)
            elif room is not None:
                del self._rooms[customer_id]  # measured in full now, which computes a new one
        self.absorbed += len(absorbed)
        return absorbed

    def keep(self, customer_id: str, headroom: Headroom) -> None:
        """A headroom just computed (stored with the batch: `flush`)."""
        if self.capacity > 0:
            self._remember(customer_id, headroom)
            self._computed[customer_id] = headroom
            self._dropped.discard(customer_id)

    def drop(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._rooms.pop(customer_id, None)
            self._computed.pop(customer_id, None)
            self._dropped.add(customer_id)

    def flush(self, conn: Connection, as_of_seq: int) -> None:
        """Store the batch's headrooms (computed with every event up to `as_of_seq`) and delete
        the dropped ones, in the batch's transaction."""
        if self._dropped:
            stored.delete_for(conn, self._dropped)
        if self._computed and self._catalog_version is not None:
            bodies = ((c, h.encoded()) for c, h in self._computed.items())
            stored.save(conn, bodies, as_of_seq, self._catalog_version)
        self._computed, self._dropped = {}, set()

    def clear(self) -> None:
        """After a failed batch: what was kept may follow changes that were rolled back."""
        self._rooms.clear()
        self._catalog_version = None
        self._computed, self._dropped = {}, set()

    def _remember(self, customer_id: str, headroom: Headroom) -> None:
        self._rooms[customer_id] = headroom
        self._rooms.move_to_end(customer_id)
        while len(self._rooms) > self.capacity:
            self._rooms.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rooms)
