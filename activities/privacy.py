"""The privacy-request process's side effects (issue 21): find a requester's
subjects and their legal holds, erase (or keep the invoice fields only),
count the access export, answer the requester through the notifier port.

No personal value reaches a log line, an error message or a result: results
carry subject ids and counts (docs/privacy_request.md).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import NotificationRejectedError, Notifier, RateLimitedError
from domain.audit import AuditEntry
from domain.claims import CLOSED_CLAIM_STATUSES
from domain.common import Role
from domain.deliveries import CLOSED_DELIVERY_STATUSES
from domain.orders import Address
from domain.privacy_request import (
    CHECK_LEGAL_HOLDS,
    CONFIRM_PRIVACY_REQUEST,
    ERASE_PERSONAL_DATA,
    INVOICE_FIELDS,
    PREPARE_PRIVACY_EXPORT,
    PRIVACY_REQUEST,
    CheckHoldsInput,
    CheckHoldsResult,
    ConfirmInput,
    ConfirmResult,
    EraseInput,
    EraseResult,
    ExportInput,
    ExportResult,
    HoldKind,
    LegalHold,
    privacy_request_workflow_id,
)
from domain.returns import CLOSED_RETURN_STATUSES
from store import audit as audit_store
from store import identity_erasure, personal_data, privacy_requests

_CLOSED = {
    "return": {str(s) for s in CLOSED_RETURN_STATUSES},
    "carrier-claim": {str(s) for s in CLOSED_CLAIM_STATUSES},
    "failed-delivery": {str(s) for s in CLOSED_DELIVERY_STATUSES},
}
PRIVACY_CONTACT_MISSING = "PrivacyContactMissing"
# The subject kind of a requester's contact (clients/privacy_request.py).
CONTACT_KIND = "privacy_contact"


class PrivacyActivities:
    def __init__(self, pool: asyncpg.Pool, notifier: Notifier) -> None:
        self.pool = pool
        self.notifier = notifier

    @activity.defn(name=CHECK_LEGAL_HOLDS)
    async def check_legal_holds(self, input: CheckHoldsInput) -> CheckHoldsResult:
        log = activity_logger(request_id=input.request_id)
        matched = await personal_data.find_subjects(self.pool, matching=input.match_fingerprint)
        # The requester's contact (kept to answer them) is the request's, not theirs.
        live = await personal_data.live_subjects(
            self.pool, sorted({*input.subject_ids, *matched}), exclude_kinds=[CONTACT_KIND]
        )
        refs = await personal_data.refs_of(self.pool, live)
        by_order: dict[str, set[str]] = {}
        by_campaign: dict[str, set[str]] = {}
        for sid, subject_refs in refs.items():
            for kind, ref_id in subject_refs:
                if kind == "order":
                    by_order.setdefault(ref_id, set()).add(sid)
                elif kind == "campaign":
                    by_campaign.setdefault(ref_id, set()).add(sid)
        rows = await privacy_requests.order_holds(
            self.pool,
            sorted(by_order),
            closed_statuses=_CLOSED,
            invoice_retention=input.invoice_retention,
        )
        rows.extend(await privacy_requests.campaign_holds(self.pool, sorted(by_campaign)))
        invoice_holders = await self._invoice_holders(live)
        holds: list[LegalHold] = []
        for row in rows:
            subjects = by_order.get(row.order_id or "", set())
            if row.kind == HoldKind.INVOICE_RETENTION:
                subjects = subjects & invoice_holders
            if row.campaign_id:
                subjects = subjects | by_campaign.get(row.campaign_id, set())
            if subjects:
                holds.append(
                    LegalHold(
                        kind=HoldKind(row.kind),
                        reference=row.reference,
                        subject_ids=sorted(subjects),
                        until=row.until,
                        reason=row.reason,
                    )
                )
        log.info(
            "privacy_holds_checked",
            subjects=len(live),
            holds=len(holds),
            hold_kinds=sorted({h.kind.value for h in holds}),
        )
        return CheckHoldsResult(subject_ids=live, holds=holds)

    async def _invoice_holders(self, subject_ids: list[str]) -> set[str]:
        """Subjects that carry invoice fields (a shipment's billing identity)."""
        if not subject_ids:
            return set()
        views = await personal_data.read_subjects(self.pool, subject_ids)
        return {
            sid for sid, view in views.items() if INVOICE_FIELDS.intersection(view.fields.keys())
        }

    @activity.defn(name=ERASE_PERSONAL_DATA)
    async def erase_personal_data(self, input: EraseInput) -> EraseResult:
        log = activity_logger(request_id=input.request_id)
        result = EraseResult()
        # First, while the subjects can still be read: the hashes of their
        # emails and addresses that scoring keeps outside the store. A retry
        # after the keys went finds them by the orders' own rows.
        hashes = await self._erase_identity_hashes([*input.erase, *input.retain_invoice_fields])
        result.identity_hashes = hashes.total
        erased_now: list[str] = []
        kept_now: list[str] = []
        for sid in input.erase:
            try:
                erased = await personal_data.erase_subject(self.pool, sid, reason=input.workflow_id)
            except personal_data.UnknownSubject:
                erased = False
            if erased:
                result.erased += 1
                erased_now.append(sid)
            else:
                result.already_erased += 1
        if input.retain_invoice_fields:
            views = await personal_data.read_subjects(self.pool, input.retain_invoice_fields)
            for sid, view in views.items():
                if view.erased:
                    result.already_erased += 1
                    continue
                kept = {k: v for k, v in view.fields.items() if k in INVOICE_FIELDS}
                await personal_data.put_subject(
                    self.pool, kind=view.kind, fields=kept, subject_id=sid
                )
                result.retained += 1
                kept_now.append(sid)
        await self._audit_orders(input, erased_now, kept_now)
        log.info(
            "personal_data_erased",
            erased=result.erased,
            already_erased=result.already_erased,
            invoice_fields_kept=result.retained,
            orders_seen_scrubbed=hashes.orders_seen,
            risk_list_entries_removed=[f"{lst}/{kind}" for lst, kind in hashes.list_entries],
            notifications_scrubbed=hashes.notifications,
        )
        return result

    async def _erase_identity_hashes(
        self, subject_ids: list[str]
    ) -> identity_erasure.IdentityErasure:
        known = await personal_data.live_subjects(self.pool, sorted(set(subject_ids)))
        views = await personal_data.read_subjects(self.pool, known) if known else {}
        emails: set[str] = set()
        addresses: list[Address] = []
        for view in views.values():
            if view.erased:
                continue
            fields = dict(view.fields)
            emails.update(v for k, v in fields.items() if k.rsplit(".", 1)[-1] == "email")
            if {"line1", "city", "postal_code", "country"} <= fields.keys():
                # Not an address after all (a ValueError): nothing to hash.
                with contextlib.suppress(ValueError):
                    addresses.append(Address.model_validate(fields))
        refs = await personal_data.refs_of(self.pool, sorted(set(subject_ids)))
        order_ids = sorted({ref_id for r in refs.values() for kind, ref_id in r if kind == "order"})
        return await identity_erasure.erase_identity_hashes(
            self.pool, order_ids=order_ids, emails=emails, addresses=addresses
        )

    async def _audit_orders(self, input: EraseInput, erased: list[str], kept: list[str]) -> None:
        """An entry on the path of every order whose customer data went, so
        `steward audit ORDER_ID` shows the subject erased beside decisions,
        money and reasons, which all stay. Entry ids name the order and the
        subject: a retried activity writes nothing twice."""
        refs = await personal_data.refs_of(self.pool, [*erased, *kept])
        now = datetime.now(UTC)
        entries = [
            AuditEntry(
                entry_id=f"{input.workflow_id}/{action}/{order_id}/{sid}",
                workflow_id=input.workflow_id,
                process=PRIVACY_REQUEST,
                case_id=input.request_id,
                actor="steward",
                role=Role.SYSTEM,
                action=action,
                reason=reason,
                after={"subject_id": sid},
                occurred_at=now,
                order_id=order_id,
            )
            for sids, action, reason in (
                (erased, "personal_data_erased", "customer's personal data erased"),
                (
                    kept,
                    "personal_data_pseudonymised",
                    "personal data erased except the invoice's billing identity "
                    "(statutory retention)",
                ),
            )
            for sid in sids
            for kind, order_id in refs.get(sid, [])
            if kind == "order"
        ]
        await audit_store.insert_entries(self.pool, entries)

    @activity.defn(name=PREPARE_PRIVACY_EXPORT)
    async def prepare_privacy_export(self, input: ExportInput) -> ExportResult:
        export = await privacy_requests.build_export(
            self.pool, input.request_id, input.subject_ids, datetime.now(UTC)
        )
        activity_logger(request_id=input.request_id).info(
            "privacy_export_prepared", subjects=len(export.subjects), fields=export.field_count
        )
        return ExportResult(
            subjects=len(export.subjects),
            fields=export.field_count,
            references=export.reference_count,
        )

    @activity.defn(name=CONFIRM_PRIVACY_REQUEST)
    async def confirm_privacy_request(self, input: ConfirmInput) -> ConfirmResult:
        workflow_id = privacy_request_workflow_id(input.request_id)
        message_id = f"{workflow_id}/{input.template}"
        log = activity_logger(request_id=input.request_id, message_id=message_id)
        try:
            contact = await personal_data.get_subject(self.pool, input.contact_subject_id)
        except personal_data.SubjectErased:
            # A retry after the contact was erased: the message went before.
            return ConfirmResult(message_id=message_id, delivered=True)
        except personal_data.UnknownSubject:
            raise ApplicationError(
                f"contact_subject_id: unknown subject {input.contact_subject_id}",
                type=PRIVACY_CONTACT_MISSING,
                non_retryable=True,
            ) from None
        try:
            delivered = await self.notifier.send(
                message_id=message_id,
                order_id=input.request_id,
                recipient_email=contact.get("email", ""),
                template=input.template.value,
                locale=contact.get("locale", "en"),
            )
        except NotificationRejectedError as exc:
            # The answer stays on record; a bounced address must not keep
            # the request (and the contact) open for ever.
            log.warning("privacy_answer_rejected", code=exc.code)
            delivered = False
        except RateLimitedError as exc:
            raise ApplicationError(
                str(exc), type="NotifierRateLimited", next_retry_delay=exc.retry_after
            ) from exc
        if input.erase_contact:
            await personal_data.erase_subject(
                self.pool, input.contact_subject_id, reason=f"{workflow_id} answered"
            )
        log.info(
            "privacy_requester_answered", delivered=delivered, contact_erased=input.erase_contact
        )
        return ConfirmResult(message_id=message_id, delivered=delivered)
