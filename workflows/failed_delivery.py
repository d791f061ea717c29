"""Failed delivery decision: `failed-delivery:{shipment_id}`.

opened -> awaiting_customer -> awaiting_decision -> (reshipped -> delivered,
or a second failure -> awaiting_return) | awaiting_return -> inspecting ->
refunding [-> refund_frozen] -> refunded; `delivered` whenever the carrier
manages after all.

The workflow decides *when*; the policy recommendation is a pure domain
function, the risk of a new address comes from the scoring activity's
versioned rules, and every side effect is an activity. Each step's audit rows,
case row and task changes go out in one local activity (the case book,
workflows/case.py). The return-to-stock, claim and refund stages are in
workflows/failed_delivery_return.py.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.business_hours import sla_due
    from domain.carrier_events import CLAIM_STATUSES, FAILURE_STATUSES, CarrierEvent, TrackingStatus
    from domain.claims import CarrierClaimContract, ClaimType
    from domain.common import DECISION_REJECTED, Role
    from domain.deliveries import (
        ALL_OPTIONS,
        BOOK_RESHIPMENT,
        CLOSED_DELIVERY_STATUSES,
        RESHIP_BOOKING_REFUSED,
        SCORE_DELIVERY_ADDRESS,
        AddressRef,
        BookReshipmentInput,
        BookReshipmentResult,
        CustomerOption,
        CustomerReply,
        DefaultDeliveryAction,
        DeliveryDecideInput,
        DeliveryDecision,
        DeliveryDecisionRecord,
        DeliveryStatusChange,
        DeliveryTemplate,
        Destination,
        FailedDeliveryContract,
        FailedDeliveryInput,
        FailedDeliveryResult,
        FailedDeliveryState,
        FailedDeliveryStatus,
        ParcelReceived,
        ScoreDeliveryAddressInput,
        ServiceLevel,
        ShipmentRecord,
        current_destination,
        destination_country,
        needs_risk_review,
        pseudonymous_address,
        recommend,
        risk_blocks_reship,
        validate_delivery_decision,
    )
    from domain.ids import FAILED_DELIVERY, carrier_claim_id
    from domain.outcomes import OrderOutcome
    from domain.risk import SCORE_ORDER, RiskAssessment, ScoreOrderInput
    from workflows.case import CaseBook, CaseFacts, PendingDecision, call_outside
    from workflows.steps import STEWARD, failure_reason, failure_type, wait_until

from workflows.failed_delivery_return import OUTSIDE_RETRY, FailedDeliveryReturn

# A late "delivered" is forwarded to the linked claim (runs before it were not).
PATCH_FORWARD_TO_CLAIM = "forward-delivered-to-claim"
# The customer's free-text reply stays in the case, out of the audit log
# (issue 21: personal data; runs before it wrote the text into the reason).
PATCH_REPLY_TEXT_PRIVATE = "customer-reply-text-private"
# One refusal whether a decision is being applied or already recorded.
ALREADY_DECIDED = "decision: this failed delivery is already decided"
# A label the carrier refuses for good goes back to a coordinator (another
# service, or return to stock and refund) instead of being retried for ever
# (issue 15; runs before it retried; only a refused booking reaches it).
PATCH_RESHIP_REFUSED = "reship-booking-refused"
# The coordinator's decision SLA counts in business hours of the market's desk
# where the market says so (issue 17; runs before it keep wall-clock SLAs).
PATCH_BUSINESS_HOURS_SLA = "failed-delivery-business-hours-sla"
# Refused this many times, the parcel goes back to stock without asking again.
MAX_RESHIP_BOOKINGS = 3


@workflow.defn(name=FailedDeliveryContract.WORKFLOW_TYPE)
class FailedDeliveryWorkflow(FailedDeliveryReturn):
    @workflow.init
    def __init__(self, input: FailedDeliveryInput) -> None:
        shipment = input.shipment
        self._shipment: ShipmentRecord = shipment
        self._policy = input.policy
        order = shipment.order
        self._state = FailedDeliveryState(
            shipment_id=shipment.shipment_id,
            order_id=order.order_id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=FailedDeliveryStatus.OPENED,
            attempt=shipment.attempt,
            amount_minor=order.payment.amount_minor,
            currency=order.payment.currency,
            trigger_status=input.trigger.status,
            claim_workflow_ids=[input.claim_workflow_id] if input.claim_workflow_id else [],
        )
        self._case = CaseBook(
            FAILED_DELIVERY,
            lambda: self._state.shipment_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            closed=CLOSED_DELIVERY_STATUSES,
            order_id=lambda: self._state.order_id,
            # The trigger also arrives as the start signal: it is a duplicate then.
            seen_event_ids={input.trigger.event_id},
        )
        self._message_sequence = 0
        # Latest event per tracking number, by carrier time (out-of-order safe).
        self._latest: dict[str, CarrierEvent] = {input.trigger.tracking_number: input.trigger}
        self._decision: PendingDecision[DeliveryDecisionRecord] = PendingDecision(
            busy=ALREADY_DECIDED
        )
        self._parcel_received: ParcelReceived | None = None
        self._reviewed_address: Destination | None = None
        self._claim_origin = input.claim_workflow_id

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: FailedDeliveryInput) -> FailedDeliveryResult:
        trigger = input.trigger
        self._case.audit(
            "failed_delivery_opened",
            reason=f"{trigger.status}"
            + (f" ({trigger.exception_code})" if trigger.exception_code else "")
            + (f" at {trigger.location}" if trigger.location else ""),
            after={
                "carrier": self._shipment.carrier,
                "tracking_number": self._shipment.tracking_number,
                "attempt": self._shipment.attempt,
                "event_id": trigger.event_id,
                "claim": input.claim_workflow_id,
            },
        )
        self._case.transition(
            FailedDeliveryStatus.OPENED, STEWARD, f"carrier reported {trigger.status}"
        )
        self._case.record_outcome(OrderOutcome.DELIVERY_FAILED, self._state.order_id)
        await self._case.flush()

        if self._shipment.attempt >= 2:
            # A reship that failed again: no second reship, no options to offer.
            self._state.second_failure = True
            self._case.audit("second_failure", reason="a second failure never reships")
            self._default_decision("second failed attempt")
            await self._return_and_refund(parcel_expected=trigger.status not in CLAIM_STATUSES)
        else:
            await self._contact_customer()
            if not self._delivered(self._shipment.tracking_number):
                await self._recommend()
                record = await self._await_decision()
                if record is not None:
                    await self._apply(record)
            if self._delivered(self._shipment.tracking_number) and (
                self._state.status not in CLOSED_DELIVERY_STATUSES
            ):
                self._close_task(STEWARD, "delivered")
                self._case.transition(
                    FailedDeliveryStatus.DELIVERED, STEWARD, "the carrier delivered after all"
                )
        await self._case.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FailedDeliveryResult(
            shipment_id=self._state.shipment_id,
            order_id=self._state.order_id,
            status=self._state.status,
            decision=self._state.decision.decision if self._state.decision else None,
            refunded_minor=self._state.amount_minor if self._state.refund_reference else 0,
            currency=self._state.currency,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query(name=FailedDeliveryContract.QUERY_STATUS)
    def status(self) -> FailedDeliveryState:
        return self._state

    @workflow.update(name=FailedDeliveryContract.UPDATE_DECIDE)
    async def decide(self, decision: DeliveryDecideInput) -> FailedDeliveryState:
        # Answer once the main loop took it, with the state it led to.
        await self._decision.hand_over(
            DeliveryDecisionRecord(
                decision=decision.decision,
                address=decision.address,
                address_ref=decision.address_ref,
                pickup_point_id=decision.pickup_point_id,
                service_level=decision.service_level,
                note=decision.note,
                actor=decision.actor,
                role=decision.role,
                decided_at=workflow.now(),
            )
        )
        return self._state

    @decide.validator
    def _validate_decide(self, decision: DeliveryDecideInput) -> None:
        self._decision.validate(lambda: self._decidable(decision), busy_type=DECISION_REJECTED)

    def _decidable(self, decision: DeliveryDecideInput) -> None:
        if self._state.decision is not None:
            raise ValueError(ALREADY_DECIDED)
        validate_delivery_decision(self._state, decision)

    @workflow.signal(name=FailedDeliveryContract.SIGNAL_CARRIER_EVENT)
    async def carrier_event(self, event: CarrierEvent) -> None:
        if not self._case.first_time(event.event_id):
            return
        latest = self._latest.get(event.tracking_number)
        applied = latest is None or event.occurred_at > latest.occurred_at
        if applied:
            self._latest[event.tracking_number] = event
        self._case.audit(
            "carrier_event" if applied else "carrier_event_out_of_order",
            actor=event.carrier,
            reason=f"{event.tracking_number}: {event.status}"
            + (f" ({event.exception_code})" if event.exception_code else ""),
            after={"event_id": event.event_id, "occurred_at": event.occurred_at},
        )
        await self._forward_to_claim(event)

    async def _forward_to_claim(self, event: CarrierEvent) -> None:
        """A parcel this case claimed for was delivered after all: the claim
        follows it through this case (the shipment's scans come here), so it
        is told, once per event id (first-time check above)."""
        if event.status is not TrackingStatus.DELIVERED:
            return
        claim_id = carrier_claim_id(event.carrier, event.tracking_number)
        # The claim that opened this case sends its own events here, not back.
        if claim_id == self._claim_origin or claim_id not in self._state.claim_workflow_ids:
            return
        if not workflow.patched(PATCH_FORWARD_TO_CLAIM):
            return
        try:
            await workflow.get_external_workflow_handle(claim_id).signal(
                CarrierClaimContract.SIGNAL_CARRIER_EVENT, event
            )
            action = "carrier_event_forwarded"
        except Exception as failure:  # the claim has closed: nothing waits for it
            action = "claim_not_signalled"
            self._case.audit(action, reason=str(failure), after={"claim_workflow_id": claim_id})
            return
        self._case.audit(
            action,
            reason=f"{event.tracking_number}: delivered, told the claim",
            after={"event_id": event.event_id, "claim_workflow_id": claim_id},
        )

    @workflow.signal(name=FailedDeliveryContract.SIGNAL_CUSTOMER_REPLIED)
    def customer_replied(self, reply: CustomerReply) -> None:
        if not self._case.first_time(reply.event_id):
            return
        # Every message is on record; only one before the decision counts.
        counts = self._state.decision is None and not self._decision.pending
        if counts:
            self._state.customer_reply = reply
        text = ""
        if reply.message_subject_id is not None:
            # Issue 21: the words are in the personal-data store, not here.
            text = " (with a message, kept in the personal-data store)"
        elif reply.message:
            private = workflow.patched(PATCH_REPLY_TEXT_PRIVATE)
            text = " (with a message, kept in the case)" if private else f": {reply.message}"
        self._case.audit(
            "customer_replied" if counts else "customer_replied_after_decision",
            actor="customer",
            reason=f"{reply.option} via {reply.channel}{text}",
            after={
                "event_id": reply.event_id,
                "option": reply.option,
                "pickup_point_id": reply.pickup_point_id,
                "preferred_date": reply.preferred_date.isoformat()
                if reply.preferred_date
                else None,
                "new_address_country": reply.new_address.country if reply.new_address else None,
            },
        )

    @workflow.signal(name=FailedDeliveryContract.SIGNAL_PARCEL_RECEIVED)
    def parcel_received(self, receipt: ParcelReceived) -> None:
        if not self._case.first_time(receipt.event_id):
            return
        if self._parcel_received is None:
            self._parcel_received = receipt
            self._state.parcel_received_at = receipt.received_at
        self._case.audit(
            "parcel_received",
            actor="warehouse",
            reason=receipt.note or "returned parcel received at the warehouse",
            after={"event_id": receipt.event_id, "received_at": receipt.received_at},
        )

    # ------------------------------------------------------------- customer

    async def _contact_customer(self) -> None:
        now = workflow.now()
        deadline = now + self._policy.customer_answer_timeout
        self._state.options_offered = list(ALL_OPTIONS)
        self._state.customer_deadline = deadline
        self._state.awaited_role = None
        self._state.due_at = deadline
        self._case.audit(
            "customer_options_offered",
            reason=", ".join(self._state.options_offered),
            after={"deadline": deadline, "reminder_at": now + self._policy.customer_reminder_after},
        )
        self._case.transition(FailedDeliveryStatus.AWAITING_CUSTOMER, STEWARD, "options sent")
        await self._case.flush()
        await self._notify(DeliveryTemplate.DELIVERY_OPTIONS, deadline=deadline)

        def answered() -> bool:
            return (
                self._state.customer_reply is not None
                or self._decision.pending
                or self._delivered(self._shipment.tracking_number)
            )

        reminder_at = now + self._policy.customer_reminder_after
        if await wait_until(answered, until=reminder_at, timer="customer-reminder"):
            return
        await self._notify(DeliveryTemplate.DELIVERY_REMINDER, deadline=deadline)
        if not await wait_until(answered, until=deadline, timer="customer-answer-deadline"):
            self._case.audit("customer_silent", reason=f"no answer by {deadline.isoformat()}")

    # ------------------------------------------------------ recommendation

    async def _recommend(self) -> None:
        reply = self._state.customer_reply
        risk: RiskAssessment | None = None
        if (
            reply is not None
            and reply.option is CustomerOption.NEW_ADDRESS
            and reply.new_address is not None
            and not self._decision.pending
        ):
            risk = await self._review_address(reply.new_address)
        recommendation = recommend(
            reply=reply,
            attempt=self._state.attempt,
            amount_minor=self._state.amount_minor,
            policy=self._policy,
            risk=risk,
            trigger=self._state.trigger_status,
            currency=self._state.currency,
        )
        self._state.recommendation = recommendation
        self._case.audit(
            "recommendation",
            reason="; ".join(recommendation.reasons),
            after={
                "decision": recommendation.decision,
                "reship_blocked": recommendation.reship_blocked,
            },
        )

    async def _review_address(self, address: Destination) -> RiskAssessment | None:
        """Rescore the order as if placed to `address`, when the policy asks.

        The scoring activity, not an OrderReviewWorkflow child: the review
        would capture and release the order again, and its id is taken by the
        original review; the scoring activity applies the same versioned rules
        with no side effect beyond its velocity signals.
        """
        if not needs_risk_review(self._shipment, address, self._policy):
            return None
        if self._reviewed_address == address:
            return self._state.risk
        self._case.transition(
            FailedDeliveryStatus.RISK_REVIEW, STEWARD, "new address on a high-value parcel"
        )
        await self._case.flush()
        if self._shipment.subject_id is not None or isinstance(address, AddressRef):
            # Issue 21: the order is pseudonymised here, or the new address is
            # kept by reference (the API relays it so, also to a case started
            # before); the activity reads the values from the store. Depends
            # on the input and the signal only: runs before never take it.
            risk = await call_outside(
                SCORE_DELIVERY_ADDRESS,
                ScoreDeliveryAddressInput(
                    workflow_id=workflow.info().workflow_id,
                    shipment_id=self._shipment.shipment_id,
                    subject_id=self._shipment.subject_id,
                    address=None if isinstance(address, AddressRef) else address,
                    address_ref=address if isinstance(address, AddressRef) else None,
                ),
                result_type=RiskAssessment,
                retry=OUTSIDE_RETRY,
                summary="score the new address",
            )
        else:
            order = self._shipment.order.model_copy(update={"shipping_address": address})
            risk = await call_outside(
                SCORE_ORDER,
                ScoreOrderInput(order=order),
                result_type=RiskAssessment,
                retry=OUTSIDE_RETRY,
                summary="score the new address",
            )
        self._state.risk = risk
        self._reviewed_address = address
        self._case.audit(
            "address_risk_reviewed",
            reason=", ".join(risk.reason_codes) or "no risk signal",
            after={
                "score": risk.score,
                "band": risk.band,
                "routing": risk.routing,
                "rule_set_version": risk.rule_set_version,
                "country": destination_country(address),
            },
        )
        return risk

    # ------------------------------------------------------------ decision

    async def _await_decision(self) -> DeliveryDecisionRecord | None:
        """The coordinator's decision, or the configured default at the SLA.
        None: the carrier delivered meanwhile."""
        if not self._decision.pending:
            due = self._decision_due()
            self._open_task("decision", due, Role.COORDINATOR)
            self._case.transition(
                FailedDeliveryStatus.AWAITING_DECISION, STEWARD, "decision task opened"
            )
            await self._case.flush()
            decided = await wait_until(
                lambda: self._decision.pending or self._delivered(self._shipment.tracking_number),
                until=due,
                timer="decision-sla",
            )
            if not self._decision.pending and self._delivered(self._shipment.tracking_number):
                return None
            if not decided:
                return self._default_decision("no decision within the SLA")
        record = self._decision.take()
        assert record is not None
        self._record_decision(record)
        return record

    def _default_decision(self, why: str) -> DeliveryDecisionRecord:
        rec = self._state.recommendation
        reply = self._state.customer_reply
        follow = self._policy.default_action is DefaultDeliveryAction.FOLLOW_RECOMMENDATION
        decision = (
            rec.decision
            if follow and rec is not None and not self._state.second_failure
            else DeliveryDecision.RETURN_TO_STOCK
        )
        address = None
        address_ref = None
        pickup = None
        if decision is DeliveryDecision.RESHIP and reply is not None:
            if reply.option is CustomerOption.NEW_ADDRESS:
                address, address_ref = reply.address, reply.address_ref
            pickup = reply.pickup_point_id if reply.option is CustomerOption.PICKUP_POINT else None
        record = DeliveryDecisionRecord(
            decision=decision,
            address=address,
            address_ref=address_ref,
            pickup_point_id=pickup,
            service_level=self._service_level(),
            note=f"{why}; default {self._policy.default_action} applied",
            actor=STEWARD,
            role=Role.SYSTEM,
            decided_at=workflow.now(),
            by_default=True,
        )
        self._record_decision(record)
        return record

    def _record_decision(self, record: DeliveryDecisionRecord) -> None:
        self._state.decision = record
        self._case.audit(
            f"decision_{record.decision}",
            actor=record.actor,
            role=record.role,
            reason=record.note or record.decision,
            before={"status": self._state.status},
            after={
                "decision": record.decision,
                "service_level": record.service_level,
                "by_default": record.by_default,
                "new_address_country": record.new_address.country if record.new_address else None,
                "pickup_point_id": record.pickup_point_id,
            },
        )
        self._close_task(record.actor, record.decision)

    async def _apply(self, record: DeliveryDecisionRecord) -> None:
        if record.decision is DeliveryDecision.RESHIP:
            await self._reship(record)
        else:
            lost = self._state.trigger_status in CLAIM_STATUSES
            await self._return_and_refund(parcel_expected=not lost)

    # --------------------------------------------------------------- reship

    async def _reship(self, record: DeliveryDecisionRecord) -> None:
        # Issue 21: a pseudonymised shipment's own address is its subject's
        # (a reference); runs started before hold the address itself.
        destination = record.new_address or current_destination(self._shipment)
        if needs_risk_review(self._shipment, destination, self._policy):
            risk = await self._review_address(destination)
            if risk_blocks_reship(risk):
                self._case.audit(
                    "reship_blocked_by_risk",
                    reason="risk review refused the new address; returning to stock instead",
                )
                await self._return_and_refund(
                    parcel_expected=self._state.trigger_status not in CLAIM_STATUSES
                )
                return
        booking = await self._book(record, destination)
        if booking is None:
            await self._return_and_refund(
                parcel_expected=self._state.trigger_status not in CLAIM_STATUSES
            )
            return
        booked, record, destination = booking
        self._state.reship_shipment_id = booked.shipment_id
        self._state.reship_tracking_number = booked.tracking_number
        self._state.due_at = booked.expected_delivery_at
        self._case.audit(
            "reshipped",
            actor=record.actor,
            role=record.role,
            reason=f"{booked.carrier} {booked.tracking_number} ({record.service_level})",
            after={
                "shipment_id": booked.shipment_id,
                "tracking_number": booked.tracking_number,
                "expected_delivery_at": booked.expected_delivery_at,
                "destination_country": destination_country(destination),
            },
        )
        self._case.transition(
            FailedDeliveryStatus.RESHIPPED, STEWARD, f"second shipment {booked.shipment_id}"
        )
        await self._case.flush()
        await self._notify(DeliveryTemplate.RESHIPPED)

        tracking = booked.tracking_number
        until = workflow.now() + self._policy.reship_tracking_timeout
        arrived = await wait_until(
            lambda: self._final_status(tracking) is not None, until=until, timer="reship-tracking"
        )
        outcome = self._final_status(tracking)
        if not arrived or outcome is None:
            self._case.audit(
                "reship_not_delivered",
                reason=f"no delivery scan by {until.isoformat()}; presumed lost",
            )
            await self._open_claim(booked.shipment_id, tracking, ClaimType.LOST)
            await self._refund()
            return
        if outcome is TrackingStatus.DELIVERED:
            self._case.transition(
                FailedDeliveryStatus.DELIVERED, STEWARD, "second shipment delivered"
            )
            return
        if outcome in FAILURE_STATUSES:
            self._state.second_failure = True
            self._case.audit("second_failure", reason="a second failure never reships")
            await self._return_and_refund(parcel_expected=True, tracking=tracking)
            return
        await self._open_claim(
            booked.shipment_id,
            tracking,
            ClaimType.DAMAGED if outcome is TrackingStatus.DAMAGED else ClaimType.LOST,
        )
        await self._refund()

    async def _book(
        self, record: DeliveryDecisionRecord, destination: Destination
    ) -> tuple[BookReshipmentResult, DeliveryDecisionRecord, Destination] | None:
        """Book the second shipment: the full destination address, and the
        customer's preferred date as the earliest delivery. A refused label
        goes to a coordinator; None: the parcel goes back to stock instead."""
        reply = self._state.customer_reply
        earliest = reply.preferred_date if reply is not None else None
        attempt = 1
        while True:
            try:
                booked = await call_outside(
                    BOOK_RESHIPMENT,
                    BookReshipmentInput(
                        workflow_id=workflow.info().workflow_id,
                        original_shipment_id=self._shipment.shipment_id,
                        order_id=self._state.order_id,
                        carrier=self._shipment.carrier,
                        # A kept address goes by reference (the activity reads it).
                        destination=pseudonymous_address(destination.country)
                        if isinstance(destination, AddressRef)
                        else destination,
                        destination_ref=destination
                        if isinstance(destination, AddressRef)
                        else None,
                        pickup_point_id=record.pickup_point_id,
                        service_level=record.service_level,
                        shipment=self._shipment,
                        earliest_delivery=earliest,
                        booking_attempt=attempt,
                    ),
                    result_type=BookReshipmentResult,
                    retry=OUTSIDE_RETRY,
                    summary="book the second shipment",
                )
                return booked, record, destination
            except ActivityError as failure:
                if failure_type(failure) != RESHIP_BOOKING_REFUSED or not workflow.patched(
                    PATCH_RESHIP_REFUSED
                ):
                    raise
                again = await self._reship_refused(record, failure, attempt)
                if again is None:
                    return None
                record = again
                destination = again.new_address or destination
                attempt += 1

    async def _reship_refused(
        self, record: DeliveryDecisionRecord, failure: ActivityError, attempt: int
    ) -> DeliveryDecisionRecord | None:
        """The coordinator's next move after a refused label: another reship
        (another service level, or address) or None for a return to stock,
        which is also the default at the decision SLA."""
        self._case.audit(
            "reship_refused",
            actor=self._shipment.carrier,
            reason=failure_reason(failure),
            after={"service_level": record.service_level, "booking_attempt": attempt},
        )
        if attempt >= MAX_RESHIP_BOOKINGS:
            self._case.audit(
                "reship_abandoned", reason=f"{attempt} labels refused; returning to stock"
            )
            return None
        # A new decision is awaited (the `decide` update takes it again).
        self._state.decision = None
        due = self._decision_due()
        self._open_task(f"reship_refused_{attempt}", due, Role.COORDINATOR)
        self._case.transition(
            FailedDeliveryStatus.AWAITING_DECISION,
            STEWARD,
            f"{self._shipment.carrier} refused the {record.service_level} label: "
            "choose another service or return to stock",
        )
        await self._case.flush()
        if await wait_until(lambda: self._decision.pending, until=due, timer="reship-refused-sla"):
            decided = self._decision.take()
            assert decided is not None
        else:
            decided = DeliveryDecisionRecord(
                decision=DeliveryDecision.RETURN_TO_STOCK,
                note="no decision after the refused label; default return to stock",
                actor=STEWARD,
                role=Role.SYSTEM,
                decided_at=workflow.now(),
                by_default=True,
            )
        self._record_decision(decided)
        return decided if decided.decision is DeliveryDecision.RESHIP else None

    # -------------------------------------------------------------- helpers

    def _decision_due(self) -> datetime:
        """When a coordinator's decision is due (and the default acts): in
        business hours of the policy's calendar (the market desk's, where the
        market counts coordinator SLAs in business hours), else wall-clock."""
        now = workflow.now()
        calendar = self._policy.calendar
        if calendar is None or not workflow.patched(PATCH_BUSINESS_HOURS_SLA):
            return now + self._policy.decision_sla
        return sla_due(
            calendar,
            now,
            business=self._policy.decision_business_sla,
            wall_clock=self._policy.decision_sla,
        )

    def _service_level(self) -> ServiceLevel:
        # The high-value line of the parcel's currency (cases started before
        # the per-currency table keep their flat one: same input, same answer).
        if self._state.amount_minor >= self._policy.rescore_from(self._state.currency):
            return ServiceLevel.SIGNATURE_REQUIRED
        return self._shipment.service_level

    def _delivered(self, tracking: str) -> bool:
        latest = self._latest.get(tracking)
        return latest is not None and latest.status is TrackingStatus.DELIVERED

    def _final_status(self, tracking: str) -> TrackingStatus | None:
        latest = self._latest.get(tracking)
        if latest is None or latest.status in (
            TrackingStatus.IN_TRANSIT,
            TrackingStatus.OUT_FOR_DELIVERY,
        ):
            return None
        return latest.status

    # ------------------------------------------------------------ the case

    def _history(self, status: FailedDeliveryStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            DeliveryStatusChange(at=workflow.now(), status=status, actor=actor, reason=reason)
        )

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state, self._money()),
            amount_minor=state.amount_minor,
            currency=state.currency,
            market=self._shipment.order.market,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _details(state: FailedDeliveryState, money: str) -> str:
    lines = [
        f"**{state.status.replace('_', ' ').capitalize()}** · shipment {state.shipment_id} · "
        f"order {state.order_id}",
        f"{state.carrier} {state.tracking_number} · attempt {state.attempt} · {money}",
    ]
    if state.recommendation:
        lines.append(f"Recommendation: {state.recommendation.decision}")
    if state.decision:
        lines.append(f"Decision: {state.decision.decision} by {state.decision.actor}")
    if state.awaited_role and state.due_at:
        lines.append(
            f"Waiting for **{state.awaited_role}** · due {state.due_at:%Y-%m-%d %H:%M} UTC"
        )
    if state.claim_workflow_ids:
        lines.append("Claims: " + ", ".join(state.claim_workflow_ids))
    return "\n\n".join(lines)
