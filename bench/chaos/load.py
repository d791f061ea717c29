"""The seeded load of a chaos run, sent as upstream systems and people would.

Every story (bench/chaos/plan.py) goes through the HTTP API: order
management starts reviews and returns, the warehouse registers parcels and
answers CCTV requests, carriers post scans (Steward's format or signed
EasyPost events), the 3PL posts QC results, Stripe posts signed dispute
events, and coordinators and finance decide with their own keys. Like those
systems, a sender retries on 5xx and on a refused connection (the API or a
server behind it restarting), sends some webhooks twice and some out of
order. What a person waits for (a review in the queue, a return in manual
QC) is read from the case table, as the work queue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.chaos.plan import Plan, Story, StoryPlan
from bench.chaos.stack import ChaosStack
from domain.carrier_events import EASYPOST_SIGNATURE_HEADER, easypost_signature
from domain.common import Role
from domain.deliveries import ShipmentRecord
from domain.orders import Order
from domain.webhook_signatures import stripe_signature_header
from starters.carrier_events_simulator import easypost_tracker_event
from starters.chargeback_simulator import stripe_dispute_event
from store import disputes as dispute_store

# Statuses a person or an upstream system acts on, and the closed ones.
REVIEW_DONE = {"released", "cancelled"}
RETURN_DONE = {
    "rejected",
    "refunded",
    "exchanged",
    "store_credited",
    "returned_to_customer",
    "sent_to_repair",
    "quarantined",
    "refund_declined",
    "refund_failed",
    "cancelled",
    "expired",
    "lost_in_transit",
}
DELIVERY_DONE = {"delivered", "refunded", "closed"}
CLAIM_DONE = {"approved", "rejected", "no_response", "withdrawn"}
DISPUTE_DONE = {"won", "lost", "expired", "accepted"}
RETRY_STATUSES = {500, 502, 503, 504}


class StoryFailed(Exception):
    """A story could not go on: an answer no upstream system expects, or a
    case that did not reach the next state in time."""


@dataclass
class Expectation:
    workflow_id: str
    allowed: frozenset[str]
    story_id: str


@dataclass
class LoadStats:
    requests: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    duplicates_sent: int = 0
    # Duplicates that arrived after their case had ended, by answer.
    duplicates_after_close: Counter[int] = field(default_factory=Counter)
    reordered: int = 0
    cctv_answered: int = 0
    # BURST: when each QC result was sent (wall clock).
    qc_sent_at: list[float] = field(default_factory=list)
    story_failures: dict[str, str] = field(default_factory=dict)
    expectations: list[Expectation] = field(default_factory=list)
    story_workflows: dict[str, list[str]] = field(default_factory=dict)

    def expect(self, story: StoryPlan, workflow_id: str, *allowed: str) -> None:
        self.expectations.append(Expectation(workflow_id, frozenset(allowed), story.story_id))


class Api:
    """The HTTP API with an upstream sender's manners: retried on 5xx and
    connection errors with backoff, until `deadline_s`."""

    def __init__(
        self, stack: ChaosStack, stats: LoadStats, deadline_s: float, rng: random.Random
    ) -> None:
        self.stack = stack
        self.stats = stats
        self.deadline_s = deadline_s
        self.rng = rng
        self.http = httpx.AsyncClient(base_url=stack.api_url, timeout=20)
        self._background: set[asyncio.Task[Any]] = set()

    def headers(self, role: Role, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.secrets.api_keys[role]}", **(extra or {})}

    async def send(
        self,
        step: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        content: bytes | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        deadline = time.monotonic() + self.deadline_s
        delay = 0.25
        while True:
            try:
                response = await self.http.request(
                    method, path, headers=headers, json=json_body, content=content
                )
            except httpx.TransportError as exc:
                status, detail = 0, type(exc).__name__
            else:
                self.stats.requests[f"{response.status_code}"] += 1
                if response.is_success or response.status_code in accept:
                    return response
                status, detail = response.status_code, response.text[:300]
                if status not in RETRY_STATUSES:
                    raise StoryFailed(f"{step}: {method} {path} answered {status}: {detail}")
            self.stats.retried[str(status or "connection")] += 1
            if time.monotonic() > deadline:
                raise StoryFailed(f"{step}: {method} {path} still failing: {status} {detail}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def webhook(
        self,
        story: StoryPlan,
        step: str,
        path: str,
        *,
        role: Role | None = Role.SYSTEM,
        json_body: Any = None,
        sign: Callable[[bytes], dict[str, str]] | None = None,
        extra_headers: dict[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """Send one upstream message; when the plan says so, send it again a
        moment later, as a sender that missed the first answer would."""

        async def once(duplicate: bool = False) -> httpx.Response:
            headers = self.headers(role, extra_headers) if role else dict(extra_headers or {})
            content = None
            body = json_body
            if sign is not None:
                content = json.dumps(json_body).encode()
                headers = {**headers, "Content-Type": "application/json", **sign(content)}
                body = None
            return await self.send(
                step,
                "POST",
                path,
                headers=headers,
                json_body=body,
                content=content,
                accept={*accept, 404, 409} if duplicate else accept,
            )

        response = await once()
        if step in story.duplicate:
            self.stats.duplicates_sent += 1
            delay = self.rng.uniform(0.1, 2.0)

            async def again() -> None:
                await asyncio.sleep(delay)
                try:
                    # The case may have ended meanwhile: "closed" (409) or "no
                    # running case" (404) both say nothing changed.
                    response = await once(duplicate=True)
                    if response.status_code in (404, 409):
                        self.stats.duplicates_after_close[response.status_code] += 1
                except StoryFailed as failed:
                    self.stats.story_failures.setdefault(story.story_id, f"duplicate {failed}")

            task = asyncio.create_task(again())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return response

    async def get(self, path: str, role: Role = Role.OPS) -> Any:
        return (await self.send("read", "GET", path, headers=self.headers(role))).json()

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def aclose(self) -> None:
        await self.http.aclose()


class StatusBoard:
    """The latest status of every case, polled from the case table."""

    def __init__(self, pool: asyncpg.Pool, interval: float = 0.5) -> None:
        self.pool = pool
        self.interval = interval
        self.status: dict[str, str] = {}
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        while True:
            try:
                rows = await self.pool.fetch("SELECT workflow_id, status FROM cases")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(1)  # PostgreSQL is restarting
                continue
            async with self._changed:
                self.status = {r["workflow_id"]: r["status"] for r in rows}
                self._changed.notify_all()
            await asyncio.sleep(self.interval)

    async def wait(
        self, workflow_id: str, wanted: Callable[[str], bool], timeout: float, step: str
    ) -> str:
        def reached() -> bool:
            status = self.status.get(workflow_id)
            return status is not None and wanted(status)

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(reached), timeout)
        except TimeoutError:
            raise StoryFailed(
                f"{step}: {workflow_id} still {self.status.get(workflow_id, 'unknown')} "
                f"after {timeout:.0f}s"
            ) from None
        return self.status[workflow_id]


class Barrier:
    """The burst: every return waits here until all are ready for their QC."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.count = 0
        self.released = asyncio.Event()

    def leave(self) -> None:
        self.count += 1
        if self.count >= self.parties:
            self.released.set()

    async def arrive(self, timeout: float) -> None:
        self.leave()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), timeout)


