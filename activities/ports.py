"""Ports: the outside systems Steward talks to, as small Protocols.

Activities depend on these, never on a concrete provider. The simulated
implementations (activities/simulated.py) back the embedded stack and the
tests; a real adapter (Adyen, Stripe, a 3PL's API, an email service) plugs in
through the same Protocol in the composition root.

Error contract, shared by every port so activities map errors one way:
- `TransientPortError` and subclasses: the call may succeed if repeated with
  the same idempotency key (timeouts, 5xx, rate limits). Activities let them
  propagate so Temporal retries with backoff.
- `RefusedError` and subclasses: the outside system said no for a business
  reason; repeating cannot help. Activities turn them into non-retryable
  ApplicationErrors with a `type` workflows can branch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

from domain.campaign import CatalogueEntry
from domain.orders import Address
from domain.payments import PaymentOperationInput, PaymentOperationKind
from domain.warehouse import ReleaseItem


class PortError(Exception):
    """Anything an outside system reports."""


class TransientPortError(PortError):
    """Retry with the same idempotency key."""


class PortTimeoutError(TransientPortError):
    """No answer in time. The effect may or may not have happened: only the
    idempotency key makes the retry safe."""


class PortUnavailableError(TransientPortError):
    """5xx or connection refused: nothing happened."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


class RateLimitedError(TransientPortError):
    """HTTP 429: nothing happened; try again after `retry_after`."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RefusedError(PortError):
    """A business refusal; `code` is the outside system's reason, for the audit trail."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class PaymentRefusedError(RefusedError):
    """E.g. capture above the authorised amount, expired or voided authorisation,
    refund above the captured amount, unknown authorisation."""


class ReleaseRejectedError(RefusedError):
    """The warehouse will not release the order (unknown SKU, empty order...)."""


class NotificationRejectedError(RefusedError):
    """The address bounces or is suppressed."""


# -- payment provider -----------------------------------------------------------


