"""The composition root of the activities: which adapter serves which port.

Every outside system is served by its simulated adapter from
activities/simulated.py by default (`make up`, the tests, the benchmark).
Real adapters are chosen by the settings: dispute providers by
STEWARD_DISPUTE_RESPONDERS (activities/disputes_stripe.py,
disputes_adyen.py), carriers by STEWARD_EASYPOST_CARRIERS and
STEWARD_EASYPOST_RETURN_CARRIER (activities/carrier_easypost.py); a
configured adapter without its credentials stops the start with the
variable's name (ProviderSettingMissing). The warehouse, the notifier and the
CCTV archive stay simulated. The activity classes receive what they need (the
pool, a port, a setting) as constructor arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from activities.audit import AuditActivities
from activities.campaign import CampaignActivities, SimulatedCatalogue, SimulatedSaleStock
from activities.carrier_easypost import CarrierRouter, EasyPostCarrier, Parcel, easypost_client
from activities.carrier_sweep import CarrierSweepActivities
from activities.chat import ChatPort, SimulatedChat, SlackChat
from activities.claims import ClaimActivities
from activities.deliveries import DeliveryActivities
from activities.disputes import (
    DisputeActivities,
    DisputeResponder,
    SimulatedDisputeProvider,
)
from activities.disputes_adyen import AdyenDisputeResponder, disputes_api
from activities.disputes_stripe import StripeDisputeResponder, stripe_client
from activities.evidence import EvidenceActivities, SimulatedCctvArchive
from activities.fulfilment import (
    FulfilmentActivities,
    FulfilmentStart,
    SimulatedCarrierIntercepts,
    SimulatedWms,
)
from activities.notifications import NotificationActivities
from activities.ops_desk import OpsDeskActivities
from activities.payments import PaymentActivities
from activities.payments_adyen import AdyenPaymentProvider, adyen_checkout
from activities.payments_stripe import StripePaymentProvider
from activities.ports import PaymentProvider
from activities.privacy import PrivacyActivities
from activities.reports import ReportActivities
from activities.returns import ReturnActivities
from activities.scoring import ScoringActivities
from activities.simulated import (
    FaultControl,
    FaultPlan,
    ObservedPaymentProvider,
    SimulatedCarrier,
    SimulatedNotifier,
    SimulatedParcelReturnsDesk,
    SimulatedPaymentProvider,
    SimulatedReturnCarrier,
    SimulatedReturnsWarehouse,
    SimulatedWarehouse,
)
from activities.tasks import TaskActivities
from activities.warehouse import WarehouseActivities
from domain.chargeback import DisputeProvider
from domain.payment_providers import PaymentProviderName
from store.db import create_pool
from workers.settings import Settings

# Connections of the simulated outside world in a worker process. Its own
# pool, never the store's: a real provider has its own database, and a
# simulator borrowing the caller's connections could wait for the very
# connection its caller holds (issue 13). Each simulator holds one only for
# the short transaction of its effect (latency and faults are outside it).
WORLD_POOL_SIZE = 10


class ProviderSettingMissing(RuntimeError):
    """A real adapter is configured but a variable it needs is not set; the
    message names the variable and the setting that asked for the adapter."""


def require(settings: Settings, because: str, *fields: str) -> None:
    """Refuse to start when `because` asks for an adapter whose `fields` are empty."""
    for field in fields:
        if not str(getattr(settings, field) or "").strip():
            alias = Settings.model_fields[field].validation_alias
            raise ProviderSettingMissing(f"{alias} is not set, and {because} needs it")


def dispute_responders(
    settings: Settings, simulated: Callable[[DisputeProvider], DisputeResponder]
) -> dict[DisputeProvider, DisputeResponder]:
    """The responder per dispute provider: the provider's real API when
    STEWARD_DISPUTE_RESPONDERS names it, the simulator otherwise."""
    wanted = settings.real_dispute_responders
    unknown = wanted - {p.value for p in DisputeProvider}
    if unknown:
        raise ProviderSettingMissing(
            f"STEWARD_DISPUTE_RESPONDERS: unknown provider(s) {', '.join(sorted(unknown))} "
            f"(simulated, {', '.join(p.value for p in DisputeProvider)})"
        )
    responders: dict[DisputeProvider, DisputeResponder] = {}
    for provider in DisputeProvider:
        because = f"STEWARD_DISPUTE_RESPONDERS={settings.dispute_responders}"
        if provider.value not in wanted:
            responders[provider] = simulated(provider)
        elif provider is DisputeProvider.STRIPE:
            require(settings, because, "stripe_api_key")
            responders[provider] = StripeDisputeResponder(
                stripe_client(settings.stripe_api_key, settings.stripe_api_base)
            )
        else:
            require(settings, because, "adyen_api_key", "adyen_merchant_account")
            responders[provider] = AdyenDisputeResponder(
                disputes_api(
                    settings.adyen_api_key,
                    environment=settings.adyen_environment,
                    base_url=settings.adyen_disputes_url,
                ),
                settings.adyen_merchant_account,
            )
    return responders


def payment_providers(
    settings: Settings, pool: asyncpg.Pool, simulated: PaymentProvider
) -> dict[str, PaymentProvider]:
    """The adapter per payment provider name an order may carry
    (STEWARD_PAYMENT_PROVIDERS; Settings refuses to start without a configured
    provider's credentials). An order naming a provider not listed fails with
    UnknownPaymentProvider."""
    providers: dict[str, PaymentProvider] = {}
    names = settings.payment_provider_names
    if PaymentProviderName.SIMULATED in names:
        providers[PaymentProviderName.SIMULATED.value] = simulated
    if PaymentProviderName.STRIPE in names:
        providers[PaymentProviderName.STRIPE.value] = StripePaymentProvider(
            stripe_client(
                settings.stripe_api_key,
                settings.stripe_api_base,
                timeout_seconds=settings.payment_http_timeout_seconds,
            ),
            # A refund answered `pending` waits there for its webhook.
            pool,
        )
    if PaymentProviderName.ADYEN in names:
        providers[PaymentProviderName.ADYEN.value] = AdyenPaymentProvider(
            pool,
            adyen_checkout(
                api_key=settings.adyen_api_key,
                environment=settings.adyen_environment,
                live_endpoint_prefix=settings.adyen_live_endpoint_prefix,
                checkout_url=settings.adyen_checkout_url,
                api_version=settings.adyen_checkout_api_version,
                timeout_seconds=settings.payment_http_timeout_seconds,
            ),
            merchant_account=settings.adyen_merchant_account,
            outcome_timeout=settings.adyen_outcome_timeout,
        )
    return providers


def easypost_carrier(pool: asyncpg.Pool, settings: Settings) -> EasyPostCarrier | None:
    """The EasyPost adapter when a carrier or the returns use it, else None."""
    because = (
        f"STEWARD_EASYPOST_CARRIERS={settings.easypost_carriers}"
        if settings.easypost_carrier_names
        else f"STEWARD_EASYPOST_RETURN_CARRIER={settings.easypost_return_carrier}"
    )
    if not settings.easypost_carrier_names and not settings.easypost_return_carrier.strip():
        return None
    require(
        settings,
        because,
        "easypost_api_key",
        "easypost_warehouse_address_id",
        "easypost_claim_email",
    )
    return EasyPostCarrier(
        easypost_client(settings.easypost_api_key, settings.easypost_api_base),
        pool,
        warehouse_address_id=settings.easypost_warehouse_address_id,
        parcel=Parcel.parse(
            settings.easypost_parcel_dimensions_in, settings.easypost_parcel_weight_oz
        ),
        claim_email=settings.easypost_claim_email,
        return_carrier=settings.easypost_return_carrier.strip().lower(),
    )


def chat_port(settings: Settings, world: asyncpg.Pool) -> ChatPort:
    """Slack when STEWARD_SLACK_BOT_TOKEN is set, else the simulated chat."""
    if settings.slack_bot_token.strip():
        return SlackChat.from_token(
            settings.slack_bot_token.strip(), base_url=settings.slack_api_url.strip() or None
        )
    return SimulatedChat(world)


async def create_world_pool(settings: Settings) -> asyncpg.Pool:
    """The simulated outside world's pool (same database, its own connections)."""
    return await create_pool(settings.database_dsn, min_size=1, max_size=WORLD_POOL_SIZE)


def build_activities(
    pool: asyncpg.Pool, settings: Settings, *, world_pool: asyncpg.Pool | None = None
) -> list[Callable[..., Any]]:
    """All activities, wired to the simulated outside world configured by
    `settings.sim_latency_ms` and `settings.sim_failure_rate`.

    `pool` is the store's; the simulators use `world_pool` (from
    `create_world_pool`), which a worker always passes. Without it they share
    `pool`: tests only, where nothing holds a connection across a call anyway.

    The last six (audit, case status, transition, tasks) are meant to be
    called as local activities; registering them on the worker is the same
    either way.
    """
    world = world_pool if world_pool is not None else pool

    control = FaultControl(settings.sim_control_file) if settings.sim_control_file else None

    def plan(name: str) -> FaultPlan:
        # One plan per system: each has its own scripted queue and random
        # stream, and is named for the fault windows of `control`.
        return FaultPlan(
            latency_ms=settings.sim_latency_ms,
            failure_rate=settings.sim_failure_rate,
            name=name,
            control=control,
        )

    payment_provider = SimulatedPaymentProvider(world, plan("payments"))
    scoring = ScoringActivities(pool, {payment_provider.name: payment_provider})
    payments = PaymentActivities(
        pool,
        payment_providers(
            settings,
            pool,
            ObservedPaymentProvider(payment_provider, control)
            if control is not None
            else payment_provider,
        ),
    )
    # The release starts the order's fulfilment (issue 16); the simulated WMS
    # follows the released order through its timeline and enforces holds.
    wms = SimulatedWms(world)
    warehouse = WarehouseActivities(
        SimulatedWarehouse(world, plan("warehouse")),
        FulfilmentStart(pool, settings.task_queue, wms=wms),
    )
    fulfilment = FulfilmentActivities(
        pool,
        wms,
        SimulatedCarrierIntercepts(world),
        SimulatedNotifier(world, plan("notifications")),
    )
    notifications = NotificationActivities(SimulatedNotifier(world, plan("notifications")), pool)
    audit = AuditActivities(pool)
    tasks = TaskActivities(pool)
    easypost = easypost_carrier(pool, settings)
    returns = ReturnActivities(
        pool,
        easypost
        if easypost is not None and settings.easypost_return_carrier.strip()
        else SimulatedReturnCarrier(world, plan("returns-carrier")),
        SimulatedReturnsWarehouse(world, plan("returns-warehouse")),
    )
    # The carrier port by carrier name: EasyPost for STEWARD_EASYPOST_CARRIERS.
    carrier = CarrierRouter(
        SimulatedCarrier(world, plan("carrier")),
        dict.fromkeys(settings.easypost_carrier_names, easypost) if easypost else {},
    )
    deliveries = DeliveryActivities(
        pool,
        carrier,
        SimulatedParcelReturnsDesk(world, plan("returns-desk")),
        SimulatedNotifier(world, plan("notifications")),
    )
    claims = ClaimActivities(pool, carrier)
    names = settings.easypost_carrier_names
    sweep = CarrierSweepActivities(
        pool,
        (lambda: easypost.follow_new_shipments(names)) if easypost and names else None,
    )
    disputes = DisputeActivities(
        pool,
        dispute_responders(
            settings,
            lambda provider: SimulatedDisputeProvider(
                world, provider, plan(f"disputes-{provider}")
            ),
        ),
    )
    evidence = EvidenceActivities(SimulatedCctvArchive(world, retention=settings.cctv_retention))
    ops_desk = OpsDeskActivities(pool, chat_port(settings, world))
    # Reports (issue 19): the distribution list hears through the notifier port.
    reports = ReportActivities(
        pool,
        settings.reports_dir,
        SimulatedNotifier(world, plan("notifications")),
        settings.report_recipient_list,
        dispute_safety_buffer_hours=settings.dispute_safety_buffer_hours,
    )
    privacy = PrivacyActivities(pool, SimulatedNotifier(world, plan("notifications")))
    campaign = CampaignActivities(pool, SimulatedSaleStock(world), SimulatedCatalogue(world))
    return [
        privacy.check_legal_holds,
        privacy.erase_personal_data,
        privacy.prepare_privacy_export,
        privacy.confirm_privacy_request,
        campaign.validate_campaign,
        campaign.set_campaign_gate,
        campaign.reconcile_campaign,
        campaign.return_campaign_quota,
        disputes.assemble_dispute_evidence,
        disputes.submit_dispute_response,
        disputes.hold_order_release,
        disputes.record_dispute,
        evidence.request_cctv_clip,
        ops_desk.post_chat_message,
        ops_desk.answer_order_status,
        ops_desk.find_shipment_for_claim,
        ops_desk.ops_fulfilment_action,
        ops_desk.record_ops_request,
        deliveries.notify_delivery_customer,
        deliveries.book_reshipment,
        deliveries.score_delivery_address,
        deliveries.inspect_returned_parcel,
        deliveries.restock_returned_parcel,
        claims.open_carrier_investigation,
        claims.gather_claim_documents,
        claims.file_carrier_claim,
        claims.chase_carrier_claim,
        claims.record_claim_outcome,
        sweep.sweep_silent_shipments,
        scoring.score_order,
        payments.capture_payment,
        payments.void_authorisation,
        payments.refund_payment,
        payments.await_capture_outcome,
        warehouse.release_order_to_warehouse,
        fulfilment.set_warehouse_hold,
        fulfilment.apply_address_change,
        fulfilment.request_carrier_intercept,
        fulfilment.book_fulfilment_shipment,
        fulfilment.cancel_warehouse_order,
        fulfilment.allocate_replacement_unit,
        fulfilment.notify_fulfilment_customer,
        fulfilment.relay_fraud_warning,
        notifications.notify_customer,
        returns.check_return_eligibility,
        returns.issue_return_label,
        returns.record_return_disposition,
        returns.check_replacement_stock,
        returns.prepare_return_parcel_claim,
        audit.record_audit,
        audit.record_case_status,
        audit.record_transition,
        tasks.open_task,
        tasks.update_task,
        tasks.close_task,
        reports.run_report,
        reports.record_report_failure,
    ]


__all__ = [
    "WORLD_POOL_SIZE",
    "ProviderSettingMissing",
    "build_activities",
    "chat_port",
    "create_world_pool",
    "dispute_responders",
    "easypost_carrier",
]