class Load:
    def __init__(self, plan: Plan, stack: ChaosStack, stats: LoadStats) -> None:
        assert stack.pool is not None
        self.plan = plan
        self.stack = stack
        self.stats = stats
        self.step_timeout = plan.profile.step_timeout
        self.api = Api(stack, stats, plan.profile.step_timeout, random.Random(plan.seed))
        self.board = StatusBoard(stack.pool)
        bursting = [s for s in plan.stories if s.kind is Story.RETURN]
        self.barrier = Barrier(len(bursting)) if plan.profile.burst else None

    async def run(self, t0: float) -> None:
        """Start each story at its time; return when all have ended."""
        board = asyncio.create_task(self.board.run())
        warehouse = asyncio.create_task(self._warehouse())
        stories: list[asyncio.Task[None]] = []
        try:
            for story in self.plan.stories:
                await asyncio.sleep(max(0.0, t0 + story.start_at - time.monotonic()))
                stories.append(asyncio.create_task(self._story(story), name=story.story_id))
            await asyncio.gather(*stories)
            await self.api.drain()
        finally:
            for task in (*stories, board, warehouse):
                task.cancel()
            await asyncio.gather(*stories, board, warehouse, return_exceptions=True)
            await self.api.aclose()

    async def _story(self, story: StoryPlan) -> None:
        drivers: dict[Story, Callable[[StoryPlan], Awaitable[None]]] = {
            Story.REVIEW: self._review_story,
            Story.RETURN: self._return_story,
            Story.DISPUTE: self._dispute_story,
            Story.FAILED_DELIVERY: self._failed_delivery_story,
            Story.CLAIM: self._claim_story,
        }
        try:
            await drivers[story.kind](story)
        except StoryFailed as failed:
            self.stats.story_failures[story.story_id] = str(failed)
        except asyncio.CancelledError:
            self.stats.story_failures.setdefault(story.story_id, "cancelled at the time limit")
            raise
        finally:
            barrier = self.barrier
            if barrier is not None and story.kind is Story.RETURN and not barrier.released.is_set():
                # A story that failed before its QC must not hold the others.
                barrier.leave()

    def _track(self, story: StoryPlan, workflow_id: str) -> str:
        self.stats.story_workflows.setdefault(story.story_id, []).append(workflow_id)
        return workflow_id

    async def _wait(self, workflow_id: str, statuses: Collection[str], step: str) -> str:
        return await self.board.wait(workflow_id, lambda s: s in statuses, self.step_timeout, step)

    # -- order review ---------------------------------------------------------

    async def _review(self, story: StoryPlan, order: Order, decision: str) -> bool:
        """Start the review; decide it if it waits for a coordinator. True
        when the order was released (captured)."""
        wid = self._track(story, f"order-review:{order.order_id}")
        await self.api.webhook(
            story, "start", "/v1/order-reviews", json_body=order.model_dump(mode="json")
        )
        status = await self._wait(wid, {"awaiting_review", *REVIEW_DONE}, "review")
        if status == "awaiting_review":
            body = {
                "decision": decision,
                "reason_code": "verified_customer" if decision == "approve" else "suspected_fraud",
                "note": f"chaos {story.story_id}",
            }
            await self.api.webhook(
                story,
                "decision",
                f"/v1/order-reviews/{order.order_id}/decision",
                role=Role.COORDINATOR,
                json_body=body,
                extra_headers={"Idempotency-Key": f"{story.story_id}/decision"},
                accept=(409,),
            )
            status = await self._wait(wid, REVIEW_DONE, "review decided")
            self.stats.expect(story, wid, "released" if decision == "approve" else "cancelled")
        else:
            self.stats.expect(story, wid, *REVIEW_DONE)
        return status == "released"

    async def _review_story(self, story: StoryPlan) -> None:
        await self._review(story, story.order, story.review_decision)

    # -- returns --------------------------------------------------------------

    async def _open_return(self, story: StoryPlan) -> tuple[str, str] | None:
        """The order captured, the return opened and its label issued: the
        return's workflow id and tracking number (None: the order was not
        released or the return refused)."""
        scenario = story.return_scenario
        assert scenario is not None
        if not await self._review(story, story.order, "approve"):
            return None
        request = scenario.request
        wid = self._track(story, f"return:{request.rma_id}")
        body = request.model_dump(
            mode="json", include={"rma_id", "order", "lines", "reason", "resolution", "contact"}
        )
        await self.api.webhook(story, "start", "/v1/returns", json_body=body)
        status = await self._wait(wid, {"label_issued", *RETURN_DONE}, "return label")
        if status != "label_issued":
            self.stats.expect(story, wid, "label_issued")  # a refusal here is unexpected
            return None
        state = await self.api.get(f"/v1/returns/{request.rma_id}")
        return wid, str(state["tracking_number"])

    async def _scan(self, story: StoryPlan, rma_id: str, tracking: str, kind: str) -> None:
        await self.api.webhook(
            story,
            "in_transit" if kind == "in_transit" else "delivered",
            f"/v1/returns/{rma_id}/carrier-events",
            json_body={
                "event_id": f"{rma_id}/{kind}",
                "kind": kind,
                "tracking_number": tracking,
                "occurred_at": datetime.now(UTC).isoformat(),
                "location": "Paris, FR",
            },
            extra_headers={"X-Steward-Webhook-Secret": self.stack.secrets.webhook},
        )

    async def _ship_and_qc(self, story: StoryPlan, wid: str, tracking: str) -> None:
        scenario = story.return_scenario
        assert scenario is not None and scenario.qc is not None
        rma_id = scenario.request.rma_id
        qc_body = scenario.qc.model_dump(mode="json")
        qc_headers = {"X-Steward-Webhook-Secret": self.stack.secrets.webhook}

        async def qc() -> None:
            self.stats.qc_sent_at.append(time.time())
            await self.api.webhook(
                story,
                "qc",
                f"/v1/returns/{rma_id}/qc-results",
                json_body=qc_body,
                extra_headers=qc_headers,
            )

        if story.reorder:
            # The carrier's scans cross, and the 3PL's report beats the last scan.
            self.stats.reordered += 1
            await self._scan(story, rma_id, tracking, "delivered_to_warehouse")
            await self._scan(story, rma_id, tracking, "in_transit")
            await qc()
            return
        await self._scan(story, rma_id, tracking, "in_transit")
        await self._scan(story, rma_id, tracking, "delivered_to_warehouse")
        if self.barrier is not None:
            await self._wait(wid, {"received"}, "return received")
            await self.barrier.arrive(self.step_timeout)
        await qc()

    async def _work_return(self, story: StoryPlan, wid: str, stop: Collection[str]) -> str:
        """Act as the coordinator and finance on the return until it reaches `stop`."""
        rma_id = wid.split(":", 1)[1]
        acted: set[str] = set()
        while True:
            status = await self._wait(
                wid,
                {*stop, *({"manual_qc", "awaiting_finance"} - acted)},
                "return resolved",
            )
            if status in stop:
                return status
            acted.add(status)
            if status == "manual_qc":
                if story.qc_decision == "first_choice":
                    body: dict[str, Any] = {"grade": "first_choice", "reason": "checked again"}
                else:
                    body = {
                        "grade": "second_choice",
                        "reason": "wear confirmed",
                        "outcome": "return_to_customer",
                    }
                await self.api.webhook(
                    story,
                    "qc_decision",
                    f"/v1/returns/{rma_id}/qc-decision",
                    role=Role.COORDINATOR,
                    json_body=body,
                    extra_headers={"Idempotency-Key": f"{story.story_id}/qc"},
                    accept=(409,),
                )
            else:
                await self.api.webhook(
                    story,
                    "finance",
                    f"/v1/returns/{rma_id}/finance-approval",
                    role=Role.FINANCE,
                    json_body={"approved": True, "note": "QC confirmed"},
                    extra_headers={"Idempotency-Key": f"{story.story_id}/finance"},
                    accept=(409,),
                )

    async def _return_story(self, story: StoryPlan) -> None:
        opened = await self._open_return(story)
        if opened is None:
            return
        wid, tracking = opened
        await self._ship_and_qc(story, wid, tracking)
        await self._work_return(story, wid, RETURN_DONE)
        assert story.return_scenario is not None
        wants_refund = story.return_scenario.request.resolution.value == "refund"
        if story.qc_decision == "return_to_customer":
            # Only if a person looked: a first-choice grade that stood refunds.
            outcomes = {"returned_to_customer", "refunded" if wants_refund else "store_credited"}
        else:
            outcomes = {"refunded" if wants_refund else "store_credited"}
        self.stats.expect(story, wid, *outcomes)

    # -- a dispute on an order with a return ---------------------------------

    async def _dispute_story(self, story: StoryPlan) -> None:
        opened = await self._open_return(story)
        if opened is None:
            return
        wid, tracking = opened
        order = story.order
        dispute_wid = self._track(story, f"chargeback:stripe:{story.dispute_id}")
        rng = random.Random(story.story_id)
        created = stripe_dispute_event(order, rng, datetime.now(UTC))
        created["data"]["object"]["id"] = story.dispute_id
        await self._stripe(story, "dispute", created)
        await self._wait(
            dispute_wid, {"open", "gathering_evidence", "awaiting_coordinator"}, "dispute"
        )
        await self._ship_and_qc(story, wid, tracking)
        # The refund must wait for the dispute: frozen, never paid.
        await self._work_return(story, wid, {"refund_frozen", *RETURN_DONE})
        self.stats.expect(story, wid, "refund_frozen")
        await self.api.webhook(
            story,
            "accept",
            f"/v1/chargebacks/stripe/{story.dispute_id}/accept",
            role=Role.COORDINATOR,
            json_body={"note": "the customer returned the item; refund after the dispute"},
            extra_headers={"Idempotency-Key": f"{story.story_id}/accept"},
            accept=(409,),
        )
        await self._wait(dispute_wid, DISPUTE_DONE, "dispute accepted")
        closed = stripe_dispute_event(
            order, rng, datetime.now(UTC), event_type="charge.dispute.closed"
        )
        closed["data"]["object"].update(id=story.dispute_id, status="lost")
        await self._stripe(story, "dispute_closed", closed)
        await self._wait(dispute_wid, {"lost"}, "dispute closed")
        self.stats.expect(story, dispute_wid, "lost")

    async def _stripe(self, story: StoryPlan, step: str, event: dict[str, Any]) -> None:
        secret = self.stack.secrets.stripe

        def sign(body: bytes) -> dict[str, str]:
            return {"Stripe-Signature": stripe_signature_header(secret, int(time.time()), body)}

        await self.api.webhook(
            story, step, "/v1/webhooks/stripe", role=None, json_body=event, sign=sign
        )

    # -- parcels --------------------------------------------------------------

    def _shipment(self, story: StoryPlan) -> ShipmentRecord:
        rng = random.Random(f"{story.story_id}/shipment")
        carrier = rng.choice(("ups", "fedex", "dhl", "colissimo"))
        return ShipmentRecord(
            shipment_id=f"SH-{story.order.order_id}",
            carrier=carrier,
            tracking_number=f"{carrier[:2].upper()}{rng.getrandbits(40):012d}",
            expected_delivery_at=datetime.now(UTC) + timedelta(days=2),
            order=story.order,
        )

    async def _carrier_event(
        self,
        story: StoryPlan,
        step: str,
        shipment: ShipmentRecord,
        status: str,
        code: str,
        *,
        at: datetime | None = None,
        easypost: bool | None = None,
    ) -> None:
        at = at or datetime.now(UTC)
        rng = random.Random(f"{story.story_id}/{step}/{status}")
        if story.easypost if easypost is None else easypost:
            easypost_status = {
                "delivery_failed": "failure",
                "lost": "failure",
                "delivered": "delivered",
                "in_transit": "in_transit",
            }[status]
            payload = easypost_tracker_event(shipment, easypost_status, code, at, rng)
            secret = self.stack.secrets.easypost

            def sign(body: bytes) -> dict[str, str]:
                return {EASYPOST_SIGNATURE_HEADER: easypost_signature(body, secret)}

            await self.api.webhook(
                story,
                step,
                "/v1/webhooks/carrier/easypost",
                role=None,
                json_body=payload,
                sign=sign,
            )
            return
        await self.api.webhook(
            story,
            step,
            "/v1/webhooks/carrier",
            json_body={
                "event_id": f"{shipment.carrier}-{rng.getrandbits(64):016x}",
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "shipment_id": shipment.shipment_id,
                "status": status,
                "exception_code": code or None,
                "location": f"{shipment.address.city}, {shipment.address.country}",
                "occurred_at": at.isoformat(),
            },
        )

    async def _register(self, story: StoryPlan) -> ShipmentRecord | None:
        if not await self._review(story, story.order, "approve"):
            return None
        shipment = self._shipment(story)
        await self.api.webhook(
            story, "shipment", "/v1/shipments", json_body=shipment.model_dump(mode="json")
        )
        return shipment

    async def _work_delivery(self, story: StoryPlan, shipment: ShipmentRecord, wid: str) -> str:
        """The customer's answer, the coordinator's decision, the returned
        parcel or the reship's delivery, until the case closes."""
        base = f"/v1/failed-deliveries/{shipment.shipment_id}"
        acted: set[str] = set()
        actionable = {"awaiting_customer", "awaiting_decision", "awaiting_return", "reshipped"}
        while True:
            status = await self._wait(
                wid, {*DELIVERY_DONE, *(actionable - acted)}, "failed delivery"
            )
            if status in DELIVERY_DONE:
                return status
            acted.add(status)
            if status == "awaiting_customer":
                reship = story.remedy == "reship"
                reply: dict[str, Any] = {
                    "event_id": f"{story.story_id}/reply",
                    "option": "reschedule" if reship else "cancel_refund",
                    "message": "home on Friday" if reship else "please refund me",
                }
                if reship:
                    reply["preferred_date"] = (
                        (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
                    )
                await self.api.webhook(story, "reply", f"{base}/customer-reply", json_body=reply)
            elif status == "awaiting_decision":
                decision = "reship" if story.remedy == "reship" else "return_to_stock"
                await self.api.webhook(
                    story,
                    "decision",
                    f"{base}/decision",
                    role=Role.COORDINATOR,
                    json_body={"decision": decision, "note": f"chaos {story.story_id}"},
                    extra_headers={"Idempotency-Key": f"{story.story_id}/decision"},
                    accept=(409,),
                )
            elif status == "awaiting_return":
                await self.api.webhook(
                    story,
                    "received",
                    f"{base}/parcel-received",
                    json_body={
                        "event_id": f"{story.story_id}/received",
                        "received_at": datetime.now(UTC).isoformat(),
                    },
                )
            else:
                state = await self.api.get(base)
                second = shipment.model_copy(
                    update={
                        "shipment_id": state["reship_shipment_id"],
                        "tracking_number": state["reship_tracking_number"],
                    }
                )
                await self._carrier_event(
                    story, "delivered", second, "delivered", "", easypost=False
                )

    async def _failed_delivery_story(self, story: StoryPlan) -> None:
        shipment = await self._register(story)
        if shipment is None:
            return
        wid = self._track(story, f"failed-delivery:{shipment.shipment_id}")
        await self._carrier_event(
            story, "failed", shipment, "delivery_failed", "recipient_not_home"
        )
        if story.reorder:
            # A scan from yesterday arrives after the failure: recorded, changes nothing.
            self.stats.reordered += 1
            yesterday = datetime.now(UTC) - timedelta(days=1)
            await self._carrier_event(story, "stale", shipment, "in_transit", "", at=yesterday)
        await self._work_delivery(story, shipment, wid)
        self.stats.expect(story, wid, "refunded" if story.remedy == "refund" else "delivered")

    async def _claim_story(self, story: StoryPlan) -> None:
        shipment = await self._register(story)
        if shipment is None:
            return
        claim = self._track(story, f"carrier-claim:{shipment.carrier}:{shipment.tracking_number}")
        remedy = self._track(story, f"failed-delivery:{shipment.shipment_id}")
        await self._carrier_event(story, "lost", shipment, "lost", "lost")
        # The claim files once the warehouse's CCTV clip is in (the warehouse loop).
        await self._wait(claim, {"filed", *CLAIM_DONE}, "claim filed")
        await self.api.webhook(
            story,
            "outcome",
            f"/v1/carrier-claims/{shipment.carrier}/{shipment.tracking_number}/outcome",
            json_body={
                "event_id": f"{story.story_id}/outcome",
                "approved": True,
                "reimbursed_minor": story.order.payment.amount_minor,
                "currency": story.order.currency,
                "carrier_reference": f"CR-{story.story_id}",
            },
        )
        await self._wait(claim, CLAIM_DONE, "claim outcome")
        self.stats.expect(story, claim, "approved")
        await self._wait(remedy, {"awaiting_customer", *DELIVERY_DONE}, "remedy opened")
        await self._work_delivery(story, shipment, remedy)
        self.stats.expect(story, remedy, "refunded")

    # -- the warehouse ----------------------------------------------------------

    async def _warehouse(self) -> None:
        """Answer every CCTV clip request, as the warehouse does."""
        assert self.stack.pool is not None
        answered: set[str] = set()
        while True:
            await asyncio.sleep(2)
            try:
                pending = await dispute_store.sim_pending_cctv_requests(self.stack.pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                continue
            for request in pending:
                if request.request_id in answered:
                    continue
                answered.add(request.request_id)
                with contextlib.suppress(StoryFailed):
                    await self.api.send(
                        "cctv",
                        "POST",
                        "/v1/webhooks/warehouse/cctv",
                        headers=self.api.headers(Role.SYSTEM),
                        json_body={
                            "event_id": f"cctv/{request.request_id}",
                            "request_id": request.request_id,
                            "available": True,
                            "clip_ref": f"clip://{request.station}/{request.request_id}",
                        },
                        accept=(409,),
                    )
                    self.stats.cctv_answered += 1
