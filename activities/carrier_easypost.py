"""EasyPost behind the carrier ports, on EasyPost's official Python library
(easypost 10, API v2): reship labels (Carrier.book_shipment), return labels
(ReturnCarrier.create_return_label), trackers for the parcels Steward follows
(Carrier.open_investigation) and claims for lost or damaged parcels
(Carrier.file_claim, chase_claim).

Labels: `POST /v2/shipments` (to the customer from the warehouse's EasyPost
address, one parcel, `is_return` for a return label - EasyPost swaps the
addresses on the label), then `POST /v2/shipments/{id}/buy` with the rate the
service level selects among the carrier's rates: the cheapest for standard,
the fastest for express, the cheapest with `delivery_confirmation: SIGNATURE`
for signature_required. The customer's name, phone and address come from the
shipment Steward recorded for the order (the reship's new address when there
is one); they never travel in the activity's input.

EasyPost's API takes no idempotency key, so Steward keeps its own
(store/carrier_bookings.py): the row is written before the call, the
shipment id as soon as EasyPost created it, the result once bought. A retry
answers with the recorded result, or retrieves the shipment and buys it only
if it is not bought yet: a label is paid for at most once. A claim whose
filing was interrupted is looked up among EasyPost's claims before filing again.

Trackers: EasyPost follows every parcel it sold a label for; for a parcel
bought elsewhere, opening an investigation creates a tracker (`POST
/v2/trackers`) so its scans reach the EasyPost webhook, and the tracker id
is the investigation's reference (EasyPost has no investigation API).

Claims (`POST /v2/claims`) are EasyPost's insurance claims: only for parcels
insured through EasyPost, in USD, damage claims with a supporting document
(Steward's claim statement, a PDF). Everything else is refused by EasyPost
and arrives as ClaimRefusedError with its code.

Errors: 4xx (bad address, no rate, uninsured parcel...) are refusals with
EasyPost's code; 429 RateLimitedError with Retry-After; 5xx, timeouts,
connection failures and credentials EasyPost does not accept are transient.
The library is synchronous: each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import easypost
import structlog
from easypost import errors as ep

from activities.dispute_documents import render_pdf
from activities.disputes_stripe import retry_after
from activities.ports import (
    BookedShipment,
    Carrier,
    ClaimRefusedError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
    RefusedError,
    ReturnLabel,
    TransientPortError,
)
from domain.orders import Address
from store import carrier_bookings
from store import deliveries as delivery_store

PROVIDER = "easypost"
log = structlog.get_logger(__name__)
T = TypeVar("T")

# Steward's carrier names -> EasyPost's (trackers need EasyPost's spelling).
EASYPOST_CARRIERS = {
    "ups": "UPS",
    "fedex": "FedEx",
    "dhl": "DHLExpress",
    "usps": "USPS",
    "colissimo": "Colissimo",
}
# How long an attempt may still be talking to EasyPost: the activity attempt
# (30 s) plus calls that outlive it in their thread (8 s each, up to three).
ATTEMPT_LEASE = timedelta(seconds=60)
CLAIM_TYPES = {"lost": "loss", "damaged": "damage", "stolen": "theft"}
# When EasyPost gives no delivery estimate for the chosen rate.
DEFAULT_TRANSIT = {
    "standard": timedelta(days=3),
    "express": timedelta(days=1),
    "signature_required": timedelta(days=3),
}


def tracker_key(carrier: str, tracking_number: str, *, ours: str | None = None) -> str:
    """The booking key of a parcel's tracker, by Steward's carrier name."""
    return f"tracker:{(ours or carrier).lower()}:{tracking_number}"


class ShipmentRefusedError(RefusedError):
    """EasyPost will not book the label (address, no rate for the carrier...)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Parcel:
    length_in: float
    width_in: float
    height_in: float
    weight_oz: float

    @classmethod
    def parse(cls, dimensions_in: str, weight_oz: float) -> Parcel:
        """From "LxWxH" (inches) and the weight in ounces."""
        parts = [p.strip() for p in dimensions_in.lower().split("x")]
        if len(parts) != 3:
            raise ValueError(f"parcel dimensions {dimensions_in!r}: expected LxWxH in inches")
        length, width, height = (float(p) for p in parts)
        return cls(length, width, height, weight_oz)

    def for_units(self, units: int) -> dict[str, float]:
        return {
            "length": self.length_in,
            "width": self.width_in,
            "height": self.height_in,
            "weight": round(self.weight_oz * max(units, 1), 1),
        }


