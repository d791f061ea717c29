"""The deadline engine: when the case stops waiting for people (the provider's
deadline minus a safety buffer), when it reminds them, and what it answers by
default when nobody did."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from domain.chargeback.codes import ResponseAction
from domain.chargeback.evidence import missing_evidence
from domain.common import StewardModel

if TYPE_CHECKING:
    from domain.chargeback.lifecycle import ChargebackState


class DisputeDefault(StrEnum):
    """What the deadline engine does at the buffer when nobody answered."""

    SMART = "smart"  # accept under the threshold; contest if complete; else accept and report
    ACCEPT = "accept"
    CONTEST_IF_COMPLETE = "contest_if_complete"


class DisputePolicy(StewardModel):
    """Deadline engine settings, resolved when the case starts and kept in the
    workflow input so a running case never changes its rules under replay."""

    # Stop waiting for people this long before the provider's deadline, so the
    # submission still reaches the provider when it is slow or failing.
    safety_buffer: timedelta = timedelta(hours=12)
    reminder_offsets: list[timedelta] = Field(
        default_factory=lambda: [timedelta(hours=72), timedelta(hours=24)]
    )
    default_action: DisputeDefault = DisputeDefault.SMART
    # Under this amount contesting costs more than it wins. Per currency
    # (domain/money_thresholds.py, set by Settings.dispute_policy for every new
    # case); a currency missing from a non-empty table is never accepted on
    # amount. Cases started before the table (an empty one) keep the flat
    # `accept_below_minor`, whatever the currency, so their replay holds.
    accept_below_minor: int = Field(default=5_000, ge=0)
    accept_below_by_currency: dict[str, int] = Field(default_factory=dict)
    cctv_answer_timeout: timedelta = timedelta(hours=48)
    # After a final outcome Adyen may still reopen (second chargeback).
    reopen_window: timedelta = timedelta(days=45)
    # No provider news for this long while under review: stop waiting, case stays listed.
    provider_silence_timeout: timedelta = timedelta(days=120)

    @model_validator(mode="after")
    def _offsets_positive(self) -> DisputePolicy:
        if any(o <= timedelta(0) for o in self.reminder_offsets):
            raise ValueError("reminder_offsets must be positive durations before the deadline")
        if self.safety_buffer < timedelta(0):
            raise ValueError("safety_buffer must not be negative")
        return self

    def accept_below(self, currency: str) -> int:
        if not self.accept_below_by_currency:
            return self.accept_below_minor
        return self.accept_below_by_currency.get(currency, 0)


def respond_by(due_by: datetime, policy: DisputePolicy) -> datetime:
    """When the default acts: the provider's deadline minus the safety buffer."""
    return due_by - policy.safety_buffer


def reminder_times(due_by: datetime, policy: DisputePolicy, now: datetime) -> list[datetime]:
    """Reminder instants still ahead of now and before the buffer, earliest first."""
    limit = respond_by(due_by, policy)
    times = sorted({due_by - offset for offset in policy.reminder_offsets})
    return [t for t in times if now < t < limit]


def default_response(state: ChargebackState, policy: DisputePolicy) -> tuple[ResponseAction, str]:
    """What the deadline engine does at the buffer, and why (for the audit)."""
    missing = missing_evidence(state.reason, state.evidence)
    amount = f"{state.amount_minor} {state.currency}"
    threshold = policy.accept_below(state.currency)
    if policy.default_action is DisputeDefault.ACCEPT:
        return ResponseAction.ACCEPT, "policy default: accept"
    if policy.default_action is DisputeDefault.SMART and state.amount_minor < threshold:
        return ResponseAction.ACCEPT, f"policy default: {amount} is under the {threshold} threshold"
    if not missing:
        return ResponseAction.CONTEST, "policy default: evidence complete, contested"
    return ResponseAction.ACCEPT, (
        f"policy default: evidence incomplete ({', '.join(missing)}), accepted and reported"
    )
