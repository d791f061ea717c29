"""The risk team's changes to what the rules read (issue 15), each one write
plus its audit row in one transaction.

- The entry is locked for the transaction (store.risk_admin.lock_entry), so
  the audit's `before` and `after` are exactly what the change saw and left.
- A change that changes nothing (the entry is already so) writes nothing and
  no audit row: `changed` is False.
- With an Idempotency-Key, the audit entry id is `risk:{actor}/{key}`: the same
  key again answers the first change (`replayed`), even when two copies race
  (the second's audit insert finds the first's row and rolls back its own
  write); the key on another change is refused (409).
- A note is personal free text: it goes to the personal-data store and the
  audit row holds its subject id (`note_ref`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg

from domain.audit import AuditEntry, AuditRow
from domain.common import Role
from domain.risk_admin import (
    PROCESS,
    CustomerHistoryCorrection,
    CustomerHistoryRow,
    ForwarderAddressChange,
    ForwarderPostalCodeChange,
    ListEntryChange,
    RiskChange,
    RiskChangeResult,
    history_problem,
    list_change,
)
from domain.risk_rules import IdentityKind, RiskList, identity_hash
from store import audit as audit_store
from store import personal_data as pd
from store import risk_admin as risk_store
from store import signals

# (before, after) of a change, or None when it changes nothing.
_Work = Callable[[Any], Awaitable[tuple[dict[str, Any], dict[str, Any]] | None]]


class RiskChangeError(Exception):
    """A change refused; `status` is the API's answer, `field` the field to name (422)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class _AlreadyApplied(Exception):
    pass


def entry_id_for(actor: str, idempotency_key: str | None) -> str:
    return (
        f"risk:{actor}/{idempotency_key}" if idempotency_key else f"risk:{actor}/{uuid.uuid4().hex}"
    )


def _replay(row: AuditRow, change: RiskChange, fingerprint: str) -> RiskChangeResult:
    if row.action != change.value or row.case_id != fingerprint:
        raise RiskChangeError(
            409,
            f"Idempotency-Key was already used for another change ({row.action} of "
            f"{row.case_id}); send a new key",
        )
    return RiskChangeResult(
        change=change,
        fingerprint=fingerprint,
        changed=True,
        replayed=True,
        before=row.before,
        after=row.after,
        audit_entry_id=row.entry_id,
    )


async def _audited(
    pool: asyncpg.Pool,
    *,
    change: RiskChange,
    workflow_id: str,
    fingerprint: str,
    actor: str,
    role: Role,
    reason: str,
    note: str,
    idempotency_key: str | None,
    now: datetime,
    work: _Work,
) -> RiskChangeResult:
    entry_id = entry_id_for(actor, idempotency_key)
    try:
        async with pool.acquire() as conn, conn.transaction():
            if idempotency_key and (earlier := await risk_store.audit_entry(conn, entry_id)):
                return _replay(earlier, change, fingerprint)
            await risk_store.lock_entry(conn, f"{workflow_id}/{fingerprint}")
            done = await work(conn)
            if done is None:
                return RiskChangeResult(change=change, fingerprint=fingerprint, changed=False)
            before, after = done
            if note.strip():
                after = {
                    **after,
                    "note_ref": await pd.put_subject(
                        conn,
                        kind="message",
                        fields={"note": note},
                        subject_id=pd.subject_id_for("message", entry_id),
                        refs=[("risk", fingerprint)],
                    ),
                }
            entry = AuditEntry(
                entry_id=entry_id,
                workflow_id=workflow_id,
                process=PROCESS,
                case_id=fingerprint,
                actor=actor,
                role=role,
                action=change.value,
                reason=reason,
                before=before,
                after=after,
                occurred_at=now,
            )
            if not await audit_store.insert_entry(conn, entry):
                # A copy with the same key committed first: undo this one.
                raise _AlreadyApplied
    except _AlreadyApplied:
        earlier = await risk_store.audit_entry(pool, entry_id)
        assert earlier is not None
        return _replay(earlier, change, fingerprint)
    return RiskChangeResult(
        change=change,
        fingerprint=fingerprint,
        changed=True,
        before=before,
        after=after,
        audit_entry_id=entry_id,
    )


# ------------------------------------------------------------------ lists


def _list_state(row: asyncpg.Record | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "list": row["list"],
        "kind": row["kind"],
        "fingerprint": row["value_hash"],
        "reason": row["reason"],
        "added_by": row["added_by"],
    }


