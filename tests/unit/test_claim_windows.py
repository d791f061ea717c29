"""Carrier claim windows count from the carrier's clock (issue 15): a lost
parcel's window from the ship date, a damaged one's from the report; a claim
opened before the clock existed keeps counting from the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.claims import (
    CARRIER_CLAIM_WINDOWS,
    ClaimClock,
    ClaimPolicy,
    ClaimType,
    claim_policy_for,
    file_by,
    filing_deadline,
)

REPORTED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SHIPPED = REPORTED - timedelta(days=25)


def test_a_lost_parcel_counts_from_the_ship_date() -> None:
    policy = claim_policy_for("UPS", ClaimType.LOST)
    assert policy.window_from is ClaimClock.SHIPPED
    window = CARRIER_CLAIM_WINDOWS[("ups", ClaimType.LOST)]
    assert filing_deadline(REPORTED, policy, SHIPPED) == SHIPPED + window
    assert file_by(REPORTED, policy, SHIPPED) == SHIPPED + window - policy.safety_margin
    # DHL's 30 days from shipping end 5 days after this report, not 30.
    dhl = claim_policy_for("dhl", ClaimType.LOST)
    assert filing_deadline(REPORTED, dhl, SHIPPED) == REPORTED + timedelta(days=5)


def test_a_damaged_parcel_counts_from_the_report() -> None:
    policy = claim_policy_for("fedex", ClaimType.DAMAGED)
    assert policy.window_from is ClaimClock.REPORTED
    assert filing_deadline(REPORTED, policy, SHIPPED) == REPORTED + timedelta(days=21)


def test_without_a_ship_date_or_a_clock_the_report_counts() -> None:
    lost = claim_policy_for("ups", ClaimType.LOST)
    assert filing_deadline(REPORTED, lost, None) == REPORTED + lost.filing_window
    # A claim opened before issue 15: its policy has no clock.
    old = ClaimPolicy.model_validate({"filing_window": timedelta(days=60)})
    assert old.window_from is ClaimClock.REPORTED
    assert filing_deadline(REPORTED, old, SHIPPED) == REPORTED + timedelta(days=60)
    # A ship date after the report (a clock skew) never moves the deadline later.
    assert filing_deadline(REPORTED, lost, REPORTED + timedelta(days=1)) == (
        REPORTED + lost.filing_window
    )
