"""What the risk team maintains by hand, and who may change it (issue 15).

The risk rules (domain/risk_rules.py) read block and allow lists, known
freight-forwarder addresses and postal codes, and each customer's history
counters. The processes write the history themselves (domain/outcomes.py);
people maintain the rest, and correct the history, through the API
(`/v1/risk/...`, starters/api/routes_risk.py) with their API key's role.

Every change is one audit row (process `risk`) naming the key's actor and
role, a reason code from `RiskReason`, and the state before and after. No
personal value reaches the audit: identities are their fingerprints
(`domain.risk_rules.identity_hash`, the key the lists are stored under), and a
free-text note goes to the personal-data store (the audit row holds its
subject id).

Roles: a change that tightens the rules (block an identity, drop an allow-list
entry, mark a forwarder) is open to coordinators, who meet fraud in the review
queue and must be able to act at once; a change that loosens them (allow an
identity, unblock, unmark a forwarder) or rewrites what the rules learned
(a customer-history correction) needs a manager: each one lets orders through
that the rules would hold. Order management's sync may also correct the
history with a system key. Auditors read.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import Field, StringConstraints, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain.common import BusinessKey, CountryCode, FreeText, Role, StewardModel, Text
from domain.orders import Address
from domain.risk_rules import IdentityKind, RiskList, identity_hash, normalise_postal_code

PROCESS: Final = "risk"

# sha256 hex, as `identity_hash` returns it.
FINGERPRINT_PATTERN: Final = r"^[0-9a-f]{64}$"
Fingerprint = Annotated[str, StringConstraints(pattern=FINGERPRINT_PATTERN)]
_FINGERPRINT = re.compile(FINGERPRINT_PATTERN)


def field_error(model: StewardModel, field: str, reason: str) -> ValidationError:
    """A refusal that names `field` (the API answers 422 with it)."""
    return ValidationError.from_exception_data(
        type(model).__name__,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", reason),
                loc=(field,),
                input=None,
            )
        ],
    )


class RiskReason(StrEnum):
    """Why a list, forwarder or history entry changed (the audit's reason)."""

    CONFIRMED_FRAUD = "confirmed_fraud"
    CHARGEBACK_FRAUD = "chargeback_fraud"
    ACCOUNT_TAKEOVER = "account_takeover"
    FREIGHT_FORWARDER = "freight_forwarder"
    VERIFIED_CUSTOMER = "verified_customer"
    FALSE_POSITIVE = "false_positive"
    VIP_CUSTOMER = "vip_customer"
    ENTERED_IN_ERROR = "entered_in_error"
    ORDER_MANAGEMENT_SYNC = "order_management_sync"
    DATA_CORRECTION = "data_correction"


class RiskChange(StrEnum):
    """Every kind of change; its audit action is the value."""

    BLOCK_ADD = "risk_block_list_added"
    BLOCK_REMOVE = "risk_block_list_removed"
    ALLOW_ADD = "risk_allow_list_added"
    ALLOW_REMOVE = "risk_allow_list_removed"
    FORWARDER_ADD = "freight_forwarder_added"
    FORWARDER_REMOVE = "freight_forwarder_removed"
    FORWARDER_POSTAL_CODE_ADD = "freight_forwarder_postal_code_added"
    FORWARDER_POSTAL_CODE_REMOVE = "freight_forwarder_postal_code_removed"
    HISTORY_CORRECT = "customer_history_corrected"


_TIGHTEN: Final = frozenset({Role.COORDINATOR, Role.MANAGER})
_LOOSEN: Final = frozenset({Role.MANAGER})

# Who may make each change (the API answers 403 to any other role).
CHANGE_ROLES: Final[dict[RiskChange, frozenset[Role]]] = {
    RiskChange.BLOCK_ADD: _TIGHTEN,
    RiskChange.BLOCK_REMOVE: _LOOSEN,
    RiskChange.ALLOW_ADD: _LOOSEN,
    RiskChange.ALLOW_REMOVE: _TIGHTEN,
    RiskChange.FORWARDER_ADD: _TIGHTEN,
    RiskChange.FORWARDER_REMOVE: _LOOSEN,
    RiskChange.FORWARDER_POSTAL_CODE_ADD: _TIGHTEN,
    RiskChange.FORWARDER_POSTAL_CODE_REMOVE: _LOOSEN,
    RiskChange.HISTORY_CORRECT: frozenset({Role.MANAGER, Role.SYSTEM}),
}
RISK_READERS: Final = frozenset({Role.COORDINATOR, Role.MANAGER, Role.AUDITOR})


def list_change(risk_list: RiskList, *, add: bool) -> RiskChange:
    if risk_list is RiskList.BLOCK:
        return RiskChange.BLOCK_ADD if add else RiskChange.BLOCK_REMOVE
    return RiskChange.ALLOW_ADD if add else RiskChange.ALLOW_REMOVE


def role_refusal(change: RiskChange, role: Role) -> str | None:
    """Why `role` may not make `change`, or None when it may."""
    allowed = CHANGE_ROLES[change]
    if role in allowed:
        return None
    names = ", ".join(sorted(r.value for r in allowed))
    return f"role {role.value} may not make a {change.value} change (needs one of: {names})"


class _Reasoned(StewardModel):
    reason: RiskReason
    # Free text for the team; kept in the personal-data store, never in the audit.
    note: Annotated[FreeText, Field(max_length=2000)] = ""


class ListEntryChange(_Reasoned):
    """One identity to put on, or take off, the block or allow list. Give the
    value (an email, card fingerprint, device id or customer id), the address
    (kind `address`), or the entry's fingerprint as the listing shows it."""

    kind: IdentityKind
    value: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    address: Address | None = None
    fingerprint: Fingerprint | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        given = [
            name for name in ("value", "address", "fingerprint") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise field_error(
                self,
                "value",
                "give exactly one of value, address or fingerprint"
                + (f" (got {', '.join(given)})" if given else ""),
            )
        if self.value is not None and not self.value:
            raise field_error(self, "value", "must not be empty")
        if self.kind is IdentityKind.ADDRESS and self.value is not None:
            raise field_error(
                self, "address", "an address entry takes `address` (or `fingerprint`)"
            )
        if self.address is not None and self.kind is not IdentityKind.ADDRESS:
            raise field_error(
                self, "address", f"only kind address takes an address, not {self.kind}"
            )
        return self

    def entry_fingerprint(self) -> str:
        if self.fingerprint is not None:
            return self.fingerprint
        raw: str | Address | None = self.address if self.address is not None else self.value
        assert raw is not None  # the validator saw exactly one
        return identity_hash(self.kind, raw)


class ForwarderAddressChange(_Reasoned):
    """A freight forwarder's warehouse address (or its fingerprint)."""

    address: Address | None = None
    fingerprint: Fingerprint | None = None
    # The forwarder's business name (needed to add).
    name: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=200)] = ""

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        if (self.address is None) == (self.fingerprint is None):
            raise field_error(self, "address", "give exactly one of address or fingerprint")
        return self

    def entry_fingerprint(self) -> str:
        if self.fingerprint is not None:
            return self.fingerprint
        assert self.address is not None
        return identity_hash(IdentityKind.ADDRESS, self.address)