# A label is up to three calls (retrieve, create, buy) in one activity attempt
# of 30 s (workflows/case.py OUTSIDE_CALL_TIMEOUT): 8 s each at most.
def easypost_client(
    api_key: str, api_base: str = "", *, timeout_seconds: int = 8
) -> easypost.EasyPostClient:
    if api_base:
        return easypost.EasyPostClient(
            api_key, api_base=api_base.rstrip("/"), timeout=timeout_seconds
        )
    return easypost.EasyPostClient(api_key, timeout=timeout_seconds)


def _same_carrier(easypost_name: str, ours: str) -> bool:
    a = "".join(c for c in easypost_name.lower() if c.isalnum())
    b = "".join(c for c in ours.lower() if c.isalnum())
    return a == b or a.startswith(b)


def choose_rate(
    rates: list[Mapping[str, Any]], carrier: str, service_level: str
) -> Mapping[str, Any] | None:
    """The carrier's rate the service level asks for: the fastest for
    express (then the cheapest), the cheapest otherwise (then the fastest)."""
    mine = [r for r in rates if _same_carrier(str(r.get("carrier", "")), carrier)]
    if not mine:
        return None

    def days(rate: Mapping[str, Any]) -> int:
        value = rate.get("delivery_days") or rate.get("est_delivery_days")
        return int(value) if value else 99

    def price(rate: Mapping[str, Any]) -> float:
        return float(rate.get("rate") or "inf")

    if service_level == "express":
        return min(mine, key=lambda r: (days(r), price(r)))
    return min(mine, key=lambda r: (price(r), days(r)))


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _to_address(address: Address, name: str, phone: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "street1": address.line1,
        "city": address.city,
        "zip": address.postal_code,
        "country": address.country,
    }
    if address.line2:
        out["street2"] = address.line2
    if address.region:
        out["state"] = address.region
    if phone:
        out["phone"] = phone
    return out


