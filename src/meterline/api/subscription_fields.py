"""Request fields of subscriptions: contracts/create `subscriptions`, and v2 contracts/edit
`add_subscriptions` and `update_subscriptions` (the SDK's shapes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meterline.api.catalog_fields import FiniteAmount, HourInstant, NonNegativeAmount
from meterline.api.contract_fields import MAX_ITEMS, Name, NonEmpty
from meterline.api.routes.common import CustomFields, StrictModel
from meterline.domain.errors import InvalidInput
from meterline.domain.subscriptions import ON_USAGE_INVOICE, ProrationRounding, QuantityChange, SeatChange
from meterline.services.subscriptions import SubscriptionUpdate
from meterline.store.subscriptions import NewSubscription

Frequency = Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY"]
# Places of the stored amount a prorated charge is rounded to (negative: tens, hundreds, ...).
PlacesBound = Field(ge=-12, le=12)


class ProrationRoundingIn(StrictModel):
    decimal_places: int = PlacesBound
    rounding_method: Literal["HALF_UP", "FLOOR", "CEILING"]

    def rounding(self) -> ProrationRounding:
        return ProrationRounding(self.decimal_places, self.rounding_method)


class ProrationIn(StrictModel):
    invoice_behavior: Literal["BILL_IMMEDIATELY", "BILL_ON_NEXT_COLLECTION_DATE"] = (
        "BILL_ON_NEXT_COLLECTION_DATE"
    )
    is_prorated: bool = True
    rounding: ProrationRoundingIn | None = None


class SubscriptionRateIn(StrictModel):
    billing_frequency: Frequency
    product_id: NonEmpty


class SeatConfigIn(StrictModel):
    seat_group_key: NonEmpty
    initial_seat_ids: list[NonEmpty] = Field(max_length=MAX_ITEMS)
    initial_unassigned_seats: int = Field(default=0, ge=0)


class BillingCycleConfigIn(StrictModel):
    """The subscription's own billing cycle: its anchor (default: the contract's usage invoices'),
    and whether its charges go on the usage invoices or on SCHEDULED invoices of their own."""

    anchor_date: HourInstant | None = None
    invoice_placement: Literal["ON_USAGE_INVOICE", "ON_SCHEDULED_INVOICE"] = "ON_USAGE_INVOICE"


class SubscriptionIn(StrictModel):
    collection_schedule: Literal["ADVANCE", "ARREARS"]
    proration: ProrationIn
    subscription_rate: SubscriptionRateIn
    initial_quantity: NonNegativeAmount | None = None
    starting_at: HourInstant | None = None
    ending_before: HourInstant | None = None
    name: Name | None = None
    description: str | None = Field(default=None, max_length=1000)
    custom_fields: CustomFields = Field(default_factory=dict)
    quantity_management_mode: Literal["QUANTITY_ONLY", "SEAT_BASED"] = "QUANTITY_ONLY"
    # Names the subscription for recurring commits and credits of the same request.
    temporary_id: NonEmpty | None = None
    seat_config: SeatConfigIn | None = None
    billing_cycle_config: BillingCycleConfigIn | None = None

    def new(self, path: str) -> NewSubscription:
        seats = self._seats(path)
        if seats is None and self.initial_quantity is None:
            raise InvalidInput(f"{path}.initial_quantity: is required for QUANTITY_ONLY subscriptions")
        return NewSubscription(
            product_id=self.subscription_rate.product_id,
            billing_frequency=self.subscription_rate.billing_frequency,
            collection_schedule=self.collection_schedule,
            invoice_behavior=self.proration.invoice_behavior,
            is_prorated=self.proration.is_prorated,
            initial_quantity=self.initial_quantity,
            starting_at_us=self.starting_at,
            ending_before_us=self.ending_before,
            rounding=None if self.proration.rounding is None else self.proration.rounding.rounding(),
            name=self.name,
            description=self.description,
            custom_fields=self.custom_fields,
            seat_group_key=None if seats is None else seats.seat_group_key,
            initial_seat_ids=() if seats is None else tuple(dict.fromkeys(seats.initial_seat_ids)),
            initial_unassigned=0 if seats is None else seats.initial_unassigned_seats,
            temporary_id=self.temporary_id,
            anchor_us=None if self.billing_cycle_config is None else self.billing_cycle_config.anchor_date,
            invoice_placement=ON_USAGE_INVOICE
            if self.billing_cycle_config is None
            else self.billing_cycle_config.invoice_placement,
        )

    def _seats(self, path: str) -> SeatConfigIn | None:
        """SEAT_BASED: its quantity is its seats (assigned and unassigned), set by `seat_config`."""
        if self.quantity_management_mode == "QUANTITY_ONLY":
            if self.seat_config is not None:
                raise InvalidInput(f"{path}.seat_config: only SEAT_BASED subscriptions have seats")
            return None
        if self.seat_config is None:
            raise InvalidInput(f"{path}.seat_config: is required for SEAT_BASED subscriptions")
        if self.initial_quantity is not None:
            raise InvalidInput(
                f"{path}.initial_quantity: a SEAT_BASED subscription's quantity is its seats; omit it"
            )
        return self.seat_config


class QuantityUpdateIn(StrictModel):
    starting_at: HourInstant
    quantity: NonNegativeAmount | None = None
    quantity_delta: FiniteAmount | None = None

    def change(self, path: str) -> QuantityChange:
        if (self.quantity is None) == (self.quantity_delta is None):
            raise InvalidInput(f"{path}: give exactly one of quantity and quantity_delta")
        if self.quantity_delta is not None and self.quantity_delta == 0:
            raise InvalidInput(f"{path}.quantity_delta: must not be zero")
        return QuantityChange(self.starting_at, quantity=self.quantity, delta=self.quantity_delta)


class SeatIdsAt(StrictModel):
    seat_ids: list[NonEmpty] = Field(min_length=1, max_length=MAX_ITEMS)
    starting_at: HourInstant


class UnassignedSeatsAt(StrictModel):
    quantity: int = Field(gt=0)
    starting_at: HourInstant


class SeatUpdatesIn(StrictModel):
    """`seat_updates`: applied at each instant in this order, each list in its own order."""

    add_seat_ids: list[SeatIdsAt] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_unassigned_seats: list[UnassignedSeatsAt] = Field(default_factory=list, max_length=MAX_ITEMS)
    remove_seat_ids: list[SeatIdsAt] = Field(default_factory=list, max_length=MAX_ITEMS)
    remove_unassigned_seats: list[UnassignedSeatsAt] = Field(default_factory=list, max_length=MAX_ITEMS)

    def changes(self) -> tuple[tuple[str, SeatChange], ...]:
        """(field path within seat_updates, change) of every update."""
        found = [
            *(
                (f"add_seat_ids.{i}", SeatChange(u.starting_at, add_seat_ids=tuple(u.seat_ids)))
                for i, u in enumerate(self.add_seat_ids)
            ),
            *(
                (f"add_unassigned_seats.{i}", SeatChange(u.starting_at, add_unassigned=u.quantity))
                for i, u in enumerate(self.add_unassigned_seats)
            ),
            *(
                (f"remove_seat_ids.{i}", SeatChange(u.starting_at, remove_seat_ids=tuple(u.seat_ids)))
                for i, u in enumerate(self.remove_seat_ids)
            ),
            *(
                (f"remove_unassigned_seats.{i}", SeatChange(u.starting_at, remove_unassigned=u.quantity))
                for i, u in enumerate(self.remove_unassigned_seats)
            ),
        ]
        return tuple((f"seat_updates.{path}", change) for path, change in found)


class SeatGroupKeyIn(StrictModel):
    seat_group_key: NonEmpty


class QuantityManagementModeUpdateIn(StrictModel):
    """From QUANTITY_ONLY to SEAT_BASED (the only switch Metronome has)."""

    quantity_management_mode: Literal["SEAT_BASED"]
    seat_config: SeatGroupKeyIn


class SubscriptionUpdateIn(StrictModel):
    subscription_id: str
    ending_before: HourInstant | None = None
    name: Name | None = None
    proration_rounding: ProrationRoundingIn | None = None
    quantity_updates: list[QuantityUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    seat_updates: SeatUpdatesIn | None = None
    quantity_management_mode_update: QuantityManagementModeUpdateIn | None = None

    def update(self, path: str) -> SubscriptionUpdate:
        given = self.model_fields_set
        return SubscriptionUpdate(
            subscription_id=self.subscription_id,
            changes=tuple(
                q.change(f"{path}.quantity_updates.{i}") for i, q in enumerate(self.quantity_updates)
            ),
            seat_changes=() if self.seat_updates is None else self.seat_updates.changes(),
            set_ending_before="ending_before" in given,
            ending_before_us=self.ending_before,
            name=self.name,
            set_rounding="proration_rounding" in given,
            rounding=None if self.proration_rounding is None else self.proration_rounding.rounding(),
            seat_group_key=None
            if self.quantity_management_mode_update is None
            else self.quantity_management_mode_update.seat_config.seat_group_key,
        )