async def change_list(
    pool: asyncpg.Pool,
    risk_list: RiskList,
    body: ListEntryChange,
    *,
    add: bool,
    actor: str,
    role: Role,
    idempotency_key: str | None,
    now: datetime,
) -> RiskChangeResult:
    fingerprint = body.entry_fingerprint()

    async def work(conn: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await signals.get_list_entry(conn, risk_list, body.kind, fingerprint)
        before = _list_state(row)
        if add:
            if row is not None and row["reason"] == body.reason.value:
                return None
            await signals.add_to_list(
                conn, risk_list, body.kind, None, body.reason.value, actor, value_hash=fingerprint
            )
            after = {
                "list": risk_list.value,
                "kind": body.kind.value,
                "fingerprint": fingerprint,
                "reason": body.reason.value,
                "added_by": actor,
            }
            return before, after
        if row is None:
            raise RiskChangeError(
                404, f"{body.kind.value} {fingerprint[:12]}… is not on the {risk_list.value} list"
            )
        await signals.remove_from_list(conn, risk_list, body.kind, None, value_hash=fingerprint)
        return before, {}

    return await _audited(
        pool,
        change=list_change(risk_list, add=add),
        workflow_id=f"risk:{risk_list.value}-list",
        fingerprint=fingerprint,
        actor=actor,
        role=role,
        reason=body.reason.value,
        note=body.note,
        idempotency_key=idempotency_key,
        now=now,
        work=work,
    )


# ------------------------------------------------------- freight forwarders


async def change_forwarder(
    pool: asyncpg.Pool,
    body: ForwarderAddressChange,
    *,
    add: bool,
    actor: str,
    role: Role,
    idempotency_key: str | None,
    now: datetime,
) -> RiskChangeResult:
    fingerprint = body.entry_fingerprint()
    if add and not body.name:
        raise RiskChangeError(422, "name: the forwarder's name is needed to add it", "name")

    async def work(conn: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await signals.get_freight_forwarder(conn, fingerprint)
        before = {"fingerprint": fingerprint, "name": row["name"]} if row is not None else {}
        if add:
            if row is not None and row["name"] == body.name:
                return None
            await signals.add_freight_forwarder(conn, None, body.name, address_hash=fingerprint)
            return before, {"fingerprint": fingerprint, "name": body.name}
        if row is None:
            raise RiskChangeError(404, f"address {fingerprint[:12]}… is not a known forwarder")
        await signals.remove_freight_forwarder(conn, fingerprint)
        return before, {}

    return await _audited(
        pool,
        change=RiskChange.FORWARDER_ADD if add else RiskChange.FORWARDER_REMOVE,
        workflow_id="risk:freight-forwarders",
        fingerprint=fingerprint,
        actor=actor,
        role=role,
        reason=body.reason.value,
        note=body.note,
        idempotency_key=idempotency_key,
        now=now,
        work=work,
    )


async def change_forwarder_postal_code(
    pool: asyncpg.Pool,
    body: ForwarderPostalCodeChange,
    *,
    add: bool,
    actor: str,
    role: Role,
    idempotency_key: str | None,
    now: datetime,
) -> RiskChangeResult:
    if add and not body.name:
        raise RiskChangeError(422, "name: the forwarders' name is needed to add the code", "name")
    code = body.normalised()
    # A postal code is an area, not a person: it is its own key in the audit.
    key = f"{body.country}:{code}"

    async def work(conn: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await signals.get_freight_forwarder_postal_code(conn, body.country, code)
        before = (
            {"country": body.country, "postal_code": code, "name": row["name"]}
            if row is not None
            else {}
        )
        if add:
            if row is not None and row["name"] == body.name:
                return None
            await signals.add_freight_forwarder_postal_code(conn, body.country, code, body.name)
            return before, {"country": body.country, "postal_code": code, "name": body.name}
        if row is None:
            raise RiskChangeError(
                404, f"postal code {code} ({body.country}) is not a forwarder postal code"
            )
        await signals.remove_freight_forwarder_postal_code(conn, body.country, code)
        return before, {}

    return await _audited(
        pool,
        change=(
            RiskChange.FORWARDER_POSTAL_CODE_ADD if add else RiskChange.FORWARDER_POSTAL_CODE_REMOVE
        ),
        workflow_id="risk:freight-forwarder-postal-codes",
        fingerprint=key,
        actor=actor,
        role=role,
        reason=body.reason.value,
        note=body.note,
        idempotency_key=idempotency_key,
        now=now,
        work=work,
    )


# --------------------------------------------------------- customer history


def customer_fingerprint(customer_id: str) -> str:
    return identity_hash(IdentityKind.CUSTOMER, customer_id)


def _counters(row: asyncpg.Record | None) -> dict[str, int]:
    return {name: (row[name] if row is not None else 0) for name in signals.HISTORY_COLUMNS}


async def customer_history(pool: asyncpg.Pool, customer_id: str) -> CustomerHistoryRow:
    row = await signals.get_customer_history(pool, customer_id)
    return CustomerHistoryRow(
        customer_fingerprint=customer_fingerprint(customer_id),
        **_counters(row),
        returned_value=await signals.get_customer_returned_value(pool, customer_id),
        updated_at=row["updated_at"] if row is not None else None,
    )


async def correct_history(
    pool: asyncpg.Pool,
    customer_id: str,
    body: CustomerHistoryCorrection,
    *,
    actor: str,
    role: Role,
    idempotency_key: str | None,
    now: datetime,
) -> RiskChangeResult:
    fingerprint = customer_fingerprint(customer_id)
    changes = body.changes()

    async def work(conn: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        before = _counters(await signals.get_customer_history(conn, customer_id))
        after = {**before, **changes}
        if (problem := history_problem(after)) is not None:
            raise RiskChangeError(422, problem, problem.split(":", 1)[0])
        if after == before:
            return None
        await signals.set_customer_history(conn, customer_id, **changes)
        return (
            {"customer_fingerprint": fingerprint, **before},
            {"customer_fingerprint": fingerprint, **after},
        )

    return await _audited(
        pool,
        change=RiskChange.HISTORY_CORRECT,
        workflow_id="risk:customer-history",
        fingerprint=fingerprint,
        actor=actor,
        role=role,
        reason=body.reason.value,
        note=body.note,
        idempotency_key=idempotency_key,
        now=now,
        work=work,
    )