class EasyPostCarrier:
    """Carrier and ReturnCarrier through EasyPost (see the module docstring)."""

    name = PROVIDER

    def __init__(
        self,
        client: easypost.EasyPostClient,
        pool: asyncpg.Pool,
        *,
        warehouse_address_id: str,
        parcel: Parcel,
        claim_email: str,
        return_carrier: str = "",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.pool = pool
        self.warehouse = {"id": warehouse_address_id}
        self.parcel = parcel
        self.claim_email = claim_email
        self.return_carrier = return_carrier
        self.clock = clock
        # The response headers of the last call in each thread: the library's
        # errors carry no headers, Retry-After included.
        self._last = threading.local()
        client.subscribe_to_response_hook(self._remember_headers)

    def _remember_headers(self, **kwargs: Any) -> None:
        self._last.headers = kwargs.get("headers")

    async def _call(
        self,
        what: str,
        refused: type[RefusedError],
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        def run() -> T:
            self._last.headers = None
            try:
                return fn(*args, **kwargs)
            except ep.EasyPostError as exc:
                raise self._port_error(exc, what, refused) from exc

        return await asyncio.to_thread(run)

    def _port_error(
        self, exc: ep.EasyPostError, what: str, refused: type[RefusedError]
    ) -> Exception:
        status = int(getattr(exc, "http_status", None) or 0)
        detail = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, ep.RateLimitError) or status == 429:
            return RateLimitedError(
                f"EasyPost rate limit on {what}", retry_after(getattr(self._last, "headers", None))
            )
        if isinstance(exc, (ep.TimeoutError, ep.GatewayTimeoutError)):
            return PortTimeoutError(f"EasyPost did not answer {what} in time")
        if isinstance(exc, (ep.UnauthorizedError, ep.ForbiddenError)):
            return PortUnavailableError(
                f"EasyPost refused the credentials for {what} (check STEWARD_EASYPOST_API_KEY): "
                f"{detail}",
                status,
            )
        if status >= 500 or status == 0:
            # 0: no answer at all (connection refused, DNS...), or a body that is not EasyPost's.
            return PortUnavailableError(f"EasyPost failed on {what}: {detail}", status or 503)
        code = getattr(exc, "code", None) or f"http_{status}"
        return refused(f"EasyPost refused {what}: {detail}", str(code))

    async def _take(self, idempotency_key: str, kind: str, what: str) -> carrier_bookings.Booking:
        """The booking's row, taken for this attempt. An earlier attempt whose
        activity timed out may still be waiting on EasyPost in its thread:
        until its lease is over this one is refused as transient (and
        retried), so no second label is bought and no second claim filed."""
        await carrier_bookings.start(
            self.pool, idempotency_key=idempotency_key, provider=PROVIDER, kind=kind
        )
        if not await carrier_bookings.claim_attempt(self.pool, idempotency_key, ATTEMPT_LEASE):
            booking = await carrier_bookings.get(self.pool, idempotency_key)
            if booking is not None and booking.result is not None:
                return booking
            raise PortUnavailableError(
                f"an earlier attempt at {what} may still be at EasyPost; retried after "
                f"{int(ATTEMPT_LEASE.total_seconds())} s",
                409,
            )
        booking = await carrier_bookings.get(self.pool, idempotency_key)
        assert booking is not None
        return booking

    @contextlib.asynccontextmanager
    async def _attempt(
        self, idempotency_key: str, kind: str, what: str
    ) -> AsyncIterator[carrier_bookings.Booking]:
        booking = await self._take(idempotency_key, kind, what)
        try:
            yield booking
        except Exception:
            # This attempt is over (EasyPost answered, even with an error): the
            # next one need not wait. A cancelled attempt (its activity timed
            # out) keeps the lease: its thread may still be at EasyPost.
            await carrier_bookings.release_attempt(self.pool, idempotency_key)
            raise

    # ------------------------------------------------------------ labels

    async def _recipient(self, order_id: str) -> tuple[Address, str, str | None]:
        shipments = await delivery_store.list_for_order(self.pool, order_id)
        if not shipments:
            raise ShipmentRefusedError(
                f"order {order_id} has no shipment on record to take the customer's address from",
                "no_address",
            )
        record = shipments[-1].record
        customer = record.order.customer
        return record.address, customer.full_name, customer.phone

    async def _buy_label(
        self,
        *,
        idempotency_key: str,
        kind: str,
        carrier: str,
        service_level: str,
        to_address: dict[str, Any],
        parcel_units: int,
        reference: str,
        is_return: bool = False,
        earliest_delivery: date | None = None,
    ) -> dict[str, Any]:
        booking = await carrier_bookings.get(self.pool, idempotency_key)
        if booking is not None and booking.result is not None:
            return booking.result
        what = f"the {kind.replace('_', ' ')} for {reference}"
        async with self._attempt(idempotency_key, kind, what) as booking:
            if booking.result is not None:
                return booking.result
            shipment: Any = None
            if booking.provider_ref:
                shipment = await self._call(
                    what, ShipmentRefusedError, self.client.shipment.retrieve, booking.provider_ref
                )
            if shipment is None:
                params: dict[str, Any] = {
                    "to_address": to_address,
                    "from_address": self.warehouse,
                    "parcel": self.parcel.for_units(parcel_units),
                    "reference": reference,
                }
                if is_return:
                    params["is_return"] = True
                options: dict[str, Any] = {}
                if service_level == "signature_required":
                    options["delivery_confirmation"] = "SIGNATURE"
                if earliest_delivery is not None:
                    # EasyPost's shipment option (an ISO date-time string): the
                    # customer's preferred day, not before.
                    options["delivery_min_datetime"] = f"{earliest_delivery.isoformat()}T00:00:00Z"
                if options:
                    params["options"] = options
                shipment = await self._call(
                    what, ShipmentRefusedError, self.client.shipment.create, **params
                )
                await carrier_bookings.set_ref(self.pool, idempotency_key, shipment.id)
            data = _as_dict(shipment)
            if not data.get("tracking_code"):
                rate = choose_rate(data.get("rates") or [], carrier, service_level)
                if rate is None:
                    offered = sorted({str(r.get("carrier")) for r in data.get("rates") or []})
                    raise ShipmentRefusedError(
                        f"EasyPost offers no {carrier} rate for {what} "
                        f"(rates from: {', '.join(offered) or 'none'}; "
                        f"messages: {data.get('messages') or []})",
                        "no_rate",
                    )
                shipment = await self._call(
                    what,
                    ShipmentRefusedError,
                    self.client.shipment.buy,
                    data["id"],
                    rate={"id": rate["id"]},
                )
                data = _as_dict(shipment)
            selected = data.get("selected_rate") or {}
            days = selected.get("delivery_days") or selected.get("est_delivery_days")
            transit = (
                timedelta(days=int(days))
                if days
                else DEFAULT_TRANSIT.get(service_level, DEFAULT_TRANSIT["standard"])
            )
            expected = self.clock() + transit
            if earliest_delivery is not None:
                day = earliest_delivery
                expected = max(expected, datetime(day.year, day.month, day.day, 9, tzinfo=UTC))
            label = data.get("postage_label") or {}
            result = {
                "shipment_id": data["id"],
                "tracking_number": data.get("tracking_code"),
                "label_url": label.get("label_pdf_url") or label.get("label_url") or "",
                "carrier": selected.get("carrier"),
                "service": selected.get("service"),
                "expected_delivery_at": expected.isoformat(),
            }
            await carrier_bookings.complete(self.pool, idempotency_key, data["id"], result)
            tracker = data.get("tracker") or {}
            if tracker.get("id") and data.get("tracking_code") and selected.get("carrier"):
                # EasyPost follows what it sold: the parcel needs no tracker of ours.
                key = tracker_key(
                    str(selected["carrier"]), str(data["tracking_code"]), ours=carrier
                )
                await carrier_bookings.start(
                    self.pool, idempotency_key=key, provider=PROVIDER, kind="tracker"
                )
                await carrier_bookings.complete(
                    self.pool, key, str(tracker["id"]), {"tracker_id": tracker["id"]}
                )
            booking = await carrier_bookings.get(self.pool, idempotency_key)
            return booking.result if booking is not None and booking.result else result

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
        if pickup_point_id:
            raise ShipmentRefusedError(
                f"EasyPost cannot address a parcel to pickup point {pickup_point_id}; "
                "book it to the customer's address instead",
                "pickup_point_unsupported",
            )
        address, name, phone = await self._recipient(order_id)
        result = await self._buy_label(
            idempotency_key=idempotency_key,
            kind="label",
            carrier=carrier,
            service_level=service_level,
            to_address=_to_address(destination or address, name, phone),
            parcel_units=1,
            reference=order_id,
            earliest_delivery=earliest_delivery,
        )
        return BookedShipment(
            tracking_number=str(result["tracking_number"]),
            expected_delivery_at=datetime.fromisoformat(result["expected_delivery_at"]),
        )

    async def create_return_label(
        self,
        *,
        idempotency_key: str,
        rma_id: str,
        market: str,
        parcel_units: int,
        expires_at: datetime,
    ) -> ReturnLabel:
        order_id = await self.pool.fetchval(
            "SELECT order_id FROM return_lines WHERE rma_id = $1 LIMIT 1", rma_id
        )
        if order_id is None:
            raise ShipmentRefusedError(f"return {rma_id} has no lines on record", "unknown_return")
        address, name, phone = await self._recipient(str(order_id))
        result = await self._buy_label(
            idempotency_key=idempotency_key,
            kind="return_label",
            carrier=self.return_carrier,
            service_level="standard",
            to_address=_to_address(address, name, phone),
            parcel_units=parcel_units,
            reference=rma_id,
            is_return=True,
        )
        return ReturnLabel(
            carrier=self.return_carrier,
            tracking_number=str(result["tracking_number"]),
            label_url=str(result["label_url"]),
            expires_at=expires_at,
        )

    # ------------------------------------------------- trackers and claims

    async def follow(self, *, carrier: str, tracking_number: str) -> str:
        """The parcel's EasyPost tracker, created once (its key is the parcel:
        whoever asks first creates it, everyone else gets its id)."""
        key = tracker_key(carrier, tracking_number)
        booking = await carrier_bookings.get(self.pool, key)
        if booking is not None and booking.result is not None:
            return str(booking.result["tracker_id"])
        await carrier_bookings.start(
            self.pool, idempotency_key=key, provider=PROVIDER, kind="tracker"
        )
        # EasyPost answers a tracker that already exists for the code with it.
        tracker = await self._call(
            f"following parcel {tracking_number}",
            ShipmentRefusedError,
            self.client.tracker.create,
            tracking_code=tracking_number,
            carrier=EASYPOST_CARRIERS.get(carrier.lower(), carrier),
        )
        await carrier_bookings.complete(
            self.pool, key, tracker.id, {"tracker_id": tracker.id, "status": tracker.status}
        )
        return str(tracker.id)

    async def open_investigation(
        self, *, idempotency_key: str, carrier: str, tracking_number: str, claim_type: str
    ) -> str:
        return await self.follow(carrier=carrier, tracking_number=tracking_number)

    async def follow_new_shipments(self, carriers: set[str], *, limit: int = 100) -> int:
        """Trackers for the parcels Steward follows that EasyPost does not
        follow yet (registered by the warehouse, labels bought elsewhere): the
        open shipments of `carriers` of the last 60 days without one. Run by
        the hourly carrier sweep; a parcel that fails is tried next hour."""
        rows = await self.pool.fetch(
            """
            SELECT s.carrier, s.tracking_number FROM shipments s
            WHERE lower(s.carrier) = ANY($1::text[])
              AND s.status NOT IN ('delivered', 'lost', 'damaged', 'returned_to_sender')
              AND s.created_at > now() - interval '60 days'
              AND NOT EXISTS (
                SELECT 1 FROM carrier_bookings b
                WHERE b.idempotency_key = 'tracker:' || lower(s.carrier) || ':' || s.tracking_number
                  AND b.result IS NOT NULL)
            ORDER BY s.created_at
            LIMIT $2
            """,
            sorted(c.lower() for c in carriers),
            limit,
        )
        followed = 0
        for row in rows:
            try:
                await self.follow(carrier=row["carrier"], tracking_number=row["tracking_number"])
            except RateLimitedError:
                break
            except (TransientPortError, RefusedError) as exc:
                log.warning(
                    "easypost_tracker_failed",
                    carrier=row["carrier"],
                    tracking_number=row["tracking_number"],
                    reason=str(exc),
                )
                continue
            followed += 1
        return followed

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
    ) -> str:
        booking = await carrier_bookings.get(self.pool, idempotency_key)
        if booking is not None and booking.result is not None:
            return str(booking.result["claim_id"])
        kind = CLAIM_TYPES.get(claim_type)
        if kind is None:
            raise ClaimRefusedError(f"EasyPost has no {claim_type} claim", "claim_type_unsupported")
        if currency.upper() != "USD":
            raise ClaimRefusedError(
                f"EasyPost insures and pays claims in USD; this parcel is valued in {currency}",
                "currency_unsupported",
            )
        what = f"the {claim_type} claim on {tracking_number}"
        interrupted = booking is not None
        async with self._attempt(idempotency_key, "claim", what) as booking:
            if booking.result is not None:
                return str(booking.result["claim_id"])
            if interrupted:
                # An earlier attempt may have filed it before its answer was lost:
                # look among EasyPost's claims before filing again.
                found = await self._existing_claim(what, tracking_number, kind)
                if found is not None:
                    await carrier_bookings.complete(
                        self.pool, idempotency_key, found, {"claim_id": found}
                    )
                    return found
            statement = render_pdf(
                [
                    f"Claim on parcel {tracking_number} ({carrier}): {claim_type}",
                    f"Value claimed: {amount_minor / 100:.2f} {currency.upper()}",
                    f"Steward reference: {idempotency_key}",
                    "",
                    "Documents on file at Steward:",
                    *(f"  - {d}" for d in documents),
                ]
            )
            claim = await self._call(
                what,
                ClaimRefusedError,
                self.client.claim.create,
                type=kind,
                tracking_code=tracking_number,
                amount=f"{amount_minor / 100:.2f}",
                description=f"{claim_type} parcel {tracking_number}; Steward {idempotency_key}",
                contact_email=self.claim_email,
                supporting_documentation_attachments=[base64.b64encode(statement).decode("ascii")],
            )
            await carrier_bookings.complete(
                self.pool, idempotency_key, claim.id, {"claim_id": claim.id}
            )
            return str(claim.id)

    async def _existing_claim(self, what: str, tracking_number: str, kind: str) -> str | None:
        page = await self._call(what, ClaimRefusedError, self.client.claim.all, page_size=100)
        for claim in _as_dict(page).get("claims") or []:
            data = _as_dict(claim)
            if data.get("tracking_code") == tracking_number and data.get("type") == kind:
                return str(data["id"])
        return None

    async def chase_claim(
        self, *, idempotency_key: str, carrier: str, claim_reference: str
    ) -> None:
        """EasyPost has no chase call: read the claim, so a refusal or an
        unknown claim surfaces here instead of at the outcome."""
        await self._call(
            f"claim {claim_reference}",
            ClaimRefusedError,
            self.client.claim.retrieve,
            claim_reference,
        )


