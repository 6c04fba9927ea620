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

import sys
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from sqlalchemy import Connection

from meterline.domain.alerts import Measure, breached, kind_of
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.metrics import AggregationType
from meterline.domain.spend_bounds import BOUNDED, INFINITY, RELATIVE_MARGIN, SpendBounds, UnitBound
from meterline.domain.spend_pace import PROJECTION_PLACES
from meterline.domain.usage_fold import Movement
from meterline.engine.alert_measures import Measurement
from meterline.engine.customer_state import CustomerState
from meterline.store import headrooms as stored
from meterline.store.alerts import AlertRecord
from meterline.store.invoices import DRAFT, FINALIZED, TRUEUP

ZERO = Decimal(0)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
SPEND_MEASURES = (
    Measure.SPEND,
    Measure.PROJECTED_SPEND,
    Measure.INVOICE_TOTAL,
    Measure.BALANCE,
    Measure.PERCENTAGE,
)
RISING_MEASURES = (Measure.SPEND, Measure.INVOICE_TOTAL)  # with spend; balances fall with it
# Customers whose headroom is kept (least recently touched go first): about 1 KB each.
DEFAULT_CUSTOMERS = 1_000_000
# Stored headrooms loaded per batch after a take-over (about 10 µs each): enough to have a
# million customers' in memory within a few hundred batches, little enough not to hold a batch up.
WARM_SLICE = 2_000


# (one of a headroom's rooms, its key, how much of it a batch's usage would use)
Use = tuple[dict[str, Decimal], str, Decimal]
# (credit type id, how much a movement may raise its spend, and lower it)
Spends = tuple[tuple[str, Decimal, Decimal], ...]


def spend_moves(bounds: SpendBounds, metric_id: str, m: Movement) -> Spends:
    """How far one metric's movement may move spend in each credit type, by these bounds."""
    per_type = bounds.get(metric_id)
    if not per_type:
        return ()
    return tuple(
        (credit_type_id, *b.moved(m.added, m.removed, m.events)) for credit_type_id, b in per_type.items()
    )


@dataclass(slots=True)
class Headroom:
    # credit type id -> how far spend may rise, and fall, before an alert could transition
    spend_rise: dict[str, Decimal]
    spend_fall: dict[str, Decimal]
    # metric id -> how much usage may be added, and removed, before a usage alert could
    usage_added: dict[str, Decimal]
    usage_removed: dict[str, Decimal]
    bounds: SpendBounds
    valid_until_us: int | None  # None: no instant ends it
    # Set by each usage taken: the same usage again would not be taken (some room has no more
    # left than it used). Such a customer is likely measured soon: `engine.read_ahead`.
    near: bool = False

    def absorb(self, moved: Sequence[tuple[str, Movement]], now_us: int) -> bool:
        """Take this batch's usage of the customer if no alert could transition; else False (and
        nothing taken)."""
        if self.valid_until_us is not None and now_us >= self.valid_until_us:
            return False
        uses = self._uses(*moved[0]) if len(moved) == 1 else self._summed_uses(moved)
        for rooms, key, used in uses:
            if used > 0 and used >= rooms[key]:
                return False
        near = False
        for rooms, key, used in uses:
            if used:
                rooms[key] -= used
                near = near or (used > 0 and used >= rooms[key])
        self.near = near
        return True

    def absorb_one(self, metric_id: str, m: Movement, spends: Spends, now_us: int) -> bool:
        """`absorb` of one metric's movement, given what it moves spend by (`spend_moves`, the same
        for every customer whose bounds and movement are the same). Spread over many customers,
        nearly every customer a batch touches moved one metric, by what many others moved it."""
        if self.valid_until_us is not None and now_us >= self.valid_until_us:
            return False
        added, removed = self.usage_added, self.usage_removed
        counted = metric_id in added
        if counted and (
            (m.added > 0 and m.added >= added[metric_id])
            or (m.removed > 0 and m.removed >= removed[metric_id])
        ):
            return False
        rises, falls = self.spend_rise, self.spend_fall
        for credit_type_id, rise, fall in spends:
            if credit_type_id in rises and (
                (rise > 0 and rise >= rises[credit_type_id]) or (fall > 0 and fall >= falls[credit_type_id])
            ):
                return False
        near = False
        if counted:
            if m.added:
                added[metric_id] -= m.added
                near = m.added > 0 and m.added >= added[metric_id]
            if m.removed:
                removed[metric_id] -= m.removed
                near = near or (m.removed > 0 and m.removed >= removed[metric_id])
        for credit_type_id, rise, fall in spends:
            if credit_type_id in rises:
                if rise:
                    rises[credit_type_id] -= rise
                    near = near or (rise > 0 and rise >= rises[credit_type_id])
                if fall:
                    falls[credit_type_id] -= fall
                    near = near or (fall > 0 and fall >= falls[credit_type_id])
        self.near = near
        return True

    def _uses(self, metric_id: str, m: Movement) -> list[Use]:
        """What one metric's movement uses of each room (each room once: no sums needed). Spread
        over many customers, nearly every customer a batch touches moved one metric."""
        uses: list[Use] = []
        if metric_id in self.usage_added:
            uses += ((self.usage_added, metric_id, m.added), (self.usage_removed, metric_id, m.removed))
        bounds = self.bounds.get(metric_id)
        if bounds:
            for credit_type_id, bound in bounds.items():
                if credit_type_id in self.spend_rise:
                    rise, fall = bound.moved(m.added, m.removed, m.events)
                    uses += ((self.spend_rise, credit_type_id, rise), (self.spend_fall, credit_type_id, fall))
        return uses

    def _summed_uses(self, moved: Sequence[tuple[str, Movement]]) -> list[Use]:
        """What several metrics' movements use of each room, summed per room."""
        summed: dict[tuple[int, str], Use] = {}
        for metric_id, m in moved:
            for rooms, key, used in self._uses(metric_id, m):
                found = summed.get((id(rooms), key))
                summed[id(rooms), key] = (rooms, key, used if found is None else found[2] + used)
        return list(summed.values())

    def encoded(self) -> str:
        def texts(rooms: dict[str, Decimal]) -> dict[str, str]:
            return {k: str(v) for k, v in rooms.items()}

        return _encode(
            {
                "rooms": [
                    texts(r) for r in (self.spend_rise, self.spend_fall, self.usage_added, self.usage_removed)
                ],
                "bounds": _bounds_text(self.bounds),
                "valid_until_us": self.valid_until_us,
            }
        ).decode()

    @classmethod
    def decoded(cls, body: str) -> Headroom:
        raw = _decode(body)
        rise, fall, added, removed = (
            {sys.intern(k): _amount(v) for k, v in rooms.items()} for rooms in raw["rooms"]
        )
        return cls(rise, fall, added, removed, _shared_bounds(raw["bounds"]), raw["valid_until_us"])


