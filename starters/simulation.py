"""What `steward simulate` sends after the orders, so a demo stack has data
for every report (issue 19, docs/reports.md): coordinators deciding the
reviews that wait for them, disputes answered and then won, lost or
accepted, returns carried back with the 3PL's grades (and refunds), the
warehouse moving released orders towards the carrier, and ops desk requests
opened and resolved.

Each step is a function over a Temporal client and the store's pool, seeded
and idempotent where the process is (a re-run with the same seed finds its
cases already started or decided). `tests/integration/test_simulation.py`
runs them after a small order run and checks that every report of the
catalogue has rows.

Reviews a coordinator does not take here (a share is left on purpose) wait
in the queue and breach their SLA once its business hours have passed; the
service-level report shows them as breached from then on.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from temporalio.client import Client

from activities.campaign import seed_demo_sale_world
from clients import campaign as campaign_client
from clients import chargeback, ops_request
from clients import order_review as review_client
from clients import returns as returns_client
from domain.campaign import (
    ROSTER_COLUMNS,
    ApprovalInput,
    CampaignOrderLine,
    CampaignOrderRequest,
    CampaignParameters,
    CampaignStatus,
    PriceLine,
    Quota,
    SubmitInput,
    parse_roster,
    schedule_for,
)
from domain.chargeback import DisputeEvent, DisputePolicy
from domain.chargeback.codes import DisputeEventKind, ResponseAction
from domain.chargeback.lifecycle import RespondInput
from domain.common import Role
from domain.ids import ORDER_REVIEW
from domain.ops_request import (
    Channel,
    OpsRequestContract,
    OpsRequestDraft,
    OrderStatusDetails,
    OtherDetails,
    OutcomeCode,
    QcCheckDetails,
    ResolveInput,
    RootCause,
)
from domain.ops_request import ClaimInput as OpsClaimInput
from domain.orders import ItemCategory, Order
from domain.returns import (
    CLOSED_RETURN_STATUSES,
    FinanceApprovalInput,
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    ReturnStatus,
)
from domain.review import DecideInput, DecisionReason, ReviewDecision, ReviewStatus
from starters import carrier_events_simulator, chargeback_simulator, fulfilment_simulator
from starters.carrier_events_simulator import ParcelReport
from starters.chargeback_simulator import DisputeReport
from starters.returns_simulator import ReturnsReport, plan_returns, run_returns
from starters.simulator import (
    SeedReport,
    SendReport,
    SimulatedOrder,
    Traffic,
    seed_signals,
    send_orders,
)
from store import campaign as campaign_store
from store import cases
from store import disputes as dispute_store
from workers.settings import Settings

COORDINATORS = ("camille", "hugo", "ines")
MANAGER = "marc"
RETURNS_COORDINATOR = "rosa"
FINANCE = "fiona"
# Of the reviews waiting for a person: approved, declined, left waiting.
APPROVE_SHARE = 0.55
DECLINE_SHARE = 0.25
APPROVE_REASONS = (
    DecisionReason.VERIFIED_CUSTOMER,
    DecisionReason.CUSTOMER_CONFIRMED,
    DecisionReason.LOW_RISK_ON_REVIEW,
)
DECLINE_REASONS = (
    DecisionReason.SUSPECTED_FRAUD,
    DecisionReason.STOLEN_CARD,
    DecisionReason.RESELLER,
)
# How long one decision may take before the run reports it and goes on.
UPDATE_WAIT_SECONDS = 30.0
ROOT_CAUSES = (RootCause.CUSTOMER_REQUEST, RootCause.CARRIER_ISSUE, RootCause.SYSTEM_ERROR)
# Share of released orders that come back as a return (at least one).
RETURN_SHARE = 0.25


@dataclass
class DecisionReport:
    approved: int = 0
    declined: int = 0
    left_waiting: int = 0
    refused: int = 0
    by_coordinator: Counter[str] = field(default_factory=Counter)


async def decide_reviews(
    client: Client, pool: asyncpg.Pool, orders: Sequence[Order], *, seed: int
) -> DecisionReport:
    """Coordinators take the reviews waiting for them: most approved, some
    declined with a reason code, a share left in the queue."""
    rng = random.Random(seed * 31 + 5)
    report = DecisionReport()
    found = await cases.statuses(pool, ORDER_REVIEW, [o.order_id for o in orders])
    waiting = [o for o in orders if found.get(o.order_id) == ReviewStatus.AWAITING_REVIEW]
    for order in waiting:
        draw = rng.random()
        if draw >= APPROVE_SHARE + DECLINE_SHARE:
            report.left_waiting += 1
            continue
        approve = draw < APPROVE_SHARE
        who = rng.choice(COORDINATORS)
        decision = DecideInput(
            decision=ReviewDecision.APPROVE if approve else ReviewDecision.DECLINE,
            reason_code=rng.choice(APPROVE_REASONS if approve else DECLINE_REASONS),
            actor=who,
            role=Role.COORDINATOR,
        )
        try:
            await review_client.decide(
                client, order.order_id, decision, update_id=f"simulate/{order.order_id}/decide"
            )
        except review_client.DecisionRefused:
            # Escalated to a manager already, or the deadline's default acted.
            report.refused += 1
            continue
        report.by_coordinator[who] += 1
        if approve:
            report.approved += 1
        else:
            report.declined += 1
    return report


@dataclass
class DisputeOutcomeReport:
    won: int = 0
    lost: int = 0
    accepted: int = 0
    not_ready: int = 0
    errors: list[str] = field(default_factory=list)


async def _awaiting_coordinator(
    pool: asyncpg.Pool, events: Sequence[DisputeEvent], *, wait_seconds: float
) -> list[DisputeEvent]:
    """The disputes whose case waits for a coordinator, waiting up to
    `wait_seconds` for all of them (evidence is assembled first)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        ready = []
        for event in events:
            row = await dispute_store.get(pool, event.provider.value, event.dispute_id)
            if row is not None and row.status == "awaiting_coordinator":
                ready.append(event)
        if len(ready) == len(events) or loop.time() >= deadline:
            return ready
        await asyncio.sleep(0.2)


