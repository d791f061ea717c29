"""Fulfilment rules (domain/fulfilment.py): pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from domain.common import Role
from domain.fulfilment import (
    FulfilmentContract,
    FulfilmentRejected,
    FulfilmentState,
    FulfilmentStatus,
    Hold,
    HoldReason,
    PlaceHoldInput,
    QcDecisionInput,
    QcOutcome,
    ReleaseHoldInput,
    SpecialDeliveryInput,
    SpecialDeliveryKind,
    address_error,
    address_fingerprint,
    validate_change_address,
    validate_place_hold,
    validate_qc_decision,
    validate_release_hold,
    wms_rank,
)
from domain.orders import Address

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _state(status: FulfilmentStatus = FulfilmentStatus.RELEASED, **kw: object) -> FulfilmentState:
    return FulfilmentState(
        order_id="A1",
        market="FR",
        site="PAR1",
        status=status,
        amount_minor=245000,
        currency="EUR",
        address_fingerprint="f" * 24,
        destination_country="FR",
        **kw,  # type: ignore[arg-type]
    )


def test_contract_names() -> None:
    assert FulfilmentContract.workflow_id("A1") == "fulfilment:A1"
    assert FulfilmentContract.order_id("fulfilment:A1") == "A1"
    assert FulfilmentContract.UPDATE_PLACE_HOLD == "place_hold"


@pytest.mark.parametrize(
    ("address", "error"),
    [
        (Address(line1="1 rue de Rivoli", city="Paris", postal_code="75001", country="FR"), None),
        (
            Address(line1="1 rue de Rivoli", city="Paris", postal_code="7500", country="FR"),
            "address.postal_code: invalid for FR, e.g. 33380 or 34092",
        ),
        (
            Address(line1="10 Downing St", city="London", postal_code="SW1A 2AA", country="GB"),
            None,
        ),
        (
            Address(line1="1 5th Ave", city="New York", postal_code="10001", country="US"),
            "address.region: required in US",
        ),
        (
            Address(
                line1="1 5th Ave", city="New York", postal_code="10001", region="NY", country="US"
            ),
            None,
        ),
    ],
)
def test_address_validation(address: Address, error: str | None) -> None:
    assert address_error(address) == error


def test_the_activitys_address_error_names_no_part_of_the_address() -> None:
    """Issue 21: the apply activity's failure message reaches Temporal and the
    logs: `private` keeps the region (and every other value) out of it."""
    wrong = Address(
        line1="1 Main St", city="Springfield", postal_code="10001", region="CA", country="US"
    )
    assert address_error(wrong) == "address.postal_code: invalid for CA (US), e.g. 90000 or 96199"
    private = address_error(wrong, private=True)
    assert private is not None and private.startswith("address.postal_code: invalid for US")
    assert not any(v in private for v in ("CA", "Springfield", "Main St", "10001"))


def test_fingerprint_ignores_case_and_spacing_but_not_content() -> None:
    a = Address(line1="1 rue de Rivoli", city="Paris", postal_code="75001", country="FR")
    b = Address(line1="1 RUE DE RIVOLI ", city="paris", postal_code="75001", country="FR")
    c = Address(line1="2 rue de Rivoli", city="Paris", postal_code="75001", country="FR")
    assert address_fingerprint(a) == address_fingerprint(b) != address_fingerprint(c)
    assert "Rivoli" not in address_fingerprint(a)


def test_hold_needs_an_actor_and_an_open_warehouse_order() -> None:
    with pytest.raises(FulfilmentRejected, match="actor"):
        validate_place_hold(_state(), PlaceHoldInput(reason=HoldReason.OTHER))
    change = PlaceHoldInput(reason=HoldReason.OTHER, actor="ana", role=Role.COORDINATOR)
    validate_place_hold(_state(FulfilmentStatus.PICKING), change)
    with pytest.raises(FulfilmentRejected, match="status: the parcel has left"):
        validate_place_hold(_state(FulfilmentStatus.HANDED_TO_CARRIER), change)
    with pytest.raises(FulfilmentRejected, match="role: auditor"):
        validate_place_hold(_state(), change.model_copy(update={"role": Role.AUDITOR}))


def test_fraud_hold_is_released_by_a_manager_only() -> None:
    hold = Hold(
        handle="fraud-1",
        reason=HoldReason.HIGH_RISK_OF_FRAUD,
        placed_by="steward",
        role=Role.SYSTEM,
        placed_at=NOW,
    )
    state = _state(holds=[hold])
    with pytest.raises(FulfilmentRejected, match="role: coordinator may not release"):
        validate_release_hold(
            state, ReleaseHoldInput(handle="fraud-1", actor="ana", role=Role.COORDINATOR)
        )
    validate_release_hold(state, ReleaseHoldInput(handle="fraud-1", actor="mo", role=Role.MANAGER))
    with pytest.raises(FulfilmentRejected, match="handle: no hold nope"):
        validate_release_hold(state, ReleaseHoldInput(handle="nope", actor="mo", role=Role.MANAGER))


def test_address_change_refused_after_handover() -> None:
    from domain.fulfilment import ChangeAddressInput

    change = ChangeAddressInput(
        address=Address(line1="1 r", city="Paris", postal_code="75001", country="FR"),
        actor="ana",
        role=Role.COORDINATOR,
    )
    validate_change_address(_state(FulfilmentStatus.PACKED), change)  # intercept, not refused
    with pytest.raises(FulfilmentRejected, match="handed_to_carrier"):
        validate_change_address(_state(FulfilmentStatus.HANDED_TO_CARRIER), change)
    with pytest.raises(FulfilmentRejected, match="order_id: fulfilment of A1 is cancelled"):
        validate_change_address(_state(FulfilmentStatus.CANCELLED), change)


def test_address_change_takes_exactly_one_of_address_and_subject_id() -> None:
    """Issue 21: the edges send a subject id; the old shape (the address) still validates."""
    from domain.fulfilment import ApplyAddressInput, ChangeAddressInput

    paris = Address(line1="1 r", city="Paris", postal_code="75001", country="FR")
    sid = "subj_0123456789abcdef"
    assert ChangeAddressInput(address_subject_id=sid).address is None
    assert ChangeAddressInput(address=paris).address_subject_id is None
    with pytest.raises(ValidationError, match="address_subject_id: give either"):
        ChangeAddressInput()
    with pytest.raises(ValidationError, match="not both"):
        ChangeAddressInput(address=paris, address_subject_id=sid)
    with pytest.raises(ValidationError, match="address_subject_id"):
        ChangeAddressInput(address_subject_id="ana@example.com")
    common = {"workflow_id": "fulfilment:A1", "order_id": "A1", "change_no": 1}
    apply = ApplyAddressInput(
        **common,
        address_subject_id=sid,
        destination_country="FR",
        rescore=False,
        send_to_warehouse=True,
    )
    assert apply.address is None
    with pytest.raises(ValidationError, match="destination_country: required"):
        ApplyAddressInput(**common, address_subject_id=sid, rescore=False, send_to_warehouse=True)
    with pytest.raises(ValidationError, match="exactly one"):
        ApplyAddressInput(**common, rescore=False, send_to_warehouse=True)


def test_special_delivery_fields_per_kind() -> None:
    with pytest.raises(ValidationError, match="window_start and window_end"):
        SpecialDeliveryInput(kind=SpecialDeliveryKind.TIMED)
    with pytest.raises(ValidationError, match="carrier and service"):
        SpecialDeliveryInput(kind=SpecialDeliveryKind.NAMED_CARRIER, carrier="dhl")
    SpecialDeliveryInput(kind=SpecialDeliveryKind.SIGNATURE)


def test_qc_decision_rules() -> None:
    qc_hold = Hold(
        handle="qc-1",
        reason=HoldReason.OUTBOUND_QC,
        placed_by="steward",
        role=Role.SYSTEM,
        placed_at=NOW,
    )
    from domain.fulfilment import QcCheck

    state = _state(holds=[qc_hold], qc=QcCheck(rule_set_version="qc-1", reasons=["jewellery"]))
    with pytest.raises(FulfilmentRejected, match="awaits no outbound QC"):
        validate_qc_decision(
            _state(), QcDecisionInput(outcome=QcOutcome.PASS, actor="q", role=Role.OPS)
        )
    with pytest.raises(FulfilmentRejected, match="checklist"):
        validate_qc_decision(
            state, QcDecisionInput(outcome=QcOutcome.PASS, actor="q", role=Role.OPS)
        )
    validate_qc_decision(
        state,
        QcDecisionInput(outcome=QcOutcome.PASS, checklist=["clasp"], actor="q", role=Role.OPS),
    )
    with pytest.raises(FulfilmentRejected, match="escalated"):
        validate_qc_decision(
            state, QcDecisionInput(outcome=QcOutcome.CANCEL_REFUND, actor="m", role=Role.MANAGER)
        )


def test_wms_rank_orders_states() -> None:
    assert wms_rank(FulfilmentStatus.RELEASED) < wms_rank(FulfilmentStatus.PACKING)
    assert wms_rank(FulfilmentStatus.DELIVERED) < wms_rank(FulfilmentStatus.CANCELLED)


def test_exotic_material_in_an_items_name_triggers_outbound_qc() -> None:
    """qc-2026.12.2: the order carries no material, the product name does;
    a low-value bag of a returning customer is checked for its crocodile."""
    from activities.fulfilment import fulfilment_input
    from domain.fulfilment_rules import QC_RULE_SET_VERSION, materials_named
    from domain.orders import ItemCategory
    from tests.factories import make_order

    assert materials_named("Kelly 28 Porosus Crocodile, gold hardware") == ["crocodile"]
    assert materials_named("Pythonesque tote") == []  # whole words only

    def verdict(name: str) -> tuple[bool, list[str], list[str]]:
        order = make_order("FR-QC-1")
        item = order.items[0].model_copy(
            update={"name": name, "category": ItemCategory.HANDBAGS, "unit_price_minor": 90_000}
        )
        order = order.model_copy(update={"items": [item]})
        made = fulfilment_input(
            order,
            release_id="REL-1",
            site_code="PAR-1",
            released_at=NOW,
            address_ref="subj_order",
            address_fingerprint="fp",
            first_order=False,
            prior_dispute_or_claim=False,
            fraud_warning_ref=None,
        )
        assert made.qc is not None and made.qc.rule_set_version == QC_RULE_SET_VERSION
        return made.qc.needed, made.qc.reasons, [i.material for i in made.items]

    assert verdict("Kelly 28 Porosus Crocodile") == (
        True,
        ["material:crocodile"],
        ["crocodile"],
    )
    assert verdict("Kelly 28 Togo") == (False, [], [""])
