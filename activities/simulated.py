"""Simulated payment provider, warehouse and email service.

They behave like the real systems where it matters to Steward: state lives in
PostgreSQL (the sim_* tables, the provider's side of the world), idempotency
keys are honoured (same key, same result, no second effect), business rules
refuse what a provider would refuse, and calls can be slow or fail:

- `latency_ms`: each call sleeps about that long (±50 %).
- `failure_rate`: that share of calls fails with a random fault.
- `faults`: a scripted queue consumed one per call, ahead of the random ones,
  for tests: ["timeout_after_commit", "http_500", "http_429", "ok", ...].
- `control`: fault windows switched from outside the worker (`FaultControl`,
  a JSON file the chaos run in bench/chaos writes), by system name and time:
  a fault at a rate, a fixed latency (a spike past an activity's timeout), an
  answer held back after the effect, a 429's Retry-After.

Faults:
- http_500: fails before any effect (PortUnavailableError).
- http_429: fails before any effect with a retry-after (RateLimitedError).
- timeout_before_commit: no answer, nothing happened (PortTimeoutError).
- timeout_after_commit: the effect is committed, then no answer
  (PortTimeoutError) - the retry must find the operation, not repeat it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from activities.ports import (
    BookedShipment,
    ClaimRefusedError,
    DispositionRecord,
    NotificationRejectedError,
    PaymentRefusedError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
    ReleaseRejectedError,
    ReturnLabel,
    WarehouseRelease,
)
from domain.orders import Address
from domain.payments import PaymentOperationInput, PaymentOperationKind
from domain.risk_rules import IdentityKind, identity_hash
from domain.warehouse import ReleaseItem
from store import deliveries as delivery_store
from store import returns as returns_store
from store import simulated as sim


class Fault(StrEnum):
    OK = "ok"
    HTTP_500 = "http_500"
    HTTP_429 = "http_429"
    TIMEOUT_BEFORE_COMMIT = "timeout_before_commit"
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"


RANDOM_FAULTS: tuple[Fault, ...] = (
    Fault.HTTP_500,
    Fault.HTTP_429,
    Fault.TIMEOUT_BEFORE_COMMIT,
    Fault.TIMEOUT_AFTER_COMMIT,
)


log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- faults switched from outside the worker -----------------------------------

# FaultPlan names as workers/activities.py gives them; "*" in a window: all.
ALL_SYSTEMS = "*"


@dataclass(frozen=True)
class FaultWindow:
    """From `start` to `end` (Unix seconds), what calls to `systems` suffer."""

    start: float
    end: float
    systems: frozenset[str]
    fault: Fault | None = None
    # Share of the calls in the window that get `fault`.
    rate: float = 1.0
    # Every call takes exactly this long before any effect (no jitter: a spike
    # meant to outlast an activity's timeout must outlast it).
    latency_ms: int | None = None
    # Held back after the effect, before the answer: the provider has moved
    # the money, the caller does not know yet (a slow network on the way back).
    answer_delay_ms: int = 0
    retry_after_s: float | None = None
    # A named window's faults and latency are logged (`sim_fault_injected`),
    # so a run can count what it injected; an unnamed one's are not.
    label: str = ""

    def covers(self, system: str, now: float) -> bool:
        return self.start <= now < self.end and (
            system in self.systems or ALL_SYSTEMS in self.systems
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "systems": sorted(self.systems),
            "fault": self.fault.value if self.fault else None,
            "rate": self.rate,
            "latency_ms": self.latency_ms,
            "answer_delay_ms": self.answer_delay_ms,
            "retry_after_s": self.retry_after_s,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultWindow:
        rate = float(data.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault window rate {rate} is not between 0 and 1")
        fault = data.get("fault")
        latency = data.get("latency_ms")
        retry_after = data.get("retry_after_s")
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            systems=frozenset(str(s) for s in data["systems"]),
            fault=Fault(fault) if fault else None,
            rate=rate,
            latency_ms=None if latency is None else max(0, int(latency)),
            answer_delay_ms=max(0, int(data.get("answer_delay_ms", 0))),
            retry_after_s=None if retry_after is None else float(retry_after),
            label=str(data.get("label", "")),
        )


def write_fault_windows(path: Path, windows: Sequence[FaultWindow]) -> None:
    """Replace the windows a `FaultControl` on `path` reads (atomically: a
    worker never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"windows": [w.to_json() for w in windows]}))
    scratch.replace(path)