# A million customers' headrooms share a handful of bounds (one per rate card and overrides) and
# of ids: decoded once and shared, each costs its customer nothing (they are never changed).
_BOUNDS: dict[bytes, SpendBounds] = {}


def _shared_bounds(raw: dict[str, dict[str, list[str]]]) -> SpendBounds:
    key = _encode(raw)
    found = _BOUNDS.get(key)
    if found is None:
        if len(_BOUNDS) > 10_000:
            _BOUNDS.clear()
        found = _BOUNDS[key] = {
            sys.intern(m): {
                sys.intern(c): UnitBound(_amount(b[0]), _amount(b[1]), _amount(b[2]))
                for c, b in per_type.items()
            }
            for m, per_type in raw.items()
        }
    return found


def _bounds_text(bounds: SpendBounds) -> dict[str, dict[str, list[str]]]:
    return {
        m: {c: [str(b.rise), str(b.fall), str(b.per_event)] for c, b in per_type.items()}
        for m, per_type in bounds.items()
    }


def shared_bounds(bounds: SpendBounds) -> SpendBounds:
    """These bounds, as the one object every headroom with the same bounds (to the digits) holds:
    `HeadroomBook.absorb` works out what a movement moves spend by once per bounds object, and a
    customer's drafts derive bounds of their own each time it is measured."""
    return _shared_bounds(_bounds_text(bounds))


def _amount(text: str) -> Decimal:
    return INFINITY if text == "Infinity" else Decimal(text)


def headroom_of(
    state: CustomerState,
    measured: Iterable[tuple[AlertRecord, Measurement]],
    aggregations: Mapping[str, AggregationType],
    now_us: int,
) -> Headroom:
    """The headroom of a customer whose alerts were just measured (`measured`), its drafts derived."""
    until = valid_until(state, now_us)
    if any(config.is_enabled for contract in state.contracts for config in contract.thresholds):
        until = now_us  # threshold billing: its measures are checked at every usage
    room = Headroom({}, {}, {}, {}, shared_bounds(state.spend_bounds), until)
    # A postpaid true-up's draft falls as spend rises: invoice totals then move either way.
    trued_up = any(inv.type == TRUEUP and inv.status == DRAFT for inv in state.invoices)
    seen: set[str] = set()
    for alert, measurement in measured:
        seen.add(alert.id)
        _narrow_for(room, alert, measurement, aggregations, trued_up)
    for alert in state.alerts:
        if alert.id not in seen:
            # Not measured in this evaluation (its first measurement is its creation sweep's, or
            # it had nothing to measure yet): no room; measured again at the customer's next usage.
            _narrow_for(room, alert, Measurement("", None), aggregations, trued_up)
    return room