async def settle_disputes(
    client: Client,
    pool: asyncpg.Pool,
    events: Sequence[DisputeEvent],
    *,
    task_queue: str,
    policy: DisputePolicy,
    wait_seconds: float = 15.0,
) -> DisputeOutcomeReport:
    """The chargeback coordinators answer the disputes simulate opened, then
    the providers close them: Stripe disputes are contested and won or lost
    in turn; Adyen chargebacks are accepted."""
    report = DisputeOutcomeReport()
    opened = [e for e in events if e.kind is DisputeEventKind.OPENED]
    ready = await _awaiting_coordinator(pool, opened, wait_seconds=wait_seconds)
    report.not_ready = len(opened) - len(ready)
    stripe_count = 0
    for event in ready:
        contest = event.provider.value == "stripe"
        try:
            await chargeback.respond(
                client,
                event.provider.value,
                event.dispute_id,
                RespondInput(
                    action=ResponseAction.CONTEST if contest else ResponseAction.ACCEPT,
                    note="proof of delivery and the customer's order history"
                    if contest
                    else "amount too small to defend",
                    override_missing_evidence=contest,
                    actor=MANAGER,
                    role=Role.MANAGER,
                ),
                update_id=f"simulate/{event.dispute_id}/respond",
            )
            if not contest:
                report.accepted += 1
                continue
            won = stripe_count % 2 == 0
            stripe_count += 1
            closed = event.model_copy(
                update={
                    "event_id": f"{event.event_id}/closed",
                    "kind": DisputeEventKind.WON if won else DisputeEventKind.LOST,
                    "provider_event": "charge.dispute.closed",
                    "provider_status": "won" if won else "lost",
                    "occurred_at": datetime.now(UTC),
                }
            )
            await chargeback.deliver_event(
                client, pool, closed, task_queue=task_queue, policy=policy
            )
            if won:
                report.won += 1
            else:
                report.lost += 1
        except Exception as err:  # one dispute must not stop the run; it is reported
            report.errors.append(f"{event.provider} {event.dispute_id}: {err}")
    return report


async def send_returns(
    client: Client,
    released: Sequence[Order],
    *,
    seed: int,
    task_queue: str,
    pool: asyncpg.Pool | None = None,
) -> tuple[ReturnsReport, list[str]]:
    """A share of the released orders comes back: carrier scans, the 3PL's
    grade, then a refund, an exchange or a manual QC task."""
    if not released:
        return ReturnsReport(), []
    rng = random.Random(seed * 17 + 11)
    count = max(1, round(len(released) * RETURN_SHARE))
    chosen = rng.sample(list(released), count)
    scenarios = plan_returns(seed, chosen, datetime.now(UTC))
    # `pool`: started as the API starts them, the customers' emails kept in
    # the personal-data store (issue 21).
    report = await run_returns(client, scenarios, task_queue, db=pool)
    return report, [s.request.rma_id for s in scenarios]