@dataclass(frozen=True)
class InFlightCall:
    """A payment call a worker process has made and not yet had answered."""

    pid: int
    operation: str
    idempotency_key: str
    since: float
    path: Path
    # The provider has moved the money; its answer is still on the way.
    effect_done: bool = False


@dataclass
class InFlightMarker:
    """The file announcing one call, rewritten (atomically) as it progresses."""

    path: Path
    data: dict[str, Any]

    def write(self) -> None:
        scratch = self.path.with_name(f"{self.path.name}.tmp")
        scratch.write_text(json.dumps(self.data))
        scratch.replace(self.path)

    def effect_done(self) -> None:
        self.data["effect_done"] = True
        self.write()


class FaultControl:
    """Fault windows read from a JSON file another process writes, and the
    payment calls in flight announced beside it.

    The chaos run (bench/chaos) writes its provider-fault schedule once, as
    absolute times, so every worker, a restarted one too, applies the same
    windows; it reads `in-flight/` to aim a `kill -9` at a worker while money
    is moving. The file is re-read when it changes; a missing or unreadable
    file means no windows.
    """

    IN_FLIGHT_DIR = "in-flight"

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.in_flight_dir = path.parent / self.IN_FLIGHT_DIR
        self._stamp: tuple[int, int] | None = None
        self._windows: tuple[FaultWindow, ...] = ()
        self._calls = itertools.count(1)

    def windows(self) -> tuple[FaultWindow, ...]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._windows = None, ()
            return self._windows
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text())
                self._windows = tuple(FaultWindow.from_json(w) for w in data["windows"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("sim_fault_control_unreadable", path=str(self.path), error=str(exc))
                self._windows = ()
            self._stamp = stamp
        return self._windows

    def active(self, system: str) -> list[FaultWindow]:
        """The windows covering `system` now, in file order. Windows may
        overlap (a fault burst during a stretch of latency): each setting
        comes from the first window that has it."""
        now = self.clock()
        return [w for w in self.windows() if w.covers(system, now)]

    @contextlib.contextmanager
    def in_flight(self, operation: str, idempotency_key: str) -> Iterator[InFlightMarker]:
        """Announce a call as a file named after this process for its duration."""
        self.in_flight_dir.mkdir(parents=True, exist_ok=True)
        marker = InFlightMarker(
            self.in_flight_dir / f"{os.getpid()}-{next(self._calls)}.json",
            {"operation": operation, "idempotency_key": idempotency_key, "since": self.clock()},
        )
        marker.write()
        try:
            yield marker
        finally:
            marker.path.unlink(missing_ok=True)


def read_in_flight(directory: Path) -> list[InFlightCall]:
    """The calls announced in `directory` (a killed worker's stay behind:
    callers check the pid)."""
    calls: list[InFlightCall] = []
    for marker in sorted(directory.glob("*.json")):
        try:
            data = json.loads(marker.read_text())
            pid = int(marker.name.split("-", 1)[0])
        except (OSError, ValueError):
            continue  # being written or removed right now
        calls.append(
            InFlightCall(
                pid=pid,
                operation=str(data["operation"]),
                idempotency_key=str(data["idempotency_key"]),
                since=float(data["since"]),
                path=marker,
                effect_done=bool(data.get("effect_done", False)),
            )
        )
    return calls


class FaultPlan:
    """Latency and failures for one simulated system."""

    def __init__(
        self,
        *,
        latency_ms: int = 0,
        failure_rate: float = 0.0,
        faults: Iterable[Fault | str] = (),
        seed: int | None = None,
        retry_after: timedelta = timedelta(seconds=1),
        name: str = "",
        control: FaultControl | None = None,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        self.latency_ms = max(0, latency_ms)
        self.failure_rate = failure_rate
        self.retry_after = retry_after
        # Which system this plan serves, for the windows of `control`.
        self.name = name
        self.control = control
        self._scripted: deque[Fault] = deque(Fault(f) for f in faults)
        self._rng = random.Random(seed)

    def _active(self) -> list[FaultWindow]:
        return self.control.active(self.name) if self.control is not None else []

    def script(self, *faults: Fault | str) -> None:
        """Queue more faults for the next calls."""
        self._scripted.extend(Fault(f) for f in faults)

    @property
    def pending(self) -> list[Fault]:
        return list(self._scripted)

    def next_fault(self) -> Fault:
        if self._scripted:
            return self._scripted.popleft()
        window = next((w for w in self._active() if w.fault is not None), None)
        if window is not None and window.fault is not None and self._rng.random() < window.rate:
            self._injected(window, window.fault.value)
            return window.fault
        if self.failure_rate and self._rng.random() < self.failure_rate:
            return self._rng.choice(RANDOM_FAULTS)
        return Fault.OK

    async def delay(self) -> None:
        window = next((w for w in self._active() if w.latency_ms is not None), None)
        if window is not None and window.latency_ms is not None:
            self._injected(window, f"latency {window.latency_ms} ms")
            await asyncio.sleep(window.latency_ms / 1000)
            return
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms * self._rng.uniform(0.5, 1.5) / 1000)

    def _injected(self, window: FaultWindow, what: str) -> None:
        if window.label:
            log.warning("sim_fault_injected", system=self.name, fault=what, window=window.label)

    async def answer_delay(self) -> None:
        """After the effect, before the answer: what the window holds back."""
        held = next((w.answer_delay_ms for w in self._active() if w.answer_delay_ms), 0)
        if held:
            await asyncio.sleep(held / 1000)

    def fail_before_effect(self, fault: Fault, system: str, operation: str) -> None:
        where = f"{system} {operation}"
        if fault is Fault.HTTP_500:
            raise PortUnavailableError(f"{where}: HTTP 500 internal server error", status=500)
        if fault is Fault.HTTP_429:
            seconds = next(
                (w.retry_after_s for w in self._active() if w.retry_after_s is not None), None
            )
            retry_after = self.retry_after if seconds is None else timedelta(seconds=seconds)
            raise RateLimitedError(f"{where}: HTTP 429 too many requests", retry_after)
        if fault is Fault.TIMEOUT_BEFORE_COMMIT:
            raise PortTimeoutError(f"{where}: timed out")

    def fail_after_effect(self, fault: Fault, system: str, operation: str) -> None:
        if fault is Fault.TIMEOUT_AFTER_COMMIT:
            raise PortTimeoutError(f"{system} {operation}: timed out (the request went through)")


def _reference(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class SimulatedPaymentProvider:
    """A card acquirer holding authorisations made at checkout.

    How it learns of authorisations: at checkout the (real) provider creates
    the authorisation and order management forwards its reference with the
    order. Here nothing upstream is real, so the scoring activity mirrors each
    order's authorisation into this provider (`register_authorisation`) when
    the order first reaches Steward, with the amount, currency and expiry the
    order carries. Registering is idempotent and the first registration wins,
    so the provider, not the caller, remains the authority on what was
    authorised. Operations on an authorisation it never saw are refused as a
    real provider would (`unknown_authorisation`).
    """

    name = "simulated"

    def __init__(
        self,
        pool: asyncpg.Pool,
        plan: FaultPlan | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()
        self.clock = clock

    async def register_authorisation(
        self,
        *,
        authorisation_ref: str,
        amount_minor: int,
        currency: str,
        authorised_at: datetime,
        expires_at: datetime,
    ) -> None:
        await sim.register_authorisation(
            self.pool,
            authorisation_ref=authorisation_ref,
            amount_minor=amount_minor,
            currency=currency,
            authorised_at=authorised_at,
            expires_at=expires_at,
        )

    async def capture(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._operate(
            PaymentOperationKind.CAPTURE, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def captured(self, *, operation: PaymentOperationInput) -> tuple[str, int] | None:
        """The capture this provider committed under the operation's key (its
        answer may have been lost: `timeout_after_commit`), as its reference
        and amount; None when it took nothing. A read: no fault, no effect."""
        done = await sim.get_operation(self.pool, operation.idempotency_key)
        if done is None or done.kind != PaymentOperationKind.CAPTURE.value:
            return None
        return done.provider_reference, done.amount_minor

    async def void(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._operate(
            PaymentOperationKind.VOID, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def refund(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._operate(
            PaymentOperationKind.REFUND, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def _operate(
        self,
        kind: PaymentOperationKind,
        key: str,
        authorisation_ref: str,
        amount_minor: int,
        currency: str,
    ) -> str:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "payment provider", kind.value)
        async with self.pool.acquire() as conn, conn.transaction():
            outcome = await self._apply(conn, kind, key, authorisation_ref, amount_minor, currency)
        # Raised after the commit: marking an authorisation expired is a state
        # change the provider keeps even though the request is refused.
        if isinstance(outcome, PaymentRefusedError):
            raise outcome
        self.plan.fail_after_effect(fault, "payment provider", kind.value)
        return outcome

    async def _apply(
        self,
        conn: sim.Executor,
        kind: PaymentOperationKind,
        key: str,
        ref: str,
        amount: int,
        currency: str,
    ) -> str | PaymentRefusedError:
        # Lock the authorisation first: concurrent requests on one
        # authorisation (including two with the same key) run one at a time.
        auth = await sim.get_authorisation(conn, ref, for_update=True)
        if auth is None:
            return PaymentRefusedError(f"authorisation {ref} is unknown", "unknown_authorisation")
        # A statement of its own, after the lock: its snapshot then includes
        # an operation a concurrent request with this key just committed.
        existing = await sim.get_operation(conn, key)
        if existing is not None:
            same = (
                existing.kind == kind.value
                and existing.authorisation_ref == ref
                and (kind is PaymentOperationKind.VOID or existing.amount_minor == amount)
            )
            if not same:
                return PaymentRefusedError(
                    f"idempotency key {key} was used for {existing.kind} {existing.amount_minor} "
                    f"on {existing.authorisation_ref}",
                    "idempotency_key_reused",
                )
            return existing.provider_reference
        if currency != auth.currency:
            return PaymentRefusedError(
                f"{kind} in {currency} on an authorisation in {auth.currency}", "currency_mismatch"
            )

        status, captured, refunded = auth.status, auth.captured_minor, auth.refunded_minor
        expired = self.clock() >= auth.expires_at
        if kind is not PaymentOperationKind.REFUND and status == "authorised" and expired:
            await sim.update_authorisation(
                conn, ref, status="expired", captured_minor=captured, refunded_minor=refunded
            )
            return PaymentRefusedError(f"authorisation {ref} expired", "authorisation_expired")

        op_amount = amount
        if kind is PaymentOperationKind.CAPTURE:
            if amount <= 0:
                return PaymentRefusedError("capture amount must be positive", "invalid_amount")
            if status == "voided":
                return PaymentRefusedError(f"authorisation {ref} is voided", "authorisation_voided")
            if status == "expired" or expired:
                return PaymentRefusedError(f"authorisation {ref} expired", "authorisation_expired")
            if captured + amount > auth.amount_minor:
                return PaymentRefusedError(
                    f"capture of {amount} exceeds the authorised {auth.amount_minor} "
                    f"(already captured {captured})",
                    "amount_exceeds_authorisation",
                )
            captured += amount
            status = "captured"
        elif kind is PaymentOperationKind.VOID:
            if status == "voided":
                return PaymentRefusedError(
                    f"authorisation {ref} is already voided", "already_voided"
                )
            if status == "expired":
                return PaymentRefusedError(f"authorisation {ref} expired", "authorisation_expired")
            if captured > 0:
                return PaymentRefusedError(
                    f"authorisation {ref} is captured; refund instead", "already_captured"
                )
            # A void releases the whole authorisation, whatever amount was sent.
            op_amount = auth.amount_minor
            status = "voided"
        else:
            if amount <= 0:
                return PaymentRefusedError("refund amount must be positive", "invalid_amount")
            if captured == 0:
                return PaymentRefusedError(f"nothing captured on {ref}", "not_captured")
            if refunded + amount > captured:
                return PaymentRefusedError(
                    f"refund of {amount} exceeds the captured {captured} "
                    f"(already refunded {refunded})",
                    "refund_exceeds_capture",
                )
            refunded += amount

        reference = _reference(f"sim_{kind.value}")
        await sim.record_operation(
            conn,
            idempotency_key=key,
            kind=kind.value,
            authorisation_ref=ref,
            amount_minor=op_amount,
            currency=currency,
            provider_reference=reference,
            status=status,
            captured_minor=captured,
            refunded_minor=refunded,
        )
        return reference


class ObservedPaymentProvider:
    """A simulated provider whose calls in flight are announced through its
    plan's `FaultControl`, and whose answers a window may hold back after the
    effect: what the chaos run needs to kill a worker while money moves, before
    or after the provider committed. Same answers, same idempotency."""

    def __init__(self, inner: SimulatedPaymentProvider, control: FaultControl) -> None:
        self.inner = inner
        self.control = control
        self.name = inner.name

    async def capture(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._observed(
            PaymentOperationKind.CAPTURE,
            idempotency_key,
            lambda: self.inner.capture(
                idempotency_key=idempotency_key,
                authorisation_ref=authorisation_ref,
                amount_minor=amount_minor,
                currency=currency,
            ),
        )

    async def void(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._observed(
            PaymentOperationKind.VOID,
            idempotency_key,
            lambda: self.inner.void(
                idempotency_key=idempotency_key,
                authorisation_ref=authorisation_ref,
                amount_minor=amount_minor,
                currency=currency,
            ),
        )

    async def refund(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._observed(
            PaymentOperationKind.REFUND,
            idempotency_key,
            lambda: self.inner.refund(
                idempotency_key=idempotency_key,
                authorisation_ref=authorisation_ref,
                amount_minor=amount_minor,
                currency=currency,
            ),
        )

    async def _observed(
        self, kind: PaymentOperationKind, idempotency_key: str, move: Callable[[], Awaitable[str]]
    ) -> str:
        """Mark the call in flight, then done once the provider moved the
        money, before the (possibly held back) answer leaves."""
        with self.control.in_flight(kind.value, idempotency_key) as call:
            reference = await move()
            call.effect_done()
            await self.inner.plan.answer_delay()
            return reference


# Fulfilment hub per market; anything else ships from Europe.
WAREHOUSE_BY_MARKET: dict[str, str] = {
    "US": "sim-3pl-new-jersey",
    "CA": "sim-3pl-new-jersey",
    "CN": "sim-3pl-shanghai",
    "HK": "sim-3pl-hong-kong",
    "JP": "sim-3pl-hong-kong",
    "KR": "sim-3pl-hong-kong",
    "SG": "sim-3pl-hong-kong",
}
DEFAULT_WAREHOUSE = "sim-3pl-paris"


class SimulatedWarehouse:
    name = "simulated-3pl"

    def __init__(self, pool: asyncpg.Pool, plan: FaultPlan | None = None) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()

    async def release_order(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        market: str,
        destination_country: str,
        items: list[ReleaseItem],
    ) -> WarehouseRelease:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "warehouse", "release")
        if not items or any(i.quantity < 1 for i in items):
            raise ReleaseRejectedError(f"order {order_id} has nothing to pick", "empty_order")
        release = await sim.insert_release(
            self.pool,
            idempotency_key=idempotency_key,
            order_id=order_id,
            release_id=_reference("REL"),
            warehouse=WAREHOUSE_BY_MARKET.get(market, DEFAULT_WAREHOUSE),
            destination=destination_country,
            items=[i.model_dump(mode="json") for i in items],
        )
        self.plan.fail_after_effect(fault, "warehouse", "release")
        return WarehouseRelease(release_id=release.release_id, warehouse=release.warehouse)


# Addresses at this domain bounce, so tests and the simulator can exercise a
# refused message.
BOUNCING_DOMAIN = "bounce.example"


class SimulatedNotifier:
    name = "simulated-email"

    def __init__(self, pool: asyncpg.Pool, plan: FaultPlan | None = None) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()

    async def send(
        self,
        *,
        message_id: str,
        order_id: str,
        recipient_email: str,
        template: str,
        locale: str,
    ) -> bool:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "email service", "send")
        if recipient_email.strip().lower().endswith("@" + BOUNCING_DOMAIN):
            raise NotificationRejectedError(f"message {message_id} bounced", "hard_bounce")
        await sim.insert_notification(
            self.pool,
            message_id=message_id,
            order_id=order_id,
            template=template,
            locale=locale,
            # Even the simulated provider's log keeps no clear address.
            recipient_hash=identity_hash(IdentityKind.EMAIL, recipient_email),
        )
        self.plan.fail_after_effect(fault, "email service", "send")
        return True


# -- returns ------------------------------------------------------------------
# State lives in store/returns.py's sim_* tables (migration 0003).


class SimulatedReturnCarrier:
    name = "simulated-returns-carrier"

    def __init__(self, pool: asyncpg.Pool, plan: FaultPlan | None = None) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()

    async def create_return_label(
        self,
        *,
        idempotency_key: str,
        rma_id: str,
        market: str,
        parcel_units: int,
        expires_at: datetime,
    ) -> ReturnLabel:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "carrier", "return label")
        carrier = "sim-ups" if market in ("US", "CA") else "sim-dhl"
        tracking = f"1Z{uuid.uuid4().hex[:16].upper()}"
        label = await returns_store.insert_label(
            self.pool,
            idempotency_key=idempotency_key,
            rma_id=rma_id,
            carrier=carrier,
            tracking_number=tracking,
            label_url=f"https://labels.example/{tracking}.pdf",
            expires_at=expires_at,
        )
        self.plan.fail_after_effect(fault, "carrier", "return label")
        return ReturnLabel(
            carrier=label.carrier,
            tracking_number=label.tracking_number,
            label_url=label.label_url,
            expires_at=label.expires_at,
        )


class SimulatedReturnsWarehouse:
    name = "simulated-3pl-returns"

    def __init__(self, pool: asyncpg.Pool, plan: FaultPlan | None = None) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()

    async def record_disposition(
        self,
        *,
        idempotency_key: str,
        rma_id: str,
        order_id: str,
        market: str,
        disposition: str,
        items: list[tuple[str, int]],
    ) -> DispositionRecord:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "warehouse", "disposition")
        record = await returns_store.insert_disposition(
            self.pool,
            idempotency_key=idempotency_key,
            rma_id=rma_id,
            order_id=order_id,
            disposition=disposition,
            warehouse=WAREHOUSE_BY_MARKET.get(market, DEFAULT_WAREHOUSE),
            reference=_reference("DSP"),
            items=[{"sku": sku, "quantity": quantity} for sku, quantity in items],
        )
        self.plan.fail_after_effect(fault, "warehouse", "disposition")
        return DispositionRecord(reference=record.reference, warehouse=record.warehouse)

    async def missing_stock(self, *, market: str, items: list[tuple[str, int]]) -> list[str]:
        await self.plan.delay()
        self.plan.fail_before_effect(self.plan.next_fault(), "warehouse", "stock")
        stock = await returns_store.stock_of(self.pool, [sku for sku, _ in items])
        return [sku for sku, quantity in items if stock.get(sku, quantity) < quantity]


# Transit times of the simulated carrier, by service level.
SIM_TRANSIT: dict[str, timedelta] = {
    "express": timedelta(days=1),
    "signature_required": timedelta(days=2),
    "standard": timedelta(days=3),
}


class SimulatedCarrier:
    """Labels, investigations and claims, kept in sim_carrier_operations.

    Idempotent by key like a real carrier API: a repeat returns the first
    tracking number or reference and books nothing twice."""

    name = "simulated-carrier"

    def __init__(
        self,
        pool: asyncpg.Pool,
        plan: FaultPlan | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()
        self.clock = clock

    async def _call(self, operation: str) -> Fault:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "carrier", operation)
        return fault

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
        fault = await self._call("book")
        expected = self.clock() + SIM_TRANSIT.get(service_level, SIM_TRANSIT["standard"])
        if earliest_delivery is not None:
            # Not before the customer's preferred day (09:00 UTC, the first round).
            day = earliest_delivery
            earliest = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            expected = max(expected, earliest)
        payload: dict[str, Any] = {
            "order_id": order_id,
            "expected_delivery_at": expected.isoformat(),
            "destination": destination_country,
            "pickup_point_id": pickup_point_id,
        }
        if destination is not None:
            # The full address was booked; the simulator's table keeps only its
            # fingerprint (personal data stays out of it), enough to check which
            # doorstep a label went to.
            payload["destination_hash"] = identity_hash(IdentityKind.ADDRESS, destination)
        if earliest_delivery is not None:
            payload["earliest_delivery"] = earliest_delivery.isoformat()
        tracking, payload = await delivery_store.sim_operation(
            self.pool,
            idempotency_key=idempotency_key,
            kind="label",
            carrier=carrier,
            reference=f"SIM{uuid.uuid4().hex[:14].upper()}",
            payload=payload,
        )
        self.plan.fail_after_effect(fault, "carrier", "book")
        return BookedShipment(
            tracking_number=tracking,
            expected_delivery_at=datetime.fromisoformat(payload["expected_delivery_at"]),
        )

    async def open_investigation(
        self, *, idempotency_key: str, carrier: str, tracking_number: str, claim_type: str
    ) -> str:
        fault = await self._call("investigation")
        reference, _ = await delivery_store.sim_operation(
            self.pool,
            idempotency_key=idempotency_key,
            kind="investigation",
            carrier=carrier,
            reference=_reference("INV"),
            payload={"tracking_number": tracking_number, "claim_type": claim_type},
        )
        self.plan.fail_after_effect(fault, "carrier", "investigation")
        return reference

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
        fault = await self._call("claim")
        if "invoice" not in documents:
            raise ClaimRefusedError(
                f"claim on {tracking_number} has no proof of value", "missing_invoice"
            )
        reference, _ = await delivery_store.sim_operation(
            self.pool,
            idempotency_key=idempotency_key,
            kind="claim",
            carrier=carrier,
            reference=_reference("CLM"),
            payload={
                "tracking_number": tracking_number,
                "claim_type": claim_type,
                "amount_minor": amount_minor,
                "currency": currency,
                "documents": documents,
            },
        )
        self.plan.fail_after_effect(fault, "carrier", "claim")
        return reference

    async def chase_claim(
        self, *, idempotency_key: str, carrier: str, claim_reference: str
    ) -> None:
        fault = await self._call("chase")
        await delivery_store.sim_operation(
            self.pool,
            idempotency_key=idempotency_key,
            kind="chase",
            carrier=carrier,
            reference=claim_reference,
        )
        self.plan.fail_after_effect(fault, "carrier", "chase")


# Returned parcels whose shipment id contains this come back damaged, so the
# simulator and tests can exercise quarantine and a damage claim.
DAMAGED_MARKER = "DMG"


class SimulatedParcelReturnsDesk:
    name = "simulated-3pl-inbound"

    def __init__(self, pool: asyncpg.Pool, plan: FaultPlan | None = None) -> None:
        self.pool = pool
        self.plan = plan or FaultPlan()

    async def inspect(
        self, *, idempotency_key: str, shipment_id: str, order_id: str
    ) -> tuple[str, str]:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "warehouse", "inspect")
        damaged = DAMAGED_MARKER in shipment_id.upper()
        grade = await delivery_store.sim_returns_desk(
            self.pool,
            idempotency_key=idempotency_key,
            kind="inspection",
            shipment_id=shipment_id,
            result="damaged" if damaged else "resellable",
        )
        self.plan.fail_after_effect(fault, "warehouse", "inspect")
        notes = "crushed box, item scratched" if grade == "damaged" else "seal intact, as shipped"
        return grade, notes

    async def restock(self, *, idempotency_key: str, shipment_id: str, skus: list[str]) -> str:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, "warehouse", "restock")
        location = await delivery_store.sim_returns_desk(
            self.pool,
            idempotency_key=idempotency_key,
            kind="restock",
            shipment_id=shipment_id,
            result=f"sim-3pl-paris/returns/{len(skus)}x",
        )
        self.plan.fail_after_effect(fault, "warehouse", "restock")
        return location