def _narrow_for(
    room: Headroom,
    alert: AlertRecord,
    measurement: Measurement,
    aggregations: Mapping[str, AggregationType],
    trued_up: bool = False,
) -> None:
    kind = kind_of(alert.alert_type)
    if kind.measure is Measure.DAYS:
        return  # moves with the clock only (`valid_until_us`)
    value = measurement.value
    if value is None or kind.measure not in (*SPEND_MEASURES, Measure.USAGE):
        gap = ZERO  # nothing measured, or a measure no bound is known for: measured at every usage
        must_rise = True
    else:
        # Less a margin for the rounding of the amounts it was measured from (`spend_bounds`).
        margin = (value.copy_abs() + alert.threshold.copy_abs()) * RELATIVE_MARGIN
        gap = max((value - alert.threshold).copy_abs() - margin, ZERO)
        past = breached(kind, value, alert.threshold)
        must_rise = not past if kind.fires_at_or_above else past  # what the measure must do to cross
    if kind.measure is Measure.USAGE:
        metric_id = alert.billable_metric_id or ""
        if aggregations.get(metric_id) not in BOUNDED:
            gap = ZERO  # MAX, LATEST, UNIQUE may jump anywhere
        _narrow(room.usage_added, metric_id, gap if must_rise else INFINITY)
        _narrow(room.usage_removed, metric_id, INFINITY if must_rise and gap > 0 else gap)
        return
    credit_type_id = _credit_type(alert)
    spend_gap = gap / measurement.per_spend
    if kind.measure is Measure.PROJECTED_SPEND:
        # Usage before the window may move the projection either way (tiered prices), and in
        # alarm it falls with the clock alone, towards the threshold: no room then. Less what
        # the projection's rounding may hide.
        if value is None or breached(kind, value, alert.threshold):
            room_either_way = ZERO
        else:
            room_either_way = max(gap - PROJECTION_PLACES, ZERO) / measurement.per_spend
        _narrow(room.spend_rise, credit_type_id, room_either_way)
        _narrow(room.spend_fall, credit_type_id, room_either_way)
        return
    if kind.measure is Measure.INVOICE_TOTAL and trued_up:
        _narrow(room.spend_rise, credit_type_id, spend_gap)  # a true-up's total falls as spend rises
        _narrow(room.spend_fall, credit_type_id, spend_gap)
        return
    # Spend and invoice totals move with spend; balances and percentages against it.
    spend_must_rise = must_rise == (kind.measure in RISING_MEASURES)
    _narrow(room.spend_rise, credit_type_id, spend_gap if spend_must_rise else INFINITY)
    _narrow(room.spend_fall, credit_type_id, INFINITY if spend_must_rise and gap > 0 else spend_gap)
    if kind.measure is Measure.SPEND and alert.group_values:
        # A group value not seen yet has spent nothing: it crosses once it has spent the threshold.
        _narrow(room.spend_rise, credit_type_id, max(alert.threshold, ZERO))


def _narrow(rooms: dict[str, Decimal], key: str, room: Decimal) -> None:
    rooms[key] = min(rooms.get(key, room), room)


def _credit_type(alert: AlertRecord) -> str:
    return alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID


def valid_until(state: CustomerState, now_us: int) -> int | None:
    """The first instant past which the measures may move without usage: a time-driven instant
    of its alerts, the end of a period being billed, a contract starting or ending."""
    instants = [state.wakeup_us] if state.wakeup_us is not None else []
    instants += [inv.end_us for inv in state.invoices if inv.status != FINALIZED and inv.end_us > now_us]
    for contract in state.contracts:
        instants += [
            t for t in (contract.starting_at_us, contract.ending_before_us) if t is not None and t > now_us
        ]
    return min(instants, default=None)