@dataclass
class ReturnDecisionReport:
    qc_decided: int = 0
    finance_approved: int = 0
    errors: list[str] = field(default_factory=list)


async def _return_status(client: Client, rma_id: str, wanted: set[ReturnStatus]) -> ReturnStatus:
    """The return's status once it is one of `wanted` or has stopped moving (a few seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    status = (await returns_client.get_status(client, rma_id)).status
    while status not in wanted and loop.time() < deadline:
        await asyncio.sleep(0.2)
        status = (await returns_client.get_status(client, rma_id)).status
    return status


async def decide_returns(client: Client, rma_ids: Sequence[str]) -> ReturnDecisionReport:
    """The returns coordinator takes a second look at what the 3PL could not
    grade first choice (an uncertain item found unworn is refunded, a second
    choice item refunded in part, a KO one sent back), and finance approves the
    refunds above its threshold (a different person: four eyes)."""
    report = ReturnDecisionReport()
    waiting = {ReturnStatus.MANUAL_QC, ReturnStatus.AWAITING_FINANCE}
    who: dict[str, Any] = {"actor": RETURNS_COORDINATOR, "role": Role.COORDINATOR}
    for rma_id in rma_ids:
        try:
            state = await returns_client.get_status(client, rma_id)
            if state.status is ReturnStatus.MANUAL_QC:
                grade = state.qc.grade if state.qc else QcGrade.UNCERTAIN
                if grade is QcGrade.UNCERTAIN:
                    decision = QcDecisionInput(
                        grade=QcGrade.FIRST_CHOICE, reason="second look: unworn, tags on", **who
                    )
                elif grade is QcGrade.SECOND_CHOICE:
                    decision = QcDecisionInput(
                        grade=grade,
                        reason="light wear",
                        outcome=QcOutcome.PARTIAL_REFUND,
                        partial_refund_minor=max(1, state.value_minor // 2),
                        **who,
                    )
                else:
                    decision = QcDecisionInput(
                        grade=grade,
                        reason="damaged",
                        outcome=QcOutcome.RETURN_TO_CUSTOMER,
                        **who,
                    )
                await returns_client.decide_qc(
                    client, rma_id, decision, update_id=f"simulate/{rma_id}/qc"
                )
                report.qc_decided += 1
                status = await _return_status(client, rma_id, waiting | CLOSED_RETURN_STATUSES)
            else:
                status = state.status
            if status is ReturnStatus.AWAITING_FINANCE:
                await returns_client.approve_refund(
                    client,
                    rma_id,
                    FinanceApprovalInput(approved=True, actor=FINANCE, role=Role.FINANCE),
                    update_id=f"simulate/{rma_id}/finance",
                )
                report.finance_approved += 1
        except Exception as err:  # reported per return; the run goes on
            report.errors.append(f"{rma_id}: {type(err).__name__}: {err}")
    return report


async def move_warehouse(
    client: Client, pool: asyncpg.Pool, *, hours: Sequence[float] = (4.0, 12.0, 28.0)
) -> fulfilment_simulator.WarehouseReport:
    """The simulated warehouse works through its next day at once (warehouse
    time `hours` ahead of now, in steps): released orders are allocated,
    picked, packed and handed over; a held order is refused at picking."""
    report = fulfilment_simulator.WarehouseReport()
    now = datetime.now(UTC)
    for ahead in hours:
        await fulfilment_simulator.tick(client, pool, now + timedelta(hours=ahead), report)
    return report


@dataclass
class OpsReport:
    opened: int = 0
    resolved: int = 0
    refused: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


async def ops_desk_requests(
    client: Client,
    pool: asyncpg.Pool,
    orders: Sequence[Order],
    *,
    seed: int,
    task_queue: str,
    count: int = 6,
) -> OpsReport:
    """Customer service asks the ops desk about some orders (status questions
    the desk answers by itself, QC checks, other requests); coordinators take
    most of the others and resolve them with a root cause."""
    rng = random.Random(seed * 13 + 7)
    report = OpsReport()
    if not orders:
        return report
    now = datetime.now(UTC)
    for number in range(count):
        order = rng.choice(list(orders))
        kind = number % 3
        if kind == 0:
            draft = OpsRequestDraft(details=OrderStatusDetails(order_id=order.order_id))
        elif kind == 1:
            draft = OpsRequestDraft(
                details=QcCheckDetails(order_id=order.order_id, reason="client asks for photos")
            )
        else:
            draft = OpsRequestDraft(details=OtherDetails(order_id=order.order_id))
        request_id = ops_request.derived_request_id("simulate", f"{seed}/{number}")
        try:
            opened = await ops_request.open_request(
                client,
                pool,
                draft,
                requester=f"cs-agent-{number % 4}",
                channel=Channel.API,
                task_queue=task_queue,
                now=now,
                request_id=request_id,
            )
        except ops_request.IntakeRefused as refused:
            report.refused += 1
            report.errors.append(f"{request_id}: {refused}")
            continue
        report.opened += int(opened.created)
        report.by_type[draft.type.value] += 1
        if kind == 0 or number % 4 == 1:
            # An order status question is answered by the desk's workflow
            # itself; a share of the others is left with the desk.
            continue
        who = rng.choice(COORDINATORS)
        try:
            await asyncio.wait_for(
                ops_request.decide(
                    client,
                    request_id,
                    OpsRequestContract.UPDATE_CLAIM,
                    OpsClaimInput(actor=who, role=Role.COORDINATOR),
                    update_id=f"simulate/{request_id}/claim",
                ),
                UPDATE_WAIT_SECONDS,
            )
            await ops_request.decide(
                client,
                request_id,
                OpsRequestContract.UPDATE_RESOLVE,
                ResolveInput(
                    actor=who,
                    role=Role.COORDINATOR,
                    outcome=OutcomeCode.ANSWERED,
                    root_cause=rng.choice(ROOT_CAUSES),
                ),
                update_id=f"simulate/{request_id}/resolve",
            )
            report.resolved += 1
        except Exception as err:  # reported per request; the run goes on
            report.errors.append(f"{request_id}: {type(err).__name__}: {err}")
    return report


# The employee sale simulate runs: the demo world's SKUs (activities/campaign.py).
SALE_PRICES: tuple[tuple[str, str, ItemCategory, int, int], ...] = (
    ("HB-TOTE-MM-NOIR", "Tote MM, black", ItemCategory.HANDBAGS, 245_000, 122_500),
    ("SLG-WALLET-NOIR", "Compact wallet, black", ItemCategory.SMALL_LEATHER_GOODS, 60_000, 30_000),
    ("ACC-SCARF-90-SOIE", "Silk scarf 90", ItemCategory.ACCESSORIES, 45_000, 22_500),
)
SALE_EMPLOYEES = 8
SALE_WAIT_SECONDS = 30.0


@dataclass
class CampaignReport:
    campaign_id: str = ""
    started: bool = False
    status: str = ""
    orders_accepted: int = 0
    orders_refused: int = 0
    errors: list[str] = field(default_factory=list)


async def _campaign_status(
    client: Client, campaign_id: str, wanted: set[CampaignStatus], wait_seconds: float
) -> CampaignStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        status = (await campaign_client.get_campaign(client, campaign_id)).status
        if status in wanted or loop.time() >= deadline:
            return status
        await asyncio.sleep(0.2)


async def run_employee_sale(
    client: Client,
    pool: asyncpg.Pool,
    templates: Sequence[Order],
    *,
    seed: int,
    task_queue: str,
    opens_in: timedelta = timedelta(seconds=4),
) -> CampaignReport:
    """A short employee sale: prepared and submitted by one coordinator,
    approved by a manager (four eyes), opened on its timer, then a few
    employees order (one over their quota is refused). The campaign stays
    open for two hours; its id follows the seed and the day, so a second run
    the same day finds it and sends nothing twice."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    campaign_id = f"SIM-ES-{seed}-{day}"
    report = CampaignReport(campaign_id=campaign_id)
    if not templates:
        return report
    await seed_demo_sale_world(pool)
    zone = ZoneInfo("Europe/Paris")
    now = datetime.now(UTC)
    entity = f"Maison Sim {seed}"

    def local(at: datetime) -> datetime:
        return at.astimezone(zone).replace(tzinfo=None, microsecond=0)

    params = CampaignParameters(
        campaign_id=campaign_id,
        name=f"Simulated employee sale {day}",
        timezone="Europe/Paris",
        opens_local=local(now + opens_in),
        closes_local=local(now + timedelta(hours=2)),
        legal_entities=[entity],
        countries=["FR"],
        currency="EUR",
        site="PAR-1",
        quotas={"G1": Quota(max_units=2, max_amount_minor=2_000_000)},
        prices=[
            PriceLine(
                sku=sku,
                name=name,
                category=category,
                list_price_minor=list_price,
                sale_price_minor=sale_price,
                allocated_units=6,
            )
            for sku, name, category, list_price, sale_price in SALE_PRICES
        ],
    )
    schedule = schedule_for(params)
    try:
        report.started = await campaign_client.start_campaign(
            client, pool, params, schedule, COORDINATORS[0], task_queue
        )
        if not report.started:
            return report
        record = await campaign_store.get_campaign(pool, campaign_id)
        rows = "".join(
            f"SIM{seed}-E{n:03d},Employee {n},e{n}.{seed}@maison.example,{entity},FR,G1,"
            "2020-01-06,\n"
            for n in range(SALE_EMPLOYEES)
        )
        parsed = parse_roster(
            (",".join(ROSTER_COLUMNS) + "\n" + rows).encode(),
            params,
            sale_opens=record.opens_at.date(),
            sale_closes=record.closes_at.date(),
        )
        await campaign_store.import_roster(pool, campaign_id, parsed)
        await campaign_client.submit(
            client,
            campaign_id,
            SubmitInput(actor=COORDINATORS[0], role=Role.COORDINATOR),
            update_id=f"simulate/{campaign_id}/submit",
        )
        await _campaign_status(
            client, campaign_id, {CampaignStatus.AWAITING_APPROVAL}, SALE_WAIT_SECONDS
        )
        await campaign_client.approve(
            client,
            campaign_id,
            ApprovalInput(
                approve=True, acknowledge_warnings=True, actor=MANAGER, role=Role.MANAGER
            ),
            update_id=f"simulate/{campaign_id}/approve",
        )
        status = await _campaign_status(
            client, campaign_id, {CampaignStatus.OPEN}, SALE_WAIT_SECONDS
        )
        report.status = status.value
        if status is not CampaignStatus.OPEN:
            report.errors.append(f"{campaign_id}: {status.value}, not open")
            return report
        rng = random.Random(seed * 41 + 3)
        prices = {sku: sale for sku, _n, _c, _l, sale in SALE_PRICES}
        for n in range(SALE_EMPLOYEES - 2):
            template = templates[n % len(templates)]
            # The last one asks for three units: over the quota of two.
            lines = (
                [(SALE_PRICES[0][0], 3)]
                if n == SALE_EMPLOYEES - 3
                else [(sku, 1) for sku in rng.sample(list(prices), rng.randint(1, 2))]
            )
            order_id = f"{campaign_id}-{n:03d}"
            amount = sum(prices[sku] * quantity for sku, quantity in lines)
            request = CampaignOrderRequest(
                order_id=order_id,
                employee_id=f"SIM{seed}-E{n:03d}",
                lines=[CampaignOrderLine(sku=sku, quantity=q) for sku, q in lines],
                shipping_address=template.shipping_address,
                payment=template.payment.model_copy(
                    update={
                        "authorisation_ref": f"auth-{order_id}",
                        "amount_minor": amount,
                        "currency": params.currency,
                    }
                ),
                device=template.device,
            )
            decision = await campaign_client.place_order(
                client, pool, campaign_id, request, task_queue
            )
            if decision.accepted:
                report.orders_accepted += 1
            else:
                report.orders_refused += 1
    except Exception as err:  # reported; the rest of the run goes on
        report.errors.append(f"{campaign_id}: {type(err).__name__}: {err}")
    return report