class CarrierRouter:
    """The Carrier port by carrier name: EasyPost for the carriers configured
    for it, the default (the simulator) for the others."""

    def __init__(self, default: Carrier, by_carrier: Mapping[str, Carrier]) -> None:
        self.default = default
        self.by_carrier = {k.lower(): v for k, v in by_carrier.items()}
        self.name = default.name

    def _for(self, carrier: str) -> Carrier:
        return self.by_carrier.get(carrier.lower(), self.default)

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
        return await self._for(carrier).book_shipment(
            idempotency_key=idempotency_key,
            carrier=carrier,
            order_id=order_id,
            destination_country=destination_country,
            service_level=service_level,
            pickup_point_id=pickup_point_id,
            destination=destination,
            earliest_delivery=earliest_delivery,
        )

    async def open_investigation(
        self, *, idempotency_key: str, carrier: str, tracking_number: str, claim_type: str
    ) -> str:
        return await self._for(carrier).open_investigation(
            idempotency_key=idempotency_key,
            carrier=carrier,
            tracking_number=tracking_number,
            claim_type=claim_type,
        )

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
    ) -> str:
        return await self._for(carrier).file_claim(
            idempotency_key=idempotency_key,
            carrier=carrier,
            tracking_number=tracking_number,
            claim_type=claim_type,
            amount_minor=amount_minor,
            currency=currency,
            documents=documents,
        )

    async def chase_claim(
        self, *, idempotency_key: str, carrier: str, claim_reference: str
    ) -> None:
        await self._for(carrier).chase_claim(
            idempotency_key=idempotency_key, carrier=carrier, claim_reference=claim_reference
        )
