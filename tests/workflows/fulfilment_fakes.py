"""The fulfilment's outside world, faked for the time-skipping tests: the
warehouse's holds (a picking it refuses while a hold is active), the address
store and rescoring, the carrier intercept, shipment booking, replacement
units, customer messages. Part of tests/workflows/harness.FakeWorld
(`world.fulfilment`); knobs as keywords of the `world` marker."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.fulfilment import relay_to_order
from domain.fulfilment import (
    ADDRESS_UNAVAILABLE,
    ALLOCATE_REPLACEMENT_UNIT,
    APPLY_ADDRESS_CHANGE,
    BOOK_FULFILMENT_SHIPMENT,
    CANCEL_WAREHOUSE_ORDER,
    NOTIFY_FULFILMENT_CUSTOMER,
    PACKING_STARTED,
    RELAY_FRAUD_WARNING,
    REQUEST_CARRIER_INTERCEPT,
    SET_WAREHOUSE_HOLD,
    ApplyAddressInput,
    ApplyAddressResult,
    BookShipmentInput,
    BookShipmentResult,
    CancelWarehouseInput,
    InterceptInput,
    InterceptOutcome,
    InterceptResult,
    NotifyFulfilmentInput,
    RelayFraudWarningInput,
    RelayFraudWarningResult,
    ReplacementInput,
    ReplacementResult,
    WarehouseHoldInput,
    address_fingerprint,
)
from domain.notifications import NotifyCustomerResult
from domain.orders import Address


@dataclass
class FakeFulfilment:
    # The warehouse started packing before it took the new address (once).
    packing_races_address: bool = False
    # The carrier cannot intercept the parcel.
    refuse_intercept: bool = False
    # The new address scores high on the risk rules.
    rescore_high: bool = False
    # No replacement unit in stock after a failed QC.
    no_replacement: bool = False
    # The relay does what the real activity does (activities/fulfilment.py
    # relay_to_order) against the test server: signals the fulfilment, or
    # cancels the order's review when an accepted warning finds none.
    relay_for_real: bool = False

    holds: dict[str, set[str]] = field(default_factory=dict, init=False)
    hold_calls: list[WarehouseHoldInput] = field(default_factory=list, init=False)
    addresses: list[ApplyAddressInput] = field(default_factory=list, init=False)
    # The addresses the edges kept, by subject id (store/fulfilment.put_edge_address
    # in production): a test puts one here and sends its id.
    edge_addresses: dict[str, Address] = field(default_factory=dict, init=False)
    # The address each applied change resolved to (the value, whichever the shape).
    applied_addresses: list[Address] = field(default_factory=list, init=False)
    warehouse_addresses: list[str] = field(default_factory=list, init=False)
    intercepts: list[InterceptInput] = field(default_factory=list, init=False)
    bookings: list[BookShipmentInput] = field(default_factory=list, init=False)
    cancels: list[CancelWarehouseInput] = field(default_factory=list, init=False)
    replacements: list[ReplacementInput] = field(default_factory=list, init=False)
    messages: list[NotifyFulfilmentInput] = field(default_factory=list, init=False)
    relayed: list[RelayFraudWarningInput] = field(default_factory=list, init=False)
    relay_attempts: int = field(default=0, init=False)
    picks_refused: int = field(default=0, init=False)

    def can_pick(self, order_id: str) -> bool:
        """The simulated warehouse's rule: no picking while a hold is active."""
        if self.holds.get(order_id):
            self.picks_refused += 1
            return False
        return True

    @activity.defn(name=SET_WAREHOUSE_HOLD)
    async def set_warehouse_hold(self, input: WarehouseHoldInput) -> None:
        self.hold_calls.append(input)
        active = self.holds.setdefault(input.order_id, set())
        if input.active:
            active.add(input.handle)
        else:
            active.discard(input.handle)

    @activity.defn(name=APPLY_ADDRESS_CHANGE)
    async def apply_address_change(self, input: ApplyAddressInput) -> ApplyAddressResult:
        if input.send_to_warehouse and self.packing_races_address:
            self.packing_races_address = False
            raise ApplicationError("packing started", type=PACKING_STARTED, non_retryable=True)
        rescore = input.rescore
        if input.address_subject_id is not None:
            # Issue 21's shape: the edge kept the address (`edge_addresses`).
            address = self.edge_addresses.get(input.address_subject_id)
            if address is None:
                raise ApplicationError(
                    f"address_subject_id: unknown subject {input.address_subject_id}",
                    type=ADDRESS_UNAVAILABLE,
                    non_retryable=True,
                )
            rescore = rescore or address.country != input.destination_country
            ref = input.address_subject_id
        else:
            assert input.address is not None
            address = input.address
            ref = f"subj_{input.order_id}_{input.change_no}"
        self.addresses.append(input)
        self.applied_addresses.append(address)
        if input.send_to_warehouse:
            self.warehouse_addresses.append(ref)
        high = rescore and self.rescore_high
        return ApplyAddressResult(
            address_ref=ref,
            fingerprint=address_fingerprint(address),
            country=address.country,
            rescored=rescore if input.address_subject_id is not None else None,
            risk_score=(90 if high else 10) if rescore else None,
            risk_band=("high" if high else "low") if rescore else None,
            risk_reasons=["high_risk_destination"] if high else [],
            warehouse_updated=input.send_to_warehouse,
        )

    @activity.defn(name=REQUEST_CARRIER_INTERCEPT)
    async def request_carrier_intercept(self, input: InterceptInput) -> InterceptResult:
        self.intercepts.append(input)
        if self.refuse_intercept:
            return InterceptResult(
                outcome=InterceptOutcome.REFUSED, reason="parcel already sorted for delivery"
            )
        return InterceptResult(
            outcome=InterceptOutcome.REDIRECTED,
            fee_minor=1500,
            currency="EUR",
            reference=f"INT-{input.order_id}-{input.change_no}",
        )

    @activity.defn(name=BOOK_FULFILMENT_SHIPMENT)
    async def book_fulfilment_shipment(self, input: BookShipmentInput) -> BookShipmentResult:
        self.bookings.append(input)
        return BookShipmentResult(shipment_id=f"SHP-{input.order_id}", registered=True)

    @activity.defn(name=CANCEL_WAREHOUSE_ORDER)
    async def cancel_warehouse_order(self, input: CancelWarehouseInput) -> None:
        self.cancels.append(input)

    @activity.defn(name=ALLOCATE_REPLACEMENT_UNIT)
    async def allocate_replacement_unit(self, input: ReplacementInput) -> ReplacementResult:
        self.replacements.append(input)
        if self.no_replacement:
            return ReplacementResult(allocated=False, detail="no unit in stock")
        return ReplacementResult(allocated=True, detail=f"unit {input.attempt} allocated")

    @activity.defn(name=NOTIFY_FULFILMENT_CUSTOMER)
    async def notify_fulfilment_customer(
        self, input: NotifyFulfilmentInput
    ) -> NotifyCustomerResult:
        self.messages.append(input)
        return NotifyCustomerResult(message_id=input.message_id, delivered=True)

    @activity.defn(name=RELAY_FRAUD_WARNING)
    async def relay_fraud_warning(self, input: RelayFraudWarningInput) -> RelayFraudWarningResult:
        self.relay_attempts += 1
        delivered = await relay_to_order(activity.client(), input) if self.relay_for_real else True
        self.relayed.append(input)
        return RelayFraudWarningResult(delivered=delivered)