@dataclass
class SimulationReport:
    seeded: SeedReport
    sent: SendReport
    decisions: DecisionReport = field(default_factory=DecisionReport)
    disputes: DisputeReport = field(default_factory=DisputeReport)
    dispute_outcomes: DisputeOutcomeReport = field(default_factory=DisputeOutcomeReport)
    parcels: ParcelReport = field(default_factory=ParcelReport)
    returns: ReturnsReport = field(default_factory=ReturnsReport)
    return_decisions: ReturnDecisionReport = field(default_factory=ReturnDecisionReport)
    warehouse: fulfilment_simulator.WarehouseReport = field(
        default_factory=fulfilment_simulator.WarehouseReport
    )
    ops: OpsReport = field(default_factory=OpsReport)
    campaign: CampaignReport = field(default_factory=CampaignReport)


async def run_simulation(
    client: Client,
    pool: asyncpg.Pool,
    settings: Settings,
    traffic: Traffic,
    *,
    seed: int,
    rate: float,
    ship_wait_seconds: float,
    on_sent: Callable[[SimulatedOrder, bool | None], None] | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> SimulationReport:
    """Everything `steward simulate` does, in order. The store must be
    migrated and the personal-data store configured (order reviews start
    with the orders' personal values in it, never in Temporal in clear)."""
    task_queue = settings.task_queue
    seeded = await seed_signals(pool, traffic)

    async def start(order: Order) -> bool:
        return (await review_client.start_review(client, order, task_queue, db=pool)).started

    sent = await send_orders(start, traffic.orders, rate, on_sent=on_sent)
    report = SimulationReport(seeded=seeded, sent=sent)
    orders = [o.order for o in traffic.orders]

    # Wait for the reviews to settle (released, cancelled or with a person).
    await carrier_events_simulator.released_orders(pool, orders, wait_seconds=ship_wait_seconds)
    # Then some orders come back as Stripe / Adyen disputes or early fraud warnings.
    events = chargeback_simulator.generate_dispute_events(seed, orders, datetime.now(UTC))
    policy = settings.dispute_policy()
    report.disputes = await chargeback_simulator.send_disputes(
        client, pool, events, task_queue=task_queue, policy=policy
    )
    say(
        f"disputes sent: stripe {report.disputes.stripe} · adyen {report.disputes.adyen} · "
        f"early fraud warnings {report.disputes.early_fraud_warnings} · "
        f"failed {report.disputes.failed}"
    )
    report.decisions = await decide_reviews(client, pool, orders, seed=seed)
    say(
        f"coordinators: approved {report.decisions.approved} · declined "
        f"{report.decisions.declined} · left waiting {report.decisions.left_waiting}"
    )
    report.dispute_outcomes = await settle_disputes(
        client, pool, events, task_queue=task_queue, policy=policy
    )
    say(
        f"dispute outcomes: won {report.dispute_outcomes.won} · lost "
        f"{report.dispute_outcomes.lost} · accepted {report.dispute_outcomes.accepted}"
    )
    # Orders the coordinators approved are released too: ship them all.
    released = await carrier_events_simulator.released_orders(
        pool, orders, wait_seconds=ship_wait_seconds
    )
    report.warehouse = await move_warehouse(client, pool)
    say(
        f"warehouse: {report.warehouse.events} events "
        + " · ".join(f"{k} {n}" for k, n in sorted(report.warehouse.by_kind.items()))
    )
    # The warehouse ships what order review released (the real state in the
    # store); some parcels fail, get lost or arrive damaged.
    parcels = carrier_events_simulator.generate_parcels(seed, released, datetime.now(UTC))
    report.parcels = await carrier_events_simulator.send_parcels(
        client, pool, parcels, task_queue=task_queue
    )
    say(
        f"parcels shipped: {report.parcels.shipments} of {len(orders)} orders "
        "(only released ones) · failed deliveries "
        f"{report.parcels.failed_deliveries} · carrier claims {report.parcels.claims}"
    )
    report.returns, rma_ids = await send_returns(
        client, released, seed=seed, task_queue=task_queue, pool=pool
    )
    report.return_decisions = await decide_returns(client, rma_ids)
    say(
        f"returns: {report.returns.started} started · 3PL grades "
        + " · ".join(f"{k} {n}" for k, n in sorted(report.returns.grades.items()))
        + f" · manual QC {report.return_decisions.qc_decided} · finance approvals "
        f"{report.return_decisions.finance_approved}"
    )
    report.ops = await ops_desk_requests(client, pool, released, seed=seed, task_queue=task_queue)
    say(f"ops desk: {report.ops.opened} requests opened · {report.ops.resolved} resolved")
    report.campaign = await run_employee_sale(
        client, pool, released, seed=seed, task_queue=task_queue
    )
    say(
        f"employee sale {report.campaign.campaign_id}: {report.campaign.status or 'not started'}"
        f" · orders accepted {report.campaign.orders_accepted} · refused "
        f"{report.campaign.orders_refused}"
    )
    return report
