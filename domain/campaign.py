"""Employee special sales: `campaign:{campaign_id}`. Pure.

draft -> validating -> awaiting_approval -> scheduled -> open -> closed ->
reconciling -> reconciled, or cancelled (before the sale opens). A failed
validation or a refused approval goes back to draft.

What is here: the contract, the parameters and their validation (dates in the
campaign's timezone, markets and currencies, price list, stock, quotas,
catalogue completeness), the HR roster's CSV parsing and per-row validation,
four-eyes approval, and the models of employee orders and their refusals. The
quotas themselves are enforced in PostgreSQL (store/campaign.py), never in
workflow state; the roster lives in PostgreSQL only (its hash in the workflow).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from domain.common import (
    BusinessKey,
    CountryCode,
    CurrencyCode,
    MinorUnits,
    NonEmptyStr,
    Role,
    StewardModel,
    format_amount,
    market_currency_error,
)
from domain.orders import Address, Device, ItemCategory, Payment, Reference

# ------------------------------------------------------------------ contract


class CampaignContract:
    """The names Temporal knows a campaign by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "CampaignWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_SUBMIT: Final = "submit"
    UPDATE_APPROVE: Final = "approve"
    UPDATE_CHANGE_WINDOW: Final = "change_window"
    UPDATE_CANCEL: Final = "cancel"
    UPDATE_FILE_REQUEST: Final = "file_request"
    UPDATE_RESOLVE_REQUEST: Final = "resolve_request"
    UPDATE_RECONCILE_AGAIN: Final = "reconcile_again"


VALIDATE_CAMPAIGN: Final = "validate_campaign"
SET_CAMPAIGN_GATE: Final = "set_campaign_gate"
RECONCILE_CAMPAIGN: Final = "reconcile_campaign"
# A return of an employee-sale order gives its quota back (workflows/returns.py).
RETURN_CAMPAIGN_QUOTA: Final = "return_campaign_quota"

# The special-sales team prepares; a manager who did not prepare approves.
PREPARER_ROLES: Final = frozenset({Role.COORDINATOR, Role.MANAGER})
APPROVER_ROLE: Final = Role.MANAGER


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    VALIDATING = "validating"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    RECONCILING = "reconciling"
    RECONCILED = "reconciled"
    CANCELLED = "cancelled"


CLOSED_CAMPAIGN_STATUSES: Final = frozenset({CampaignStatus.RECONCILED, CampaignStatus.CANCELLED})
# The states the store's quota gate knows (campaigns.state).
GATE_STATES: Final = ("draft", "scheduled", "open", "closed", "cancelled")

# ---------------------------------------------------------------- parameters

MAX_PRICE_LINES: Final = 2_000
MAX_GRADES: Final = 50
TIMEZONE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$"
Grade = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_\-]{1,20}$")]
EntityName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._&\-]{0,63}$")
]


class Quota(StewardModel):
    """What one employee of a grade may buy during the sale."""

    max_units: int = Field(ge=1, le=1_000)
    max_amount_minor: MinorUnits


class PriceLine(StewardModel):
    sku: Reference
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    category: ItemCategory
    list_price_minor: MinorUnits = Field(gt=0)
    sale_price_minor: MinorUnits
    # Unit cost, when finance gives it: the sale price is never below it.
    cost_minor: MinorUnits | None = None
    allocated_units: int = Field(ge=0, le=1_000_000)

    @property
    def discount_pct(self) -> float:
        return 100.0 * (self.list_price_minor - self.sale_price_minor) / self.list_price_minor


