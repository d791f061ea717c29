"""The console's view models (starters/console/views.py): masking, the queue's
order and marks, which role gets which decision form, and a case page's facts
and money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.audit import AuditRow, CaseRow
from domain.common import Role
from domain.payments import LedgerTotals
from domain.tasks import TaskRow
from starters.console import views

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def task(
    case_id: str, due_in: timedelta, *, process: str = "order-review", **kw: object
) -> TaskRow:
    fields: dict[str, object] = {
        "task_id": f"{process}:{case_id}/t",
        "process": process,
        "case_id": case_id,
        "workflow_id": f"{process}:{case_id}",
        "kind": "review",
        "title": f"Review {case_id}",
        "awaited_role": Role.COORDINATOR,
        "assignee": None,
        "due_at": NOW + due_in,
        "priority": 50,
        "escalated": False,
        "reminders_sent": 0,
        "opened_at": NOW - timedelta(hours=1),
        "closed_at": None,
        "closed_by": None,
        "outcome": None,
        **kw,
    }
    return TaskRow.model_validate(fields)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("camille.durand@example.fr", "c•••••@example.fr"),
        ("not an email", "•••"),
        (None, "—"),
    ],
)
def test_mask_email(value: str | None, masked: str) -> None:
    assert views.mask_email(value) == masked


def test_mask_phone_keeps_the_last_two_digits() -> None:
    assert views.mask_phone("+33 6 12 34 56 78") == "•••••••78"
    assert "12 34" not in views.mask_phone("+33 6 12 34 56 78")
    assert views.mask_phone("") == "—"


def test_queue_is_by_due_time_with_overdue_and_escalated_marked_and_filters() -> None:
    tasks = [
        task("LATER", timedelta(hours=3)),
        task("LATE", -timedelta(minutes=12), escalated=True),
        task("RMA-1", timedelta(hours=1), process="return"),
    ]
    markets = {"order-review:LATER": "FR", "order-review:LATE": "JP", "return:RMA-1": "FR"}
    rows = views.queue_rows(tasks, markets, NOW)
    assert [r.case_id for r in rows] == ["LATE", "RMA-1", "LATER"]
    late = rows[0]
    assert late.overdue and late.escalated and late.due_text == "overdue 12m"
    assert late.url == "/console/cases/order-review:LATE"
    assert rows[2].due_text == "in 3h 00m" and not rows[2].overdue
    assert [r.case_id for r in views.queue_rows(tasks, markets, NOW, market="FR")] == [
        "RMA-1",
        "LATER",
    ]
    only_returns = views.queue_rows(tasks, markets, NOW, process="return")
    assert [(r.case_id, r.process_label) for r in only_returns] == [("RMA-1", "Return")]


@pytest.mark.parametrize(
    ("process", "status", "role", "forms"),
    [
        ("order-review", "awaiting_review", Role.COORDINATOR, ["order-review-decision"]),
        ("order-review", "awaiting_review", Role.FINANCE, []),
        ("order-review", "released", Role.MANAGER, []),
        ("return", "awaiting_finance", Role.FINANCE, ["return-finance-approval"]),
        ("return", "awaiting_finance", Role.COORDINATOR, []),
        ("return", "manual_qc", Role.MANAGER, ["return-qc-decision"]),
        ("failed-delivery", "awaiting_decision", Role.COORDINATOR, ["failed-delivery-decision"]),
        ("chargeback", "awaiting_coordinator", Role.COORDINATOR, ["chargeback-response"]),
        ("chargeback", "awaiting_coordinator", Role.AUDITOR, []),
        ("carrier-claim", "filed", Role.MANAGER, []),
    ],
)
def test_decision_forms_follow_the_role_and_the_status(
    process: str, status: str, role: Role, forms: list[str]
) -> None:
    assert [f.action for f in views.decision_forms(process, status, role)] == forms


def test_only_a_manager_may_override_missing_evidence() -> None:
    def fields(role: Role) -> list[str]:
        (form,) = views.decision_forms("chargeback", "awaiting_coordinator", role)
        return [f.name for f in form.fields]

    assert "override_missing_evidence" in fields(Role.MANAGER)
    assert "override_missing_evidence" not in fields(Role.COORDINATOR)


def test_reserved_reason_codes_are_not_offered() -> None:
    (form,) = views.decision_forms("order-review", "awaiting_review", Role.COORDINATOR)
    reasons = next(f for f in form.fields if f.name == "reason_code")
    offered = {c.value for c in reasons.choices}
    assert "verified_customer" in offered
    assert not offered & {"automatic", "policy_default"}


def test_case_view_money_timeline_and_temporal_link() -> None:
    row = CaseRow(
        workflow_id="order-review:FR-1",
        process="order-review",
        case_id="FR-1",
        status="released",
        market="FR",
        amount_minor=245_000,
        currency="EUR",
        updated_at=NOW,
        created_at=NOW,
    )
    audit = [
        AuditRow(
            entry_id="e1",
            workflow_id="order-review:FR-1",
            process="order-review",
            case_id="FR-1",
            actor="alice",
            role=Role.COORDINATOR,
            action="decision_approve",
            reason="verified_customer",
            before={},
            after={},
            occurred_at=NOW,
            recorded_at=NOW,
        )
    ]
    totals = LedgerTotals(order_id="FR-1", currency="EUR", captured_minor=245_000)
    view = views.case_view(
        workflow_id="order-review:FR-1",
        process="order-review",
        case_id="FR-1",
        role=Role.COORDINATOR,
        row=row,
        state=None,
        totals=totals,
        audit=audit,
        temporal_ui="http://127.0.0.1:8233",
        namespace="default",
    )
    assert view.status == "released" and view.forms == []
    assert view.money == [
        ("Authorised", "2,450.00 EUR"),  # an order review's amount is the authorisation
        ("Captured", "2,450.00 EUR"),
        ("Refunded", "0.00 EUR"),
    ]
    assert view.timeline == [
        ("2026-11-24 12:00:00", "alice", "coordinator", "decision_approve", "verified_customer")
    ]
    assert view.temporal_url == (
        "http://127.0.0.1:8233/namespaces/default/workflows/order-review%3AFR-1"
    )


def _hold(handle: str, reason: str, *, released: bool = False) -> object:
    from domain.fulfilment import Hold

    return Hold.model_validate(
        {
            "handle": handle,
            "reason": reason,
            "placed_by": "steward",
            "role": "system",
            "placed_at": NOW,
            "released_at": NOW if released else None,
        }
    )


class _State:
    """The few fields of a live state the forms look at."""

    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


@pytest.mark.parametrize(
    ("process", "status", "role", "forms"),
    [
        (
            "fulfilment",
            "released",
            Role.COORDINATOR,
            ["fulfilment-place-hold", "fulfilment-change-address", "fulfilment-special-delivery"],
        ),
        ("fulfilment", "handed_to_carrier", Role.MANAGER, []),
        ("fulfilment", "picking", Role.AUDITOR, []),
        (
            "ops-request",
            "open",
            Role.COORDINATOR,
            [
                "ops-request-claim",
                "ops-request-reprioritise",
                "ops-request-assign",
                "ops-request-escalate",
                "ops-request-resolve",
            ],
        ),
        (
            "ops-request",
            "open",
            Role.OPS,
            ["ops-request-claim", "ops-request-reprioritise", "ops-request-assign"],
        ),
        (
            "ops-request",
            "escalated",
            Role.COORDINATOR,
            ["ops-request-claim", "ops-request-reprioritise", "ops-request-assign"],
        ),
        (
            "ops-request",
            "escalated",
            Role.MANAGER,
            [
                "ops-request-claim",
                "ops-request-reprioritise",
                "ops-request-assign",
                "ops-request-answer",
                "ops-request-resolve",
            ],
        ),
        ("ops-request", "awaiting_finance", Role.MANAGER, []),
        ("ops-request", "awaiting_finance", Role.FINANCE, ["ops-request-write-off"]),
        ("ops-request", "resolved", Role.MANAGER, []),
        ("campaign", "draft", Role.COORDINATOR, ["campaign-submit", "campaign-cancel"]),
        ("campaign", "draft", Role.FINANCE, []),
        ("campaign", "awaiting_approval", Role.MANAGER, ["campaign-cancel", "campaign-approval"]),
        ("campaign", "awaiting_approval", Role.COORDINATOR, ["campaign-cancel"]),
        ("campaign", "open", Role.MANAGER, ["campaign-close-now", "campaign-window"]),
        (
            "campaign",
            "scheduled",
            Role.MANAGER,
            ["campaign-cancel", "campaign-close-now", "campaign-window"],
        ),
        ("campaign", "reconciled", Role.MANAGER, []),
        (
            "privacy-request",
            "awaiting_verification",
            Role.COORDINATOR,
            ["privacy-request-verification"],
        ),
        ("privacy-request", "awaiting_verification", Role.AUDITOR, []),
        ("privacy-request", "on_hold", Role.MANAGER, []),
    ],
)
def test_new_processes_forms_follow_the_role_and_the_status(
    process: str, status: str, role: Role, forms: list[str]
) -> None:
    state = _State(holds=[], qc=None, escalated=False, type="other")
    assert [f.action for f in views.decision_forms(process, status, role, state)] == forms


def test_a_role_is_offered_only_the_holds_it_may_release_and_a_pending_qc() -> None:
    from domain.fulfilment import QcCheck

    holds = [
        _hold("fraud-1", "high_risk_of_fraud"),
        _hold("outbound-qc", "outbound_qc"),
        _hold("other-1", "other"),
        _hold("other-0", "other", released=True),
    ]
    qc = QcCheck(rule_set_version="qc-1", reasons=["high value"])
    state = _State(holds=holds, qc=qc, escalated=False)

    def offered(role: Role) -> dict[str, list[str]]:
        forms = views.decision_forms("fulfilment", "released", role, state)
        return {
            f.action: [
                c.value
                for field in f.fields
                for c in field.choices
                if field.name in ("handle", "outcome")
            ]
            for f in forms
        }

    coordinator = offered(Role.COORDINATOR)
    assert coordinator["fulfilment-release-hold"] == ["other-1"]  # fraud and QC: a manager's
    assert coordinator["fulfilment-qc-decision"] == ["", "pass", "fail"]  # blank first
    manager = offered(Role.MANAGER)
    assert manager["fulfilment-release-hold"] == ["fraud-1", "outbound-qc", "other-1"]
    escalated = _State(holds=holds, qc=qc, escalated=True)
    assert "fulfilment-qc-decision" not in [
        f.action for f in views.decision_forms("fulfilment", "released", Role.OPS, escalated)
    ]
    (qc_form,) = [
        f
        for f in views.decision_forms("fulfilment", "released", Role.MANAGER, escalated)
        if f.action == "fulfilment-qc-decision"
    ]
    outcomes = [c.value for c in qc_form.fields[0].choices]
    assert outcomes == ["", "pass", "fail", "cancel_refund", "wait"]


def test_an_inventory_discrepancy_is_resolved_with_its_inventory_resolution() -> None:
    def fields(kind: str) -> list[str]:
        forms = views.decision_forms("ops-request", "assigned", Role.COORDINATOR, _State(type=kind))
        (resolve,) = [f for f in forms if f.action == "ops-request-resolve"]
        return [f.name for f in resolve.fields]

    assert "inventory" in fields("inventory_discrepancy")
    assert "inventory" not in fields("qc_check")


def test_a_refund_not_final_yet_is_shown_as_pending() -> None:
    totals = LedgerTotals(
        order_id="FR-1",
        currency="EUR",
        captured_minor=245_000,
        refunded_minor=0,
        refund_pending_minor=45_000,
    )
    view = views.case_view(
        workflow_id="return:RMA-1",
        process="return",
        case_id="RMA-1",
        role=Role.FINANCE,
        row=None,
        state=None,
        totals=totals,
        audit=[],
        temporal_ui="http://127.0.0.1:8233",
        namespace="default",
    )
    assert view.money == [
        ("Captured", "2,450.00 EUR"),
        ("Refunded", "0.00 EUR"),
        ("Refund pending", "450.00 EUR"),
    ]


def test_a_dispute_steward_could_not_resolve_is_offered_the_link_to_its_order() -> None:
    def actions(role: Role, status: str, order_id: str | None) -> list[str]:
        state = _State(order_id=order_id)
        return [f.action for f in views.decision_forms("chargeback", status, role, state)]

    assert actions(Role.COORDINATOR, "awaiting_coordinator", None) == [
        "chargeback-response",
        "chargeback-link",
    ]
    assert actions(Role.COORDINATOR, "open", None) == ["chargeback-link"]
    assert actions(Role.MANAGER, "open", "FR-1") == []  # linked already
    assert actions(Role.FINANCE, "open", None) == []
    assert actions(Role.COORDINATOR, "won", None) == []  # closed


def test_a_campaign_s_open_requests_are_resolved_by_their_owner_role_or_a_manager() -> None:
    from domain.campaign import RequestState

    def request(request_id: str, outcome: str | None = None) -> RequestState:
        return RequestState.model_validate(
            {
                "request_id": request_id,
                "kind": "gift",
                "owner_role": "coordinator",
                "opened_by": "alice",
                "opened_at": NOW,
                "due_at": NOW + timedelta(days=5),
                "outcome": outcome,
            }
        )

    state = _State(requests={"GR-1": request("GR-1"), "GR-0": request("GR-0", "shipped")})

    def offered(role: Role, status: str = "open") -> dict[str, list[str]]:
        return {
            f.action: [c.value for c in f.fields[0].choices]
            for f in views.decision_forms("campaign", status, role, state)
        }

    assert offered(Role.COORDINATOR) == {"campaign-request-resolution": ["GR-1"]}
    manager = offered(Role.MANAGER)
    assert manager["campaign-request-resolution"] == ["GR-1"]
    assert "campaign-close-now" in manager
    assert offered(Role.FINANCE) == {}
    assert offered(Role.COORDINATOR, "reconciled") == {}


def test_a_task_no_process_closes_is_offered_to_the_role_it_awaits() -> None:
    tasks = [
        task("FR-7", timedelta(hours=1), kind="capture_reversed", awaited_role=Role.FINANCE),
        task("FR-7", timedelta(hours=2), kind="order_review", awaited_role=Role.FINANCE),
        task(
            "FR-7",
            timedelta(hours=3),
            kind="amount_mismatch",
            awaited_role=Role.FINANCE,
            closed_at=NOW,
        ),
    ]
    tasks = [t.model_copy(update={"task_id": f"order-review:FR-7/{t.kind}/1"}) for t in tasks]

    def offered(role: Role, *, running: bool) -> list[str]:
        forms = views.task_forms(tasks, role, process_running=running)
        return [c.value for f in forms for c in f.fields[0].choices]

    # A handed-off kind whatever the process does; its own task once it ended.
    assert offered(Role.FINANCE, running=True) == ["order-review:FR-7/capture_reversed/1"]
    assert offered(Role.FINANCE, running=False) == [
        "order-review:FR-7/capture_reversed/1",
        "order-review:FR-7/order_review/1",
    ]
    assert offered(Role.COORDINATOR, running=False) == []


@pytest.mark.parametrize(
    ("process", "status", "role"),
    [
        ("fulfilment", "released", Role.COORDINATOR),
        ("ops-request", "open", Role.MANAGER),
        ("ops-request", "awaiting_finance", Role.FINANCE),
        ("campaign", "awaiting_approval", Role.MANAGER),
        ("privacy-request", "awaiting_verification", Role.COORDINATOR),
    ],
)
def test_the_later_forms_required_choices_start_blank(
    process: str, status: str, role: Role
) -> None:
    """Submitting a form unread decides nothing: its required selects start
    blank (the browser's `required` and the API both refuse a blank)."""
    state = _State(holds=[], qc=None, escalated=False, type="other", requests={})
    selects = [
        field
        for form in views.decision_forms(process, status, role, state)
        for field in form.fields
        if field.kind == "select" and field.required
    ]
    assert selects
    assert all(field.choices[0].value == "" for field in selects)


def test_the_customer_s_words_are_facts_of_a_review_and_a_failed_delivery() -> None:
    """Issue 21: the route puts the words back from the personal-data store
    (tests/integration/test_console.py); the page shows them, or [erased]."""
    from domain.deliveries import FailedDeliveryState
    from domain.review import OrderReviewState

    state = OrderReviewState.model_validate(
        {
            "order_id": "FR-1",
            "market": "FR",
            "status": "awaiting_review",
            "amount_minor": 1000,
            "currency": "EUR",
            "customer_answers": [
                {"event_id": "a1", "confirmed": True, "message": "It was me"},
                {"event_id": "a2", "confirmed": False, "message": "", "channel": "phone"},
            ],
        }
    )
    review = views._state_facts("order-review", state)
    assert ("Customer answer", "confirmed (email): It was me") in review
    assert ("Customer answer", "did not confirm (phone)") in review

    delivery = FailedDeliveryState.model_validate(
        {
            "shipment_id": "SH-1",
            "order_id": "FR-1",
            "carrier": "colissimo",
            "tracking_number": "TN1",
            "status": "awaiting_decision",
            "attempt": 1,
            "amount_minor": 1000,
            "currency": "EUR",
            "trigger_status": "delivery_failed",
            "customer_reply": {"event_id": "r1", "option": "reschedule", "message": "[erased]"},
        }
    )
    facts = views._state_facts("failed-delivery", delivery)
    assert ("Customer answer", "reschedule") in facts
    assert ("Customer message", "[erased]") in facts
    assert delivery.customer_reply is not None
    reply = delivery.customer_reply.model_copy(update={"message": ""})
    silent = delivery.model_copy(update={"customer_reply": reply})
    assert "Customer message" not in dict(views._state_facts("failed-delivery", silent))


def test_an_inventory_discrepancy_is_offered_the_recount_to_the_desk() -> None:
    state = _State(holds=[], qc=None, escalated=False, type="inventory_discrepancy")
    actions = [f.action for f in views.decision_forms("ops-request", "assigned", Role.OPS, state)]
    assert actions == [
        "ops-request-claim",
        "ops-request-reprioritise",
        "ops-request-recount",
        "ops-request-assign",
    ]
    finance = views.decision_forms("ops-request", "assigned", Role.FINANCE, state)
    assert finance == []


@pytest.mark.parametrize(
    ("kind", "status", "role", "links"),
    [
        ("access", "exported", Role.COORDINATOR, 1),
        ("access", "exported", Role.MANAGER, 1),
        ("access", "exported", Role.AUDITOR, 0),
        ("access", "awaiting_verification", Role.COORDINATOR, 0),
        ("erasure", "erased", Role.COORDINATOR, 0),
    ],
)
def test_an_access_request_s_export_is_linked_once_ready(
    kind: str, status: str, role: Role, links: int
) -> None:
    found = views.case_links("privacy-request", "PR-7", status, role, _State(kind=kind))
    assert found == [("Open the access export", "/console/privacy-requests/PR-7/export")] * links


def test_a_returns_cancel_reason_is_a_fact_of_the_return() -> None:
    """Issue 21: the route reads the customer's reason back from the
    personal-data store (clients/returns.py with_cancel_reason); the page
    shows it, or [erased], and nothing when there is none."""
    from domain.returns import ReturnState

    state = ReturnState.model_validate(
        {
            "rma_id": "RMA-1",
            "order_id": "FR-1",
            "market": "FR",
            "currency": "EUR",
            "status": "cancelled",
            "reason": "too_small",
            "parent_reason": "fit",
            "resolution": "refund",
            "lines": [{"sku": "HB-1", "quantity": 1}],
            "value_minor": 1000,
            "cancel_reason": "[erased]",
            "cancel_reason_subject_id": "subj_reason-0001",
        }
    )
    facts = views._state_facts("return", state)
    assert ("Customer's reason for cancelling", "[erased]") in facts
    silent = state.model_copy(update={"cancel_reason": None})
    assert "Customer's reason for cancelling" not in dict(views._state_facts("return", silent))


def test_an_ops_request_s_requester_words_are_facts_of_the_request() -> None:
    """Issue 21: the route reads the requester's note and a QC check's reason
    back from the personal-data store (clients/ops_request.py
    with_request_texts); the page shows them, or [erased], and nothing when
    there is none."""
    from domain.ops_request import OpsRequestView

    state = OpsRequestView.model_validate(
        {
            "request_id": "OPS-1",
            "type": "qc_check",
            "priority": "normal",
            "status": "open",
            "requester": "cs.alice",
            "channel": "slack",
            "market": "FR",
            "order_id": "FR-1",
            "opened_at": "2026-12-01T09:00:00Z",
            "sla": "PT4H",
            "description": "[erased]",
            "qc_reason": "the clasp looks scratched",
        }
    )
    facts = views._state_facts("ops-request", state)
    assert ("What to check", "the clasp looks scratched") in facts
    assert ("Requester's note", "[erased]") in facts
    silent = state.model_copy(update={"description": None, "qc_reason": None})
    assert not {"What to check", "Requester's note"} & set(
        dict(views._state_facts("ops-request", silent))
    )