class ForwarderPostalCodeChange(_Reasoned):
    """A postal code where forwarders cluster: every address there counts."""

    country: CountryCode
    postal_code: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=20)]
    name: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=200)] = ""

    @model_validator(mode="after")
    def _code(self) -> Self:
        if not normalise_postal_code(self.postal_code):
            raise field_error(self, "postal_code", "needs at least one letter or digit")
        return self

    def normalised(self) -> str:
        return normalise_postal_code(self.postal_code)


HISTORY_COUNTERS: Final = (
    "completed_orders",
    "chargebacks",
    "chargebacks_won",
    "chargebacks_lost",
    "returns",
    "fraud_declines",
    "failed_deliveries",
)
Counter = Annotated[int, Field(ge=0, le=1_000_000)]


class CustomerHistoryCorrection(_Reasoned):
    """New values for some of a customer's counters (the others stay)."""

    completed_orders: Counter | None = None
    chargebacks: Counter | None = None
    chargebacks_won: Counter | None = None
    chargebacks_lost: Counter | None = None
    returns: Counter | None = None
    fraud_declines: Counter | None = None
    failed_deliveries: Counter | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.changes():
            raise field_error(
                self,
                "completed_orders",
                f"give at least one counter to correct ({', '.join(HISTORY_COUNTERS)})",
            )
        return self

    def changes(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in HISTORY_COUNTERS
            if getattr(self, name) is not None
        }


class CustomerHistoryCorrectionBody(CustomerHistoryCorrection):
    """A correction of one customer's counters (`customer_id` as order
    management knows it; the audit holds only its fingerprint)."""

    customer_id: BusinessKey

    def correction(self) -> CustomerHistoryCorrection:
        return CustomerHistoryCorrection.model_validate(self.model_dump(exclude={"customer_id"}))


def history_problem(counters: dict[str, int]) -> str | None:
    """Why a customer's counters after a correction do not add up, naming the field."""
    won, lost = counters.get("chargebacks_won", 0), counters.get("chargebacks_lost", 0)
    if counters.get("chargebacks", 0) < won + lost:
        return (
            f"chargebacks: {counters.get('chargebacks', 0)} is fewer than won ({won}) "
            f"plus lost ({lost})"
        )
    return None


def is_fingerprint(value: str) -> bool:
    return bool(_FINGERPRINT.match(value))


class RiskChangeResult(StewardModel):
    """What a change did: `changed` False when it was already so (nothing
    written, no audit row); `replayed` True for a repeated Idempotency-Key."""

    change: RiskChange
    fingerprint: str
    changed: bool
    replayed: bool = False
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    audit_entry_id: str | None = None


class ListEntryRow(StewardModel):
    list: RiskList
    kind: IdentityKind
    fingerprint: str
    reason: str
    added_by: str
    added_at: datetime


class ForwarderRow(StewardModel):
    fingerprint: str
    name: str
    added_at: datetime


class ForwarderPostalCodeRow(StewardModel):
    country: str
    postal_code: str
    name: str
    added_at: datetime


class CustomerHistoryRow(StewardModel):
    customer_fingerprint: str
    completed_orders: int = 0
    chargebacks: int = 0
    chargebacks_won: int = 0
    chargebacks_lost: int = 0
    returns: int = 0
    fraud_declines: int = 0
    failed_deliveries: int = 0
    returned_value: dict[str, int] = Field(default_factory=dict)
    updated_at: datetime | None = None