def _decoded(body: str) -> Headroom | None:
    try:
        return Headroom.decoded(body)
    except (KeyError, ValueError, TypeError, msgspec.DecodeError):
        return None  # written by another version of meterline: the customer is measured in full


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
        # Where loading the stored headrooms of the partitions held has got to (customer ids in
        # order; None: done), so that their customers' first events after a start or a take-over
        # cost no read: a customer otherwise pays one on its first touch (`load_missing`).
        self._warm_after: str | None = ""
        self.warm_slice = WARM_SLICE  # 0: load on first touch only
        self.absorbed = 0  # customer-batches that needed no measurement (for benchmarks)
        # The customers the last `absorb` left near a threshold (`Headroom.near`).
        self.near: list[str] = []
        # Customers whose stored headroom is not to be trusted (usage of theirs not yet merged
        # into the usage tables, which the stored one's check reads): set before each batch.
        self.unsettled: Container[str] = ()

    def begin(self, catalog_version: int, partitions: object) -> None:
        """Call at the start of each batch: a catalog or partitions different from the last
        batch's drop every headroom in memory (stored ones of another catalog are never read)."""
        if (catalog_version, partitions) != (self._catalog_version, self._partitions):
            self._rooms.clear()
            self._catalog_version, self._partitions = catalog_version, partitions
            self._warm_after = ""
        self._computed, self._dropped = {}, set()

    @property
    def warming(self) -> bool:
        """Stored headrooms of the partitions held are still being loaded (`warm`)."""
        return self.capacity > 0 and self.warm_slice > 0 and self._warm_after is not None

    def warm(self, conn: Connection) -> bool:
        """Load the next `warm_slice` stored headrooms that still hold, of customers of the partitions
        held, without displacing any in memory (they go in as the least recently touched).
        Call after `begin` and before the batch folds its usage. Returns whether more remain."""
        if not self.warming or self._catalog_version is None:
            return False
        assert self._warm_after is not None
        partitions = self._partitions if isinstance(self._partitions, frozenset) else None
        found, self._warm_after = stored.holding_after(
            conn, self._warm_after, self.warm_slice, self._catalog_version, partitions
        )
        for customer_id, body in found.items():
            if len(self._rooms) >= self.capacity:
                self._warm_after = None  # full: the rest load on their first touch
                break
            if customer_id in self.unsettled:
                continue
            room = _decoded(body) if customer_id not in self._rooms else None
            if room is not None:
                self._rooms[customer_id] = room
                self._rooms.move_to_end(customer_id, last=False)
        return self.warming

    def load_missing(self, conn: Connection, customer_ids: Iterable[str]) -> None:
        """Read the stored headrooms that still hold of these customers not in memory. Call
        before the batch folds its usage (which would make them not hold any more)."""
        if self.capacity <= 0 or self._catalog_version is None:
            return
        rooms = self._rooms
        unsettled = self.unsettled
        missing = [c for c in customer_ids if c not in rooms and c not in unsettled]
        if missing:
            missing = sorted(set(missing))
            for customer_id, body in stored.still_holding(conn, missing, self._catalog_version).items():
                room = _decoded(body)
                if room is not None:
                    self._remember(customer_id, room)

    def absorb(
        self, customer_ids: Iterable[str], movements: Mapping[tuple[str, str], Movement], now_us: int
    ) -> set[str]:
        """The customers whose usage this batch cannot move any alert: nothing more to do for them."""
        first: dict[str, tuple[str, Movement]] = {}  # the movement of each customer's first metric
        several: dict[str, list[tuple[str, Movement]]] = {}  # of customers that moved more than one
        for (customer_id, metric_id), movement in movements.items():
            if customer_id not in first:
                first[customer_id] = (metric_id, movement)
            else:
                several.setdefault(customer_id, [first[customer_id]]).append((metric_id, movement))
        # What each movement moves spend by, worked out once per bounds (shared by the customers of
        # a rate card without overrides) and movement: spread traffic repeats a few of them.
        # (The bounds are kept with it, so that their id names them for the whole loop.)
        spends: dict[tuple[int, str, Decimal, Decimal, int], tuple[SpendBounds, Spends]] = {}
        rooms = self._rooms
        absorbed: set[str] = set()
        near: list[str] = []
        for customer_id in customer_ids:
            room = rooms.get(customer_id)
            if room is None:
                continue
            one = first.get(customer_id)
            if one is None or customer_id in several:
                taken = room.absorb(several.get(customer_id, ()), now_us)
            else:
                metric_id, m = one
                key = (id(room.bounds), metric_id, m.added, m.removed, m.events)
                found = spends.get(key)
                if found is None:
                    found = spends[key] = (room.bounds, spend_moves(room.bounds, metric_id, m))
                taken = room.absorb_one(metric_id, m, found[1], now_us)
            if taken:
                rooms.move_to_end(customer_id)
                absorbed.add(customer_id)
                if room.near:
                    near.append(customer_id)
            else:
                del rooms[customer_id]  # measured in full now, which computes a new one
        self.absorbed += len(absorbed)
        self.near = near
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
        self._warm_after = ""

    def _remember(self, customer_id: str, headroom: Headroom) -> None:
        self._rooms[customer_id] = headroom
        self._rooms.move_to_end(customer_id)
        while len(self._rooms) > self.capacity:
            self._rooms.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._rooms