class PaymentProvider(Protocol):
    """Capture, void and refund an authorisation obtained upstream (at checkout).

    Each call carries an idempotency key; the provider performs the effect at
    most once per key and answers a repeat with the first result. Every method
    returns the provider's reference for the operation.
    """

    name: str

    async def capture(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str: ...

    async def void(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str: ...

    async def refund(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str: ...


@runtime_checkable
class NotifiedPaymentProvider(PaymentProvider, Protocol):
    """A provider that only acknowledges a capture, void or refund; the outcome
    arrives later in a notification (Adyen's modifications).

    After the call returned the modification's reference, the payment
    activity calls `await_outcome`: it returns the reference when the outcome
    is already known and a success, raises PaymentRefusedError when it is a
    refusal, and otherwise hands the activity over to asynchronous completion
    (`temporalio.activity.raise_complete_async()`): the notification completes
    it.
    """

    async def await_outcome(
        self, *, kind: PaymentOperationKind, operation: PaymentOperationInput, reference: str
    ) -> str: ...


class AuthorisationMirror(Protocol):
    """Simulation only: tell the simulated provider about an authorisation the
    (simulated) checkout obtained. See `ScoringActivities` for why."""

    async def register_authorisation(
        self,
        *,
        authorisation_ref: str,
        amount_minor: int,
        currency: str,
        authorised_at: datetime,
        expires_at: datetime,
    ) -> None: ...


# -- warehouse ------------------------------------------------------------------


@dataclass(frozen=True)
class WarehouseRelease:
    release_id: str
    warehouse: str


class Warehouse(Protocol):
    """The 3PL/WMS: release an order for picking once payment is captured.
    Idempotent by key: a repeat returns the first release."""

    name: str

    async def release_order(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        market: str,
        destination_country: str,
        items: list[ReleaseItem],
    ) -> WarehouseRelease: ...


class PackingStartedError(Exception):
    """The warehouse has started packing: the label is printed, too late for a new address."""


class FulfilmentWarehouse(Protocol):
    """The WMS during fulfilment (issue 16): holds by handle (no picking while
    one is active), the shipping address, cancellation, replacement units.
    Every call is idempotent by its arguments (a handle set twice is set)."""

    name: str

    async def set_hold(self, *, order_id: str, handle: str, reason: str, active: bool) -> None: ...

    async def set_address(self, *, order_id: str, address_ref: str) -> None:
        """Raises PackingStartedError from packing on."""
        ...

    async def cancel(self, *, order_id: str, reason: str) -> None: ...

    async def allocate_replacement(self, *, order_id: str, attempt: int, skus: list[str]) -> bool:
        """False: no unit in stock."""
        ...


class CarrierIntercepts(Protocol):
    """Asking the carrier to redirect a packed or collected parcel (issue 16)."""

    name: str

    async def intercept(
        self, *, idempotency_key: str, order_id: str, new_country: str, old_country: str
    ) -> tuple[str, int, str, str]:
        """(outcome "redirected" | "refused", fee in minor units, reference, reason)."""
        ...


# -- notifications --------------------------------------------------------------


class Notifier(Protocol):
    """Customer messages (email). Idempotent by message id: a repeat is not sent
    again. Returns whether the message was accepted for delivery."""

    name: str

    async def send(
        self,
        *,
        message_id: str,
        order_id: str,
        recipient_email: str,
        template: str,
        locale: str,
    ) -> bool: ...


# -- returns: carrier labels and warehouse dispositions (workflows/returns.py) --


@dataclass(frozen=True)
class ReturnLabel:
    carrier: str
    tracking_number: str
    label_url: str
    expires_at: datetime


class ReturnCarrier(Protocol):
    """The carrier that collects returns: one prepaid label per return.
    Idempotent by key: a repeat returns the first label."""

    name: str

    async def create_return_label(
        self,
        *,
        idempotency_key: str,
        rma_id: str,
        market: str,
        parcel_units: int,
        expires_at: datetime,
    ) -> ReturnLabel: ...


@dataclass(frozen=True)
class DispositionRecord:
    reference: str
    warehouse: str


class ReturnsWarehouse(Protocol):
    """The 3PL's returns desk: what to do with a returned item, and whether a
    replacement is in stock. Dispositions are idempotent by key."""

    name: str

    async def record_disposition(
        self,
        *,
        idempotency_key: str,
        rma_id: str,
        order_id: str,
        market: str,
        disposition: str,
        items: list[tuple[str, int]],
    ) -> DispositionRecord: ...

    async def missing_stock(self, *, market: str, items: list[tuple[str, int]]) -> list[str]:
        """SKUs that cannot be supplied in the wanted quantity; empty when all can."""
        ...


# -- carrier and parcel returns (failed deliveries, claims) ---------------------


class ClaimRefusedError(RefusedError):
    """The carrier will not take the claim (filed too late, not insured...)."""


@dataclass(frozen=True)
class BookedShipment:
    tracking_number: str
    expected_delivery_at: datetime


class Carrier(Protocol):
    """The carrier (or a shipping aggregator such as EasyPost): labels,
    investigations and claims. Every call is idempotent by key: a repeat
    returns the first reference and books, opens or files nothing twice."""

    name: str

    async def book_shipment(
        self,
        *,
        idempotency_key: str,
        carrier: str,
        order_id: str,
        destination_country: str,
        service_level: str,
        pickup_point_id: str | None,
        destination: Address | None = None,
        earliest_delivery: date | None = None,
    ) -> BookedShipment:
        """`destination`: the full address to ship to when it is not the one
        on the order's shipment record (a reship to a new address).
        `earliest_delivery`: the customer's preferred date; the parcel must
        not arrive before it. A refusal raises RefusedError."""
        ...

    async def open_investigation(
        self, *, idempotency_key: str, carrier: str, tracking_number: str, claim_type: str
    ) -> str: ...

    async def file_claim(
        self,
        *,
        idempotency_key: str,
        carrier: str,
        tracking_number: str,
        claim_type: str,
        amount_minor: int,
        currency: str,
        documents: list[str],
    ) -> str: ...

    async def chase_claim(
        self, *, idempotency_key: str, carrier: str, claim_reference: str
    ) -> None: ...


class ParcelReturnsDesk(Protocol):
    """The warehouse's inbound desk for parcels the carrier brought back:
    QC grade and restock. Idempotent by key."""

    name: str

    async def inspect(
        self, *, idempotency_key: str, shipment_id: str, order_id: str
    ) -> tuple[str, str]:
        """(grade, notes); grade is "resellable" or "damaged"."""
        ...

    async def restock(self, *, idempotency_key: str, shipment_id: str, skus: list[str]) -> str:
        """The stock location the items went back to."""
        ...


# -- employee special sales: stock at a site and the catalogue (issue 18) -------


class SaleStock(Protocol):
    """Units available per SKU at a warehouse site, before a sale allocates them."""

    name: str

    async def available(self, *, site: str, skus: list[str]) -> dict[str, int]: ...


class Catalogue(Protocol):
    """The product catalogue: what a SKU on sale shows (description, visuals, category)."""

    name: str

    async def entries(self, *, skus: list[str]) -> dict[str, CatalogueEntry]: ...
