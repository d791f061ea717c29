"""The ops desk's pure rules: each type's required fields at intake, the
CCTV window and retention refusal with its dates, the SLA per priority, the
decision rules, the Slack command grammar and modal, the CSV export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from clients.ops_request import draft_problems
from domain.common import Role
from domain.ops_request import (
    CctvRetrievalDetails,
    ClaimInput,
    FinanceApprovalInput,
    OpsRequestDraft,
    OpsRequestState,
    OpsRequestStatus,
    OpsRequestType,
    OutcomeCode,
    Priority,
    Resolution,
    ResolveInput,
    RootCause,
    check_cctv_window,
    check_claim,
    check_finance,
    check_resolve,
    sla_for,
)
from domain.ops_request import Channel as IntakeChannel
from starters.api.routes_slack import CommandError, draft_from_view, modal, parse_command
from store.ops_requests import OpsRequestRow, as_csv

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def problems(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        OpsRequestDraft.model_validate(body)
    return [f"{p.field}: {p.reason}" for p in draft_problems(refused.value.errors())]


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"type": "address_change", "order_id": "FR-1"}, "details.address"),
        ({"type": "special_delivery", "order_id": "FR-1"}, "details.kind"),
        ({"type": "qc_check", "order_id": "FR-1"}, "details.reason"),
        ({"type": "order_status"}, "details.order_id"),
        ({"type": "carrier_claim", "carrier": "ups"}, "details.tracking_number"),
        ({"type": "inventory_discrepancy", "site_id": "PAR1", "sku": "A"}, "details.wms_quantity"),
        ({"type": "cctv_retrieval", "site_id": "PAR1"}, "details.camera_zone"),
        ({"type": "parcel"}, "details"),
    ],
)
def test_each_type_names_its_missing_fields(details: dict[str, Any], field: str) -> None:
    assert any(p.startswith(f"{field}:") for p in problems({"details": details}))


def test_a_timed_special_delivery_needs_its_window() -> None:
    found = problems({"details": {"type": "special_delivery", "order_id": "F", "kind": "timed"}})
    assert any("window_start and window_end are required" in p for p in found)


def cctv(site: str = "PAR1", **window: datetime) -> CctvRetrievalDetails:
    start = window.get("start", NOW - timedelta(days=2))
    return CctvRetrievalDetails(
        site_id=site,
        camera_zone="packing",
        window_start=start,
        window_end=window.get("end", start + timedelta(hours=1)),
    )


def test_cctv_window_rules() -> None:
    check_cctv_window(cctv(), NOW)
    with pytest.raises(ValueError, match="in the future"):
        check_cctv_window(cctv(start=NOW - timedelta(minutes=30)), NOW)
    with pytest.raises(ValueError) as expired:
        check_cctv_window(cctv("MIL1", start=NOW - timedelta(days=8)), NOW)
    assert str(expired.value) == (
        "window_start 2026-11-24 10:00 UTC is past MIL1's 7-day footage retention: "
        "it was deleted on 2026-12-01 10:00 UTC"
    )
    # New Jersey keeps 90 days.
    check_cctv_window(cctv("NJ1", start=NOW - timedelta(days=60)), NOW)
    with pytest.raises(ValidationError, match="site_id 'XX1' is unknown"):
        cctv("XX1")
    with pytest.raises(ValidationError, match="at most"):
        cctv(end=NOW - timedelta(hours=1), start=NOW - timedelta(days=1))


def test_sla_by_type_and_priority() -> None:
    assert sla_for(OpsRequestType.ORDER_STATUS, Priority.NORMAL) == timedelta(hours=1)
    assert sla_for(OpsRequestType.INVENTORY_DISCREPANCY, Priority.URGENT) == timedelta(hours=4)
    assert sla_for(OpsRequestType.OTHER, Priority.LOW) == timedelta(hours=16)
    assert [p.rank for p in Priority] == sorted((p.rank for p in Priority), reverse=True)


def state(**changes: Any) -> OpsRequestState:
    base = OpsRequestState(
        request_id="OPS-1",
        type=OpsRequestType.OTHER,
        priority=Priority.NORMAL,
        status=OpsRequestStatus.ASSIGNED,
        requester="cs",
        channel=IntakeChannel.API,
        market="GB",
        opened_at=NOW,
        sla=timedelta(hours=8),
        assignee="camille",
    )
    return base.model_copy(update=changes)


def test_decision_rules() -> None:
    with pytest.raises(ValueError, match="role: auditor may not claim"):
        check_claim(state(), ClaimInput(actor="a", role=Role.AUDITOR))
    with pytest.raises(ValueError, match="already owns"):
        check_claim(state(), ClaimInput(actor="camille", role=Role.COORDINATOR))
    done = ResolveInput(
        actor="camille",
        role=Role.COORDINATOR,
        outcome=OutcomeCode.DONE,
        root_cause=RootCause.UNKNOWN,
    )
    with pytest.raises(ValueError, match="already resolved"):
        check_resolve(state(status=OpsRequestStatus.RESOLVED), done)
    with pytest.raises(ValueError, match="inventory: found, mis_pick or adjusted"):
        check_resolve(state(type=OpsRequestType.INVENTORY_DISCREPANCY), done)
    proposed = Resolution(
        outcome=OutcomeCode.DONE,
        root_cause=RootCause.UNKNOWN,
        resolved_by="camille",
        resolved_at=NOW,
    )
    awaiting = state(status=OpsRequestStatus.AWAITING_FINANCE, resolution=proposed)
    with pytest.raises(ValueError, match="another person approves"):
        check_finance(
            awaiting, FinanceApprovalInput(actor="camille", role=Role.FINANCE, approved=True)
        )
    with pytest.raises(ValueError, match="only finance"):
        check_finance(awaiting, FinanceApprovalInput(actor="x", role=Role.MANAGER, approved=True))
    check_finance(awaiting, FinanceApprovalInput(actor="zoe", role=Role.FINANCE, approved=True))


def test_slash_command_grammar() -> None:
    assert parse_command("status FR-1") == {"details": {"type": "order_status", "order_id": "FR-1"}}
    parsed = parse_command(
        'address-change FR-1 line1="12 rue de la Paix" city=Paris postal_code=75002 country=FR '
        'priority=urgent note="call first"'
    )
    assert parsed["details"]["address"]["line1"] == "12 rue de la Paix"
    assert (parsed["priority"], parsed["description"]) == ("urgent", "call first")
    assert OpsRequestDraft.model_validate(parsed).type is OpsRequestType.ADDRESS_CHANGE
    inventory = parse_command(
        "inventory PAR1 BAG-1 3 5 unit_cost=1200 currency=EUR orders=A,B zone=storage"
    )
    details = inventory["details"]
    assert details["affected_order_ids"] == ["A", "B"] and details["cctv_zone"] == "storage"
    assert OpsRequestDraft.model_validate(inventory).type is OpsRequestType.INVENTORY_DISCREPANCY
    assert parse_command("other the printer is jammed")["description"] == "the printer is jammed"
    assert parse_command("qc-check FR-2 scratch on clasp")["details"]["reason"] == (
        "scratch on clasp"
    )
    for bad, message in (
        ("", "Usage: /steward"),
        ("teleport FR-1", "unknown request type 'teleport'"),
        ('status "FR-1', "cannot read the command"),
        ("status FR-1 extra", "unexpected words: extra"),
    ):
        with pytest.raises(CommandError, match=message):
            parse_command(bad)


def test_the_modal_s_values_become_a_draft() -> None:
    view = modal('{"channel": "C1"}')
    block_ids = {b["block_id"] for b in view["blocks"]}
    assert {"type", "order_id", "site_id", "window_start", "tracking_number"} <= block_ids
    values = {
        "type": {"value": {"selected_option": {"value": "carrier_claim"}}},
        "carrier": {"value": {"value": "ups"}},
        "tracking_number": {"value": {"value": "1Z999"}},
        "claim_type": {"value": {"value": "lost"}},
        "order_id": {"value": {"value": None}},
    }
    draft = OpsRequestDraft.model_validate(draft_from_view(values))
    assert draft.type is OpsRequestType.CARRIER_CLAIM


def test_csv_export_lines() -> None:
    row = OpsRequestRow(
        request_id="OPS-1",
        workflow_id="ops-request:OPS-1",
        type="address_change",
        priority="high",
        priority_rank=200,
        status="resolved",
        requester="cs",
        channel="slack",
        market="GB",
        site_id=None,
        order_id="FR-1",
        assignee="camille",
        awaited_role=None,
        opened_at=NOW,
        due_at=NOW + timedelta(hours=1),
        first_response_at=NOW + timedelta(minutes=5),
        resolved_at=NOW + timedelta(hours=2),
        business_seconds_to_resolve=7200,
        sla_met=False,
        escalated=False,
        escalations=1,
        outcome="done",
        root_cause="carrier_issue",
        linked_cases=["fulfilment:FR-1"],
        updated_at=NOW,
    )
    header, line = as_csv([row]).splitlines()
    assert header.startswith("request_id,type,priority,status,opened_at,first_response_at")
    assert line == (
        "OPS-1,address_change,high,resolved,2026-12-02T10:00:00+00:00,"
        "2026-12-02T10:05:00+00:00,2026-12-02T12:00:00+00:00,2.00,false,true,1,done,"
        "carrier_issue,camille,,FR-1,fulfilment:FR-1"
    )