class CampaignParameters(StewardModel):
    """A campaign as the special-sales team prepares it. Times are local wall
    times in `timezone` (what the team writes in its calendar)."""

    campaign_id: BusinessKey
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    timezone: Annotated[str, StringConstraints(pattern=TIMEZONE_PATTERN, max_length=64)]
    opens_local: datetime
    closes_local: datetime
    legal_entities: list[EntityName] = Field(min_length=1, max_length=50)
    countries: list[CountryCode] = Field(min_length=1, max_length=50)
    currency: CurrencyCode
    site: Reference
    quotas: dict[Grade, Quota] = Field(min_length=1, max_length=MAX_GRADES)
    prices: list[PriceLine] = Field(min_length=1, max_length=MAX_PRICE_LINES)
    max_discount_pct: int = Field(default=70, ge=0, le=95)
    # A cancelled or returned item gives its units and amount back.
    quota_back_on_return: bool = True
    opening_reminder: timedelta = Field(default=timedelta(days=1), ge=timedelta(0))
    closing_reminder: timedelta = Field(default=timedelta(hours=4), ge=timedelta(0))

    @field_validator("opens_local", "closes_local")
    @classmethod
    def _local_wall_time(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("a local wall time without offset: the timezone field gives it")
        return value

    @model_validator(mode="after")
    def _unique_skus(self) -> CampaignParameters:
        seen: set[str] = set()
        for line in self.prices:
            if line.sku in seen:
                raise ValueError(f"prices: SKU {line.sku} is listed twice")
            seen.add(line.sku)
        return self

    def price(self, sku: str) -> PriceLine | None:
        return next((p for p in self.prices if p.sku == sku), None)


class CampaignSchedule(StewardModel):
    """The campaign's instants in UTC, computed from its local times."""

    opens_at: AwareDatetime
    closes_at: AwareDatetime
    opening_reminder_at: AwareDatetime
    closing_reminder_at: AwareDatetime


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: {name} is not an IANA timezone") from None


def local_to_utc(local: datetime, tz: str, *, field: str) -> datetime:
    """The UTC instant of a local wall time; a time the clocks skip (spring
    forward) or show twice (fall back) is refused, naming the field."""
    zi = zone(tz)
    first = local.replace(tzinfo=zi, fold=0)
    second = local.replace(tzinfo=zi, fold=1)
    if first.utcoffset() != second.utcoffset():
        # fold=0 and fold=1 differ: the time is either skipped or repeated.
        back = first.astimezone(UTC).astimezone(zi).replace(tzinfo=None)
        if back != local:
            raise ValueError(
                f"{field}: {local:%Y-%m-%d %H:%M} does not exist in {tz} (the clocks skip it "
                "at the daylight saving change)"
            )
        raise ValueError(
            f"{field}: {local:%Y-%m-%d %H:%M} happens twice in {tz} (the clocks go back at "
            "the daylight saving change); choose another time"
        )
    return first.astimezone(UTC)


def _local_minus(local: datetime, offset: timedelta, tz: str) -> datetime:
    """`offset` before a local time, in local wall time (a reminder "a day
    before" is at the same time on the clock the day before, DST or not); a
    reminder landing in a skipped hour moves to the first instant after it."""
    target = local - offset
    zi = zone(tz)
    first = target.replace(tzinfo=zi, fold=0)
    back = first.astimezone(UTC).astimezone(zi).replace(tzinfo=None)
    if back != target:  # skipped: fold=1 reads it with the offset before the gap
        return target.replace(tzinfo=zi, fold=1).astimezone(UTC)
    return first.astimezone(UTC)


def schedule_for(
    params: CampaignParameters, *, closes_local: datetime | None = None
) -> CampaignSchedule:
    """The UTC schedule of `params` (with another closing time for an early
    close or an extension)."""
    closing = closes_local or params.closes_local
    try:
        opens_at = local_to_utc(params.opens_local, params.timezone, field="opens_local")
        closes_at = local_to_utc(closing, params.timezone, field="closes_local")
        if closes_at <= opens_at:
            raise ValueError("closes_local: the sale must close after it opens")
        return CampaignSchedule(
            opens_at=opens_at,
            closes_at=closes_at,
            opening_reminder_at=_local_minus(
                params.opens_local, params.opening_reminder, params.timezone
            ),
            closing_reminder_at=max(
                opens_at, _local_minus(closing, params.closing_reminder, params.timezone)
            ),
        )
    except OverflowError:
        raise ValueError(
            "opens_local: a time, or a reminder before it, beyond the calendar's range"
        ) from None


# ------------------------------------------------------------------ validation


class Severity(StrEnum):
    ERROR = "error"  # blocks the launch
    WARNING = "warning"  # needs an acknowledgement at approval


class ValidationIssue(StewardModel):
    field: str
    reason: str
    severity: Severity


class CatalogueEntry(StewardModel):
    sku: str
    description: str = ""
    visuals: int = 0
    category: str | None = None


class RosterSummary(StewardModel):
    roster_hash: str | None
    rows: int
    eligible: int
    excluded: int
    grades: dict[str, int] = Field(default_factory=dict)


class ValidationReport(StewardModel):
    validated_at: datetime
    roster_hash: str | None
    issues: list[ValidationIssue] = Field(default_factory=list)

    @property
    def errors(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity is Severity.WARNING]


def validate_parameters(
    params: CampaignParameters,
    *,
    now: datetime,
    overlapping: Sequence[str],
    available: Mapping[str, int],
    catalogue: Mapping[str, CatalogueEntry],
    roster: RosterSummary,
) -> list[ValidationIssue]:
    """Every problem of a campaign before launch: errors block, warnings need
    an acknowledgement. `available` is the stock at the campaign's site,
    `catalogue` the catalogue's entries of the SKUs on sale, `overlapping` the
    other live campaigns of the same legal entities whose window overlaps."""
    issues: list[ValidationIssue] = []

    def error(field: str, reason: str) -> None:
        issues.append(ValidationIssue(field=field, reason=reason, severity=Severity.ERROR))

    def warning(field: str, reason: str) -> None:
        issues.append(ValidationIssue(field=field, reason=reason, severity=Severity.WARNING))

    try:
        schedule = schedule_for(params)
    except ValueError as refused:
        field, _, reason = str(refused).partition(": ")
        error(field, reason)
        schedule = None
    if schedule is not None:
        if schedule.opens_at <= now:
            error("opens_local", f"the opening ({schedule.opens_at.isoformat()}) is in the past")
        for other in overlapping:
            error("opens_local", f"the window overlaps campaign {other} of the same legal entity")
    for country in params.countries:
        if (currency_reason := market_currency_error(country, params.currency)) is not None:
            error("currency", currency_reason)
    for index, line in enumerate(params.prices):
        where = f"prices[{index}]"
        if line.sale_price_minor > line.list_price_minor:
            error(f"{where}.sale_price_minor", f"{line.sku}: above the list price")
        elif line.discount_pct > params.max_discount_pct:
            error(
                f"{where}.sale_price_minor",
                f"{line.sku}: discount {line.discount_pct:.1f}% over the cap of "
                f"{params.max_discount_pct}%",
            )
        if line.cost_minor is not None and line.sale_price_minor < line.cost_minor:
            error(f"{where}.sale_price_minor", f"{line.sku}: below cost ({line.cost_minor})")
        if line.allocated_units == 0:
            warning(f"{where}.allocated_units", f"{line.sku}: no unit allocated")
        have = available.get(line.sku, 0)
        if line.allocated_units > have:
            error(
                f"{where}.allocated_units",
                f"{line.sku}: {line.allocated_units} allocated, {have} available at {params.site}",
            )
        entry = catalogue.get(line.sku)
        if entry is None:
            error(f"{where}.sku", f"{line.sku}: not in the catalogue")
            continue
        missing = [
            what
            for what, absent in (
                ("description", not entry.description.strip()),
                ("visuals", entry.visuals < 1),
                ("category", not entry.category),
            )
            if absent
        ]
        if missing:
            error(f"{where}.sku", f"{line.sku}: catalogue entry lacks {', '.join(missing)}")
        elif entry.category != line.category.value:
            warning(
                f"{where}.category",
                f"{line.sku}: {line.category.value} here, {entry.category} in the catalogue",
            )
    cheapest = min(params.prices, key=lambda line: line.sale_price_minor)
    for grade, quota in sorted(params.quotas.items()):
        if quota.max_amount_minor < cheapest.sale_price_minor:
            error(
                f"quotas.{grade}.max_amount_minor",
                f"{format_amount(quota.max_amount_minor, params.currency)} buys nothing: the "
                f"cheapest item on sale costs "
                f"{format_amount(cheapest.sale_price_minor, params.currency)}",
            )
    if roster.roster_hash is None:
        error("roster", "no roster imported")
    elif roster.eligible == 0:
        error("roster", "no eligible employee on the roster")
    else:
        if roster.excluded:
            warning("roster", f"{roster.excluded} roster row(s) excluded (see the roster report)")
        for grade in sorted(set(params.quotas) - set(roster.grades)):
            warning(f"quotas.{grade}", "no employee of this grade on the roster")
    return issues


# ---------------------------------------------------------------------- roster

ROSTER_COLUMNS: Final = (
    "employee_id",
    "name",
    "work_email",
    "legal_entity",
    "country",
    "grade",
    "start_date",
    "leave_date",
)
MAX_ROSTER_ROWS: Final = 50_000
MAX_ROSTER_BYTES: Final = 8 * 1024 * 1024


class RosterFileError(ValueError):
    """The file as a whole cannot be read (encoding, columns, size): nothing is imported."""


class RosterIssue(StewardModel):
    line: int
    field: str
    reason: str
    severity: Severity


class RosterRow(StewardModel):
    line: int
    employee_id: str
    name: str
    work_email: str
    legal_entity: str
    country: str
    grade: str
    start_date: date
    leave_date: date | None
    eligible: bool
    ineligible_reason: str | None = None


class RosterParse(StewardModel):
    rows: list[RosterRow]
    issues: list[RosterIssue]

    @property
    def errors(self) -> list[RosterIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]


def email_fingerprint(email: str) -> str:
    """Duplicates are found on this, never on the address itself."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def roster_hash(rows: Iterable[RosterRow]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.employee_id):
        digest.update(row.model_dump_json(exclude={"line"}).encode())
    return digest.hexdigest()


def _date(value: str, line: int, field: str, issues: list[RosterIssue]) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        issues.append(
            RosterIssue(
                line=line,
                field=field,
                reason=f"{value!r} is not a date (YYYY-MM-DD)",
                severity=Severity.ERROR,
            )
        )
        return None


def _email_error(value: str) -> str | None:
    import email_validator  # pydantic's own email dependency

    try:
        email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as err:
        return f"malformed email: {err}"
    return None


def parse_roster(
    data: bytes, params: CampaignParameters, *, sale_opens: date, sale_closes: date
) -> RosterParse:
    """Read the HR export (UTF-8 CSV, a header with ROSTER_COLUMNS) and check
    every row. Errors (malformed or duplicate ids and emails, unknown grades,
    bad dates) block the import; rows of people who cannot buy (leavers,
    joiners after the sale, entities or countries outside the campaign) are
    kept but excluded, as warnings. A file that cannot be read at all raises
    RosterFileError."""
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterFileError(f"file: {len(data)} bytes, over the limit of {MAX_ROSTER_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise RosterFileError(
            f"file: not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "export the roster as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise RosterFileError("file: contains NUL bytes; not a CSV text file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RosterFileError("file: empty") from None
    except csv.Error as err:
        raise RosterFileError(f"file: not CSV ({err})") from None
    # Read and counted before any row is checked: an oversized file is refused at once.
    records: list[tuple[int, list[str]]] = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                records.append((reader.line_num, record))
    except csv.Error as err:
        raise RosterFileError(f"line {reader.line_num}: not CSV ({err})") from None
    if len(records) > MAX_ROSTER_ROWS:
        raise RosterFileError(
            f"file: {len(records)} rows, more than {MAX_ROSTER_ROWS}; split the roster"
        )
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        raise RosterFileError(
            f"columns: missing {', '.join(missing)} (expected {', '.join(ROSTER_COLUMNS)})"
        )
    if not records:
        raise RosterFileError("file: a header but no employee")
    index = {c: header.index(c) for c in ROSTER_COLUMNS}
    issues: list[RosterIssue] = []
    rows: list[RosterRow] = []
    ids: dict[str, int] = {}
    emails: dict[str, int] = {}
    entities = set(params.legal_entities)
    countries = set(params.countries)
    for line, record in records:
        row = _check_row(record, index, line, issues, ids, emails, params)
        if row is None:
            continue
        reason = _exclusion(row, entities, countries, sale_opens, sale_closes)
        if reason is not None:
            row.eligible = False
            row.ineligible_reason = reason
            issues.append(
                RosterIssue(
                    line=line,
                    field=reason.split(":")[0],
                    reason=reason,
                    severity=Severity.WARNING,
                )
            )
        rows.append(row)
    return RosterParse(rows=rows, issues=issues)


def _check_row(
    record: list[str],
    index: dict[str, int],
    line: int,
    issues: list[RosterIssue],
    ids: dict[str, int],
    emails: dict[str, int],
    params: CampaignParameters,
) -> RosterRow | None:
    def cell(column: str) -> str:
        at = index[column]
        return record[at].strip() if at < len(record) else ""

    def error(field: str, reason: str) -> None:
        issues.append(RosterIssue(line=line, field=field, reason=reason, severity=Severity.ERROR))

    before = len(issues)
    if len(record) != len(index) and len(record) < max(index.values()) + 1:
        error("row", f"{len(record)} cells, expected {len(index)}")
        return None
    employee_id = cell("employee_id")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}", employee_id):
        error("employee_id", f"{employee_id!r} is not an employee id (letters, digits, ._-)")
    elif employee_id in ids:
        error("employee_id", f"duplicate of line {ids[employee_id]}")
    else:
        ids[employee_id] = line
    name = cell("name")
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        error("name", "empty, over 200 characters or with control characters")
    email = cell("work_email")
    if (email_reason := _email_error(email)) is not None:
        error("work_email", email_reason)
    else:
        fingerprint = email_fingerprint(email)
        if fingerprint in emails:
            error("work_email", f"duplicate of line {emails[fingerprint]}")
        else:
            emails[fingerprint] = line
    grade = cell("grade")
    if grade not in params.quotas:
        error(
            "grade",
            f"unknown grade {grade!r} (campaign grades: {', '.join(sorted(params.quotas))})",
        )
    country = cell("country").upper()
    if len(country) != 2 or not country.isalpha():
        error("country", f"{cell('country')!r} is not an ISO country code")
    entity = cell("legal_entity")
    if not entity:
        error("legal_entity", "empty")
    start = _date(cell("start_date"), line, "start_date", issues)
    leave_text = cell("leave_date")
    leave = _date(leave_text, line, "leave_date", issues) if leave_text else None
    if start is not None and leave is not None and leave < start:
        error("leave_date", f"{leave} is before the start date {start}")
    if len(issues) > before or start is None:
        return None
    return RosterRow(
        line=line,
        employee_id=employee_id,
        name=name,
        work_email=email,
        legal_entity=entity,
        country=country,
        grade=grade,
        start_date=start,
        leave_date=leave,
        eligible=True,
    )


def _exclusion(
    row: RosterRow, entities: set[str], countries: set[str], opens: date, closes: date
) -> str | None:
    if row.leave_date is not None and row.leave_date < closes:
        return f"leave_date: leaves on {row.leave_date}, before the sale closes on {closes}"
    if row.start_date > opens:
        return f"start_date: joins on {row.start_date}, after the sale opens on {opens}"
    if row.legal_entity not in entities:
        return f"legal_entity: {row.legal_entity} is not in the campaign"
    if row.country not in countries:
        return f"country: {row.country} is not in the campaign"
    return None


# -------------------------------------------------------------------- orders


class CampaignOrderLine(StewardModel):
    sku: Reference
    quantity: int = Field(ge=1, le=100)


class CampaignOrderRequest(StewardModel):
    """An employee's order from the sale's storefront, the payment authorised
    there; prices and the customer come from the campaign and the roster."""

    order_id: BusinessKey
    employee_id: BusinessKey
    lines: list[CampaignOrderLine] = Field(min_length=1, max_length=50)
    shipping_address: Address
    billing_address: Address | None = None
    payment: Payment
    device: Device

    @model_validator(mode="after")
    def _unique_skus(self) -> CampaignOrderRequest:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("lines: a SKU is listed twice; give one line per SKU")
        return self

    def fingerprint(self) -> str:
        lines = sorted((line.sku, line.quantity) for line in self.lines)
        return hashlib.sha256(f"{self.employee_id}|{lines}".encode()).hexdigest()


class Refusal(StrEnum):
    """Why an employee order took no quota."""

    WINDOW = "window"
    QUOTA = "quota"
    STOCK = "stock"
    ELIGIBILITY = "eligibility"
    CONFLICT = "conflict"  # the order id was used with other lines


class QuotaDecision(StewardModel):
    order_id: str
    accepted: bool
    refusal: Refusal | None = None
    detail: str = ""
    units: int = 0
    amount_minor: int = 0
    currency: str = ""
    # False when this order id had already been accepted (a retry).
    first_time: bool = True


class ReleaseReason(StrEnum):
    CANCELLED = "cancelled"
    RETURNED = "returned"


class QuotaRelease(StewardModel):
    """An item of an accepted order cancelled or returned (idempotent by release_id)."""

    release_id: BusinessKey
    sku: Reference
    quantity: int = Field(ge=1, le=100)
    reason: ReleaseReason


def return_release_id(rma_id: str, sku: str) -> str:
    """The release a return of `sku` gives back: the same for every attempt of
    the return's step, so a retried step takes the quota back once."""
    digest = hashlib.sha256(f"return/{rma_id}/{sku}".encode()).hexdigest()
    return f"rma-{digest[:40]}"


def cancel_release_id(order_id: str, sku: str) -> str:
    """The release a cancelled employee order gives back for `sku`: one per
    order and SKU, whichever step reports the cancellation, however often."""
    digest = hashlib.sha256(f"cancel/{order_id}/{sku}".encode()).hexdigest()
    return f"cnl-{digest[:40]}"


class CampaignReturnInput(StewardModel):
    """A return of an employee-sale order that ended with the value given back
    (refund or store credit): its items go back to the campaign."""

    workflow_id: NonEmptyStr
    rma_id: BusinessKey
    campaign_id: BusinessKey
    order_id: BusinessKey
    releases: list[QuotaRelease] = Field(min_length=1, max_length=100)


class CampaignReturnResult(StewardModel):
    # The SKUs given back by this attempt, by an earlier attempt, and refused
    # (sku -> reason: more units than the order has left, say).
    applied: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(default_factory=dict)
    # The campaign's rule: whether the units and amount went back to the quota.
    quota_back: bool = False


# -------------------------------------------------------------- the workflow


class CampaignInput(StewardModel):
    campaign_id: BusinessKey
    name: str
    timezone: str
    schedule: CampaignSchedule
    prepared_by: NonEmptyStr
    legal_entities: list[str]
    currency: CurrencyCode
    # How long finance has to clear discrepancies before the case gives up waiting.
    reconcile_every: timedelta = timedelta(days=1)
    reconcile_for: timedelta = timedelta(days=30)
    approval_sla: timedelta = timedelta(days=2)


class SubmitInput(StewardModel):
    actor: NonEmptyStr
    role: Role
    note: str = Field(default="", max_length=2000)


class ApprovalInput(StewardModel):
    approve: bool
    acknowledge_warnings: bool = False
    reason: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role


class WindowChange(StewardModel):
    """An early close or an extension. `closes_at` None closes the sale now
    (the workflow's clock); else the edge computed it, and the closing
    reminder, from the new local closing time in the campaign's timezone."""

    closes_at: AwareDatetime | None = None
    closing_reminder_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role


class CancelInput(StewardModel):
    reason: NonEmptyStr = Field(max_length=2000)
    actor: NonEmptyStr
    role: Role


class RequestKind(StrEnum):
    GIFT = "gift"
    AFTER_SALES = "after_sales"


# Each kind's service level and the role that owns it.
REQUEST_SLAS: Final[dict[RequestKind, tuple[timedelta, Role]]] = {
    RequestKind.GIFT: (timedelta(days=5), Role.COORDINATOR),
    RequestKind.AFTER_SALES: (timedelta(days=2), Role.COORDINATOR),
}


class RequestOutcome(StrEnum):
    SHIPPED = "shipped"
    REFUSED = "refused"


class FileRequestInput(StewardModel):
    """A request the API has stored (its text is personal data: only the id here)."""

    request_id: BusinessKey
    kind: RequestKind
    actor: NonEmptyStr
    role: Role


class ResolveRequestInput(StewardModel):
    request_id: BusinessKey
    outcome: RequestOutcome
    reason: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role

    @model_validator(mode="after")
    def _refusal_has_reason(self) -> ResolveRequestInput:
        if self.outcome is RequestOutcome.REFUSED and not self.reason.strip():
            raise ValueError("reason: a refusal says why")
        return self


class RequestState(StewardModel):
    request_id: str
    kind: RequestKind
    owner_role: Role
    opened_by: str
    opened_at: datetime
    due_at: datetime
    escalated: bool = False
    outcome: RequestOutcome | None = None
    reason: str = ""
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class Discrepancy(StewardModel):
    kind: str  # order_without_capture, capture_without_shipment, refund_without_return...
    order_id: str
    detail: str


class ReconcileInput(StewardModel):
    campaign_id: str
    workflow_id: str
    closed_at: datetime
    attempt: int


class ReconcileResult(StewardModel):
    discrepancies: list[Discrepancy]
    orders: int
    export_rows: int = 0  # the payroll export's rows when clean


class ValidateCampaignInput(StewardModel):
    campaign_id: str
    now: datetime


class GateInput(StewardModel):
    campaign_id: str
    state: str
    schedule: CampaignSchedule | None = None


class StatusChange(StewardModel):
    at: datetime
    status: CampaignStatus
    actor: str
    reason: str


class CampaignState(StewardModel):
    campaign_id: str
    name: str
    status: CampaignStatus
    timezone: str
    schedule: CampaignSchedule
    prepared_by: list[str]
    report: ValidationReport | None = None
    approved_by: str | None = None
    warnings_acknowledged: bool = False
    cancelled_reason: str | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    escalated: bool = False
    reminders_sent: int = 0
    requests: dict[str, RequestState] = Field(default_factory=dict)
    discrepancies: list[Discrepancy] = Field(default_factory=list)
    reconciliations: int = 0
    history: list[StatusChange] = Field(default_factory=list)


class RequestView(RequestState):
    """A request as the API's GET and the console show it: the workflow's
    state with, read back from the personal-data store (issue 21: the
    workflow holds the request id only), the collaborator's employee id and
    own words (`[erased]` once a privacy request erased them). None: no
    record of the request in the store."""

    employee_id: str | None = None
    description: str | None = None


class CampaignView(CampaignState):
    """A campaign as GET /v1/campaigns/{id} shows it: its requests with their
    words read back (RequestView)."""

    requests: dict[str, RequestView] = Field(default_factory=dict)  # type: ignore[assignment]


class CampaignResult(StewardModel):
    campaign_id: str
    status: CampaignStatus
    discrepancies: int


# ------------------------------------------------------------ decision rules


def validate_submit(state: CampaignState, submit: SubmitInput) -> None:
    if state.status is not CampaignStatus.DRAFT:
        raise ValueError(f"status: the campaign is {state.status}, only a draft is submitted")
    if submit.role not in PREPARER_ROLES:
        raise ValueError(f"role: {submit.role} may not prepare a campaign")


def validate_approval(state: CampaignState, decision: ApprovalInput) -> None:
    if state.status is not CampaignStatus.AWAITING_APPROVAL:
        raise ValueError(f"status: the campaign is {state.status}, not awaiting approval")
    if decision.role is not APPROVER_ROLE:
        raise ValueError(f"role: {decision.role} may not approve a campaign (manager only)")
    if decision.actor in state.prepared_by:
        raise ValueError(
            f"actor: {decision.actor} prepared this campaign; another manager approves it "
            "(four eyes)"
        )
    if not decision.approve and not decision.reason.strip():
        raise ValueError("reason: a refusal says why")
    report = state.report
    if (
        decision.approve
        and report is not None
        and report.warnings
        and not (decision.acknowledge_warnings)
    ):
        raise ValueError(
            f"acknowledge_warnings: {len(report.warnings)} warning(s) need an acknowledgement"
        )


def validate_window_change(state: CampaignState, change: WindowChange, now: datetime) -> None:
    if state.status not in (CampaignStatus.SCHEDULED, CampaignStatus.OPEN):
        raise ValueError(
            f"status: the campaign is {state.status}; only a scheduled or open sale changes "
            "its window"
        )
    if change.role is not Role.MANAGER:
        raise ValueError(f"role: {change.role} may not change a sale's window (manager only)")
    if change.closes_at is not None:
        if change.closes_at <= now:
            raise ValueError("closes_local: the new closing time is in the past")
        if change.closes_at <= state.schedule.opens_at:
            raise ValueError("closes_local: the sale must close after it opens")
    elif state.status is not CampaignStatus.OPEN:
        raise ValueError("closes_local: only an open sale closes now")


def changed_schedule(
    schedule: CampaignSchedule, change: WindowChange, now: datetime
) -> CampaignSchedule:
    closes_at = change.closes_at or now
    reminder = change.closing_reminder_at or closes_at
    return schedule.model_copy(
        update={
            "closes_at": closes_at,
            "closing_reminder_at": max(schedule.opens_at, min(reminder, closes_at)),
        }
    )


def validate_cancel(state: CampaignState, cancel: CancelInput) -> None:
    if state.status in (
        CampaignStatus.OPEN,
        CampaignStatus.CLOSED,
        CampaignStatus.RECONCILING,
        *CLOSED_CAMPAIGN_STATUSES,
    ):
        raise ValueError(
            f"status: the campaign is {state.status}; only a sale not yet open "
            "is cancelled (close it early instead)"
        )
    if cancel.role not in PREPARER_ROLES:
        raise ValueError(f"role: {cancel.role} may not cancel a campaign")


def validate_file_request(state: CampaignState, request: FileRequestInput) -> None:
    if state.status in CLOSED_CAMPAIGN_STATUSES:
        raise ValueError(f"status: the campaign is {state.status}")
    if request.request_id in state.requests:
        raise ValueError(f"request_id: {request.request_id} is already filed")


def validate_resolve_request(state: CampaignState, resolve: ResolveRequestInput) -> None:
    request = state.requests.get(resolve.request_id)
    if request is None:
        raise ValueError(f"request_id: no request {resolve.request_id} in this campaign")
    if request.outcome is not None:
        raise ValueError(
            f"request_id: {resolve.request_id} is already resolved ({request.outcome})"
        )
    if resolve.role not in (request.owner_role, Role.MANAGER):
        raise ValueError(f"role: {resolve.role} may not resolve a {request.kind} request")
