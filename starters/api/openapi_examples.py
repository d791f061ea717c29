"""An example body for every request schema of the OpenAPI document, and the
same bodies as files in `examples/` (what the README and the docs send).

The examples live here, next to the models they must validate against; the
files are written from them (`python -m starters.api.openapi_examples`) and a
test checks that the files match and that each validates. Only the document
changes: the models' serialisation (they are also workflow payloads) does not.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from domain.campaign import CampaignOrderRequest, CampaignParameters, QuotaRelease
from domain.carrier_events import CarrierEvent as CarrierScan
from domain.claims import ClaimOutcome
from domain.deliveries import CustomerReply, ParcelReceived, ShipmentRecord
from domain.fulfilment import (
    ChangeAddressInput,
    PlaceHoldInput,
    QcDecisionInput,
    SpecialDeliveryInput,
)
from domain.ops_request import OpsRequestDraft
from domain.orders import Order
from domain.returns import CarrierEvent as ReturnScan
from domain.returns import CustomerChoiceInput, QcResult
from domain.review import CustomerAnswer
from domain.risk_admin import (
    CustomerHistoryCorrectionBody,
    ForwarderAddressChange,
    ForwarderPostalCodeChange,
    ListEntryChange,
)
from domain.task_resolution import TaskResolutionBody
from starters.api import (
    routes_campaign,
    routes_chargeback,
    routes_failed_delivery,
    routes_fulfilment,
    routes_ops_request,
    routes_order_review,
    routes_privacy_request,
    routes_reports,
    routes_returns,
    routes_webhooks,
)

ORDER: dict[str, Any] = {
    "order_id": "FR-100234",
    "market": "FR",
    "channel": "web",
    "currency": "EUR",
    "placed_at": "2026-12-01T08:55:00Z",
    "customer": {
        "customer_id": "C-778120",
        "email": "camille.durand@example.fr",
        "full_name": "Camille Durand",
        "phone": "+33 6 12 34 56 78",
        "account_created_at": "2023-12-02T08:55:00Z",
    },
    "billing_address": {
        "line1": "18 Rue de Grenelle",
        "line2": "3e étage",
        "city": "Paris",
        "postal_code": "75007",
        "region": "Île-de-France",
        "country": "FR",
    },
    "shipping_address": {
        "line1": "18 Rue de Grenelle",
        "line2": "3e étage",
        "city": "Paris",
        "postal_code": "75007",
        "region": "Île-de-France",
        "country": "FR",
    },
    "items": [
        {
            "sku": "HB-TOTE-MM-NOIR",
            "name": "Tote MM, black grained calfskin",
            "category": "handbags",
            "unit_price_minor": 245000,
            "quantity": 1,
        }
    ],
    "shipping_minor": 0,
    "payment": {
        "provider": "simulated",
        # The reference a Stripe dispute names the payment by (examples/dispute.json).
        "authorisation_ref": "pi_3QdemoFR100234",
        "card_fingerprint": "fp-C-778120-visa-4242",
        "card_country": "FR",
        "avs_result": "match",
        "cvv_result": "match",
        "three_ds": "authenticated",
        "amount_minor": 245000,
        "currency": "EUR",
        "authorised_at": "2026-12-01T08:55:00Z",
        # Far ahead so the example still captures when tried later; a real
        # card authorisation lasts about 7 days.
        "authorisation_expires_at": "2030-12-01T08:55:00Z",
    },
    "device": {
        "device_id": "dev-C-778120-iphone",
        "ip_address": "203.0.113.24",
        "ip_country": "FR",
    },
}

_PARIS = {
    "line1": "18 Rue de Grenelle",
    "line2": "3e étage",
    "city": "Paris",
    "postal_code": "75007",
    "region": "Île-de-France",
    "country": "FR",
}

# (file in examples/, model, body), in the order of the API's routes.
EXAMPLES: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
    ("order.json", Order, ORDER),
    (
        "order-decision.json",
        routes_order_review.DecisionBody,
        {
            "decision": "approve",
            "reason_code": "verified_customer",
            "note": "called the client on the number of her account; she confirmed the order",
        },
    ),
    (
        "order-cancel.json",
        routes_order_review.CancelBody,
        {"event_id": "oms-cancel-FR-100234-1", "reason": "cancelled by the client in boutique"},
    ),
    (
        "order-customer-answer.json",
        CustomerAnswer,
        {
            "event_id": "cs-FR-100234-1",
            "confirmed": True,
            "message": "Yes, I placed this order for my sister's birthday.",
            "channel": "phone",
        },
    ),
    (
        "return.json",
        routes_returns.CreateReturnBody,
        {
            "rma_id": "RMA-FR-100234-1",
            "order": {
                "order_id": "FR-100234",
                "market": "FR",
                "currency": "EUR",
                "delivered_at": "2026-12-03T14:10:00Z",
                "lines": [
                    {
                        "sku": "HB-TOTE-MM-NOIR",
                        "name": "Tote MM, black grained calfskin",
                        "unit_price_minor": 245000,
                        "quantity": 1,
                    }
                ],
                "shipping_minor": 0,
                "payment_provider": "simulated",
                "authorisation_ref": "pi_3QdemoFR100234",
            },
            "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
            "reason": "colour_differs",
            "resolution": "refund",
            "contact": {"email": "camille.durand@example.fr", "locale": "fr-FR"},
        },
    ),
    (
        "return-carrier-event.json",
        ReturnScan,
        {
            "event_id": "ups-scan-RMA-FR-100234-1-1",
            "kind": "in_transit",
            "tracking_number": "1ZRET0000000000001",
            "occurred_at": "2026-12-05T09:30:00Z",
            "location": "Paris, FR",
        },
    ),
    (
        "return-qc-result.json",
        QcResult,
        {
            "event_id": "3pl-qc-RMA-FR-100234-1",
            "grade": "first_choice",
            "notes": "tags attached, dust bag and box present",
            "photos": ["https://3pl.example.com/qc/RMA-FR-100234-1/1.jpg"],
            "authenticity_confirmed": True,
        },
    ),
    (
        "return-qc-decision.json",
        routes_returns.QcDecisionBody,
        {
            "grade": "second_choice",
            "reason": "light scratch on the clasp, visible on photo 2",
            "outcome": "partial_refund",
            "partial_refund_minor": 24500,
        },
    ),
    (
        "return-finance-approval.json",
        routes_returns.FinanceApprovalBody,
        {"approved": True, "note": "within the client's return history; approved"},
    ),
    (
        "return-cancel.json",
        routes_returns.CancelBody,
        {"event_id": "cs-cancel-RMA-FR-100234-1", "reason": "the client kept the bag"},
    ),
    (
        "return-customer-choice.json",
        CustomerChoiceInput,
        {"event_id": "cs-choice-RMA-FR-100234-1", "choice": "refund"},
    ),
    (
        "carrier-event.json",
        CarrierScan,
        {
            "event_id": "ups-evt-SH-FR-100234-1",
            "carrier": "ups",
            "tracking_number": "1Z999AA10123456784",
            "shipment_id": "SH-FR-100234",
            "status": "delivery_failed",
            "exception_code": "recipient_not_home",
            "location": "Paris, FR",
            "occurred_at": "2026-12-03T11:20:00Z",
        },
    ),
    (
        "shipment.json",
        ShipmentRecord,
        {
            "shipment_id": "SH-FR-100234",
            "carrier": "ups",
            "tracking_number": "1Z999AA10123456784",
            "service_level": "signature_required",
            "expected_delivery_at": "2026-12-03T18:00:00Z",
            "order": ORDER,
        },
    ),
    (
        "delivery-decision.json",
        routes_failed_delivery.DeliveryDecisionBody,
        {
            "decision": "reship",
            "service_level": "signature_required",
            "note": "the client is home on Friday; second attempt with signature",
        },
    ),
    (
        "delivery-customer-reply.json",
        CustomerReply,
        {
            "event_id": "cs-reply-SH-FR-100234-1",
            "option": "new_address",
            "address": {**_PARIS, "line1": "4 Avenue Montaigne", "postal_code": "75008"},
            "message": "Please deliver to my office instead.",
            "channel": "email",
        },
    ),
    (
        "delivery-parcel-received.json",
        ParcelReceived,
        {
            "event_id": "wms-in-SH-FR-100234-1",
            "received_at": "2026-12-09T10:05:00Z",
            "note": "seal intact",
        },
    ),
    (
        "claim-outcome.json",
        ClaimOutcome,
        {
            "event_id": "ups-claim-1Z999AA10123456784",
            "approved": True,
            "reimbursed_minor": 245000,
            "currency": "EUR",
            "carrier_reference": "UPS-CLM-88231",
            "note": "declared value paid",
        },
    ),
    (
        "chargeback-contest.json",
        routes_chargeback.ContestBody,
        {
            "note": "Delivered with signature on 3 Dec; 3-D Secure authenticated; "
            "the client has ordered with us since 2023.",
            "extra_evidence": [
                {
                    "kind": "customer_communication",
                    "available": True,
                    "summary": "email of 4 Dec: the client thanks us for the bag",
                    "reference": "crm-msg-88120",
                }
            ],
            # Proof of delivery is not in yet: a manager may contest without it.
            "override_missing_evidence": True,
        },
    ),
    (
        "chargeback-accept.json",
        routes_chargeback.AcceptBody,
        {"note": "below the amount worth contesting; accepted"},
    ),
    (
        "chargeback-link.json",
        routes_chargeback.LinkBody,
        {"order_id": "FR-100234", "note": "found by the card's last four and the amount"},
    ),
    (
        "cctv-answer.json",
        routes_webhooks.CctvAnswer,
        {
            "event_id": "wms-cctv-1",
            "request_id": "cctv-chargeback:stripe:dp_1QdemoAbCdEf-1",
            "available": True,
            "clip_ref": "s3://cctv/packing/PACK-03/2026-12-02T10-14.mp4",
            "station": "PACK-03",
        },
    ),
]

# Employee special sales (issue 18): the campaign ES-2027-06 and its roster
# (examples/campaign-roster.csv), an order of the employee E-1001.
EXAMPLES += [
    (
        "campaign.json",
        CampaignParameters,
        {
            "campaign_id": "ES-2027-06",
            "name": "Summer employee sale",
            "timezone": "Europe/Paris",
            "opens_local": "2027-06-07T09:00:00",
            "closes_local": "2027-06-11T18:00:00",
            "legal_entities": ["Maison SAS"],
            "countries": ["FR"],
            "currency": "EUR",
            "site": "PAR-1",
            "quotas": {
                "G1": {"max_units": 3, "max_amount_minor": 400000},
                "G2": {"max_units": 5, "max_amount_minor": 800000},
            },
            "prices": [
                {
                    "sku": "HB-TOTE-MM-NOIR",
                    "name": "Tote MM, black grained calfskin",
                    "category": "handbags",
                    "list_price_minor": 245000,
                    "sale_price_minor": 122500,
                    "cost_minor": 61000,
                    "allocated_units": 40,
                }
            ],
            "max_discount_pct": 60,
            "quota_back_on_return": True,
        },
    ),
    (
        "campaign-approval.json",
        routes_campaign.ApprovalBody,
        {"approve": True, "acknowledge_warnings": True, "reason": "roster and prices checked"},
    ),
    (
        "campaign-order.json",
        CampaignOrderRequest,
        {
            "order_id": "EO-2027-06-0001",
            "employee_id": "E-1001",
            "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
            "shipping_address": ORDER["shipping_address"],
            "payment": {
                **ORDER["payment"],
                "authorisation_ref": "pi_3QdemoEO0001",
                "amount_minor": 122500,
            },
            "device": ORDER["device"],
        },
    ),
    (
        "campaign-window.json",
        routes_campaign.WindowBody,
        {"closes_local": "2027-06-12T18:00:00", "reason": "one more day for the stores' staff"},
    ),
    (
        "campaign-request.json",
        routes_campaign.RequestBody,
        {
            "request_id": "GR-2027-06-01",
            "employee_id": "E-1001",
            "kind": "gift",
            "description": "Gift wrapping and a card for a colleague's retirement",
        },
    ),
    (
        "campaign-request-resolution.json",
        routes_campaign.ResolutionBody,
        {"outcome": "shipped", "reason": "sent with the order"},
    ),
    (
        "campaign-release.json",
        QuotaRelease,
        {
            "release_id": "RMA-EO-0001-1",
            "sku": "HB-TOTE-MM-NOIR",
            "quantity": 1,
            "reason": "returned",
        },
    ),
    (
        "campaign-cancel.json",
        routes_campaign.CancelBody,
        {"reason": "the entity is being restructured"},
    ),
]

# Reports (issue 19): the fraud report of one week in Paris, by hand.
EXAMPLES += [
    (
        "report-run.json",
        routes_reports.RunRequest,
        {
            "period_from": "2026-11-23T00:00:00+01:00",
            "period_to": "2026-11-30T00:00:00+01:00",
            "market": "FR",
            "timezone": "Europe/Paris",
            "distribute": False,
        },
    ),
]

# Privacy requests (issue 21).
EXAMPLES += [
    (
        "privacy-request.json",
        routes_privacy_request.PrivacyRequestBody,
        {
            "request_id": "PR-2026-0042",
            "kind": "erasure",
            "email": "camille.durand@example.fr",
            "jurisdiction": "EU",
        },
    ),
    (
        "privacy-request-verification.json",
        routes_privacy_request.VerifyBody,
        {"decision": "verified", "reason": "identity document checked by video call"},
    ),
]

# Fulfilment (issue 16): the example order in the warehouse.
EXAMPLES += [
    (
        "fulfilment-hold.json",
        PlaceHoldInput,
        {
            "reason": "incorrect_address",
            "note": "flat number missing: the customer is called back",
            "handle": "address-check",
        },
    ),
    (
        "fulfilment-hold-release.json",
        routes_fulfilment.ReleaseBody,
        {"note": "flat number confirmed by phone"},
    ),
    (
        "fulfilment-address.json",
        ChangeAddressInput,
        {
            "address": {
                "line1": "7 Avenue Montaigne",
                "line2": "2e étage",
                "city": "Paris",
                "postal_code": "75008",
                "country": "FR",
            },
            "note": "the customer will be at her office",
        },
    ),
    (
        "fulfilment-special-delivery.json",
        SpecialDeliveryInput,
        {"kind": "signature", "note": "high value: signature on delivery"},
    ),
    (
        "fulfilment-qc-decision.json",
        QcDecisionInput,
        {
            "outcome": "pass",
            "checklist": ["hardware", "stitching", "dust bag", "authenticity card"],
            "serial_number": "SN-HB-0042",
            "photo_refs": ["qc://PAR-1/FR-100234/1.jpg"],
        },
    ),
    (
        "warehouse-events.json",
        routes_fulfilment.WarehouseEventsBody,
        {
            "events": [
                {
                    "event_id": "wms-PAR-1-FR-100234-allocated",
                    "order_id": "FR-100234",
                    "kind": "allocated",
                    "occurred_at": "2026-12-01T09:20:00Z",
                    "site": "PAR-1",
                },
                {
                    "event_id": "wms-PAR-1-FR-100234-picking",
                    "order_id": "FR-100234",
                    "kind": "picking_started",
                    "occurred_at": "2026-12-01T09:40:00Z",
                    "site": "PAR-1",
                },
            ]
        },
    ),
]

# The ops desk (issue 17): the warehouse counts one tote short at Paris; the
# request id comes from the count event's id (OPS-7B2B5D5FBD76).
EXAMPLES += [
    (
        "ops-request.json",
        OpsRequestDraft,
        {
            "details": {
                "type": "inventory_discrepancy",
                "site_id": "PAR1",
                "sku": "HB-TOTE-MM-NOIR",
                "wms_quantity": 2,
                "erp_quantity": 3,
                "unit_cost_minor": 90_000,
                "currency": "EUR",
                "affected_order_ids": ["FR-100234"],
                "count_event_id": "count-PAR1-20261201-HB-TOTE-MM-NOIR",
            },
            "priority": "high",
        },
    ),
    (
        "ops-request-assign.json",
        routes_ops_request.AssignBody,
        {"to": "noor", "reason": "she runs the Paris counts this week"},
    ),
    (
        "ops-request-reprioritise.json",
        routes_ops_request.ReprioritiseBody,
        {"priority": "urgent", "reason": "the order ships today"},
    ),
    ("ops-request-recount.json", routes_ops_request.RecountBody, {"counted_quantity": 2}),
    (
        "ops-request-escalation.json",
        routes_ops_request.EscalateBody,
        {
            "summary": "one tote missing at PAR1",
            "tried": "recounted the location and the two next to it",
            "blocker": "the ERP adjustment needs a QA sign-off",
            "needed_from": "senior QA coordinator",
            "needed_what": "approve the adjustment or order a full count",
            "next_check_at": "2030-01-07T09:00:00+01:00",
        },
    ),
    (
        "ops-request-escalation-answer.json",
        routes_ops_request.AnswerBody,
        {"note": "adjust: the tote was written off in the November audit"},
    ),
    (
        "ops-request-resolution.json",
        routes_ops_request.ResolveBody,
        {
            "outcome": "done",
            "root_cause": "stock_record_error",
            "note": "ERP adjusted to 2",
            "inventory": "adjusted",
        },
    ),
    (
        "ops-request-write-off.json",
        routes_ops_request.WriteOffBody,
        {"approved": True, "note": "within the quarter's shrinkage budget"},
    ),
    (
        "ops-absence.json",
        routes_ops_request.AbsenceBody,
        {"coordinator": "noor", "cover": "camille", "reason": "sick leave"},
    ),
]

# What the risk rules read, maintained by the risk team (issue 15).
EXAMPLES += [
    (
        "risk-block-list-entry.json",
        ListEntryChange,
        {
            "kind": "email",
            "value": "card.tester@example.net",
            "reason": "confirmed_fraud",
            "note": "three stolen cards in one hour, see FR-100234",
        },
    ),
    (
        "risk-freight-forwarder.json",
        ForwarderAddressChange,
        {
            "address": {
                "line1": "1200 Export Way, Unit 14",
                "city": "Wilmington",
                "postal_code": "19801",
                "region": "DE",
                "country": "US",
            },
            "name": "ShipItOn Forwarding",
            "reason": "freight_forwarder",
        },
    ),
    (
        "risk-forwarder-postal-code.json",
        ForwarderPostalCodeChange,
        {
            "country": "US",
            "postal_code": "97230",
            "name": "Portland forwarders",
            "reason": "freight_forwarder",
        },
    ),
    (
        "risk-customer-history-correction.json",
        CustomerHistoryCorrectionBody,
        {
            "customer_id": "C-100234",
            "chargebacks": 0,
            "chargebacks_lost": 0,
            "reason": "data_correction",
            "note": "the chargeback was the bank's error, reversed",
        },
    ),
]

# A task no process closes, resolved by the role it awaits (finance, after
# a capture confirmed once the review had given up and refunded it).
EXAMPLES += [
    (
        "task-resolution.json",
        TaskResolutionBody,
        {
            "outcome": "handled",
            "reason": "checked in the Adyen dashboard: captured and refunded once, customer told",
        },
    ),
]

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def _schema_names(model: type[BaseModel]) -> tuple[str, str]:
    """The component names FastAPI gives a model: its class name, or, when two
    models share it, module and class name joined by `__`."""
    return model.__name__, f"{model.__module__}.{model.__qualname__}".replace(".", "__")


def _schema_refs(schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        return [schema["$ref"].rsplit("/", 1)[-1]]
    return [ref for option in schema.get("anyOf", []) for ref in _schema_refs(option)]


def request_schema_names(document: dict[str, Any]) -> set[str]:
    """The component schemas some operation takes as its request body."""
    return {
        name
        for operations in document.get("paths", {}).values()
        for operation in operations.values()
        for media in operation.get("requestBody", {}).get("content", {}).values()
        for name in _schema_refs(media.get("schema", {}))
    }


def add_request_examples(app: FastAPI) -> None:
    """Give the request body schema of every route its example in /openapi.json."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    by_name = {name: body for _f, model, body in EXAMPLES for name in _schema_names(model)}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.get("components", {}).get("schemas", {})
        for name in request_schema_names(document):
            if name in by_name and name in schemas:
                schemas[name]["examples"] = [by_name[name]]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def write_files(directory: Path = EXAMPLES_DIR) -> list[Path]:
    """(Re)write examples/<file> from EXAMPLES."""
    written = []
    for name, model, body in EXAMPLES:
        model.model_validate(body)  # never ship an example the API refuses
        path = directory / name
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - `python -m starters.api.openapi_examples`
    for path in write_files(Path(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES_DIR):
        print(path)
