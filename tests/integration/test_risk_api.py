"""The risk team's API (issue 15) on a real PostgreSQL: every change to what
the risk rules read goes through `/v1/risk` with the key's role, leaves one
audit row with actor, role, reason and before/after (fingerprints only, the
note encrypted), and is seen by scoring's `load_signals` at once; a retry or
a duplicate changes nothing twice; a refused request writes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from domain.common import Role
from domain.risk_rules import IdentityKind, identity_hash
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import personal_data as pd
from store import signals
from tests.factories import make_order
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

pytestmark = pytest.mark.integration

KEYS = {
    "rk-coord": ("alice", Role.COORDINATOR),
    "rk-manager": ("marc", Role.MANAGER),
    "rk-auditor": ("audrey", Role.AUDITOR),
    "rk-system": ("svc:oms", Role.SYSTEM),
}
COORDINATOR = {"Authorization": "Bearer rk-coord"}
MANAGER = {"Authorization": "Bearer rk-manager"}
AUDITOR = {"Authorization": "Bearer rk-auditor"}
SYSTEM = {"Authorization": "Bearer rk-system"}

EMAIL = "Camille.Durand@Example.fr"  # make_order's customer
SHIP_TO = {
    "line1": "12 rue de la Paix",
    "city": "Paris",
    "postal_code": "75002",
    "country": "FR",
}


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    clean_db: asyncpg.Pool, integration_settings: Settings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(update={"data_dir": tmp_path})
    app = create_app(
        settings,
        client=None,
        pool=clean_db,
        api_keys=ApiKeyStore.from_mapping(KEYS),
        codec=EncryptionCodec(Keyring.generate()),
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


async def _audit(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM audit_log WHERE process = 'risk' ORDER BY id"))


async def _rows_written(db: asyncpg.Pool) -> int:
    return int(
        await db.fetchval(
            """SELECT (SELECT count(*) FROM risk_lists) + (SELECT count(*) FROM freight_forwarders)
                    + (SELECT count(*) FROM freight_forwarder_postal_codes)
                    + (SELECT count(*) FROM customer_history)
                    + (SELECT count(*) FROM audit_log)"""
        )
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_a_block_is_audited_without_the_clear_value_and_scoring_sees_it(
    api: httpx.AsyncClient, clean_db: asyncpg.Pool
) -> None:
    order = make_order("FR-R1")
    assert (await signals.load_signals(clean_db, order)).blocklisted == []
    body = {
        "kind": "email",
        "value": " camille.durand+shop@example.fr",
        "reason": "confirmed_fraud",
        "note": "three stolen cards in one hour",
    }
    first = await api.post(
        "/v1/risk/lists/block/entries",
        json=body,
        headers={**COORDINATOR, "Idempotency-Key": "blk-1"},
    )
    assert first.status_code == 200, first.text
    result = first.json()
    fingerprint = identity_hash(IdentityKind.EMAIL, EMAIL)
    assert result["changed"] is True and result["replayed"] is False
    assert result["fingerprint"] == fingerprint
    assert result["before"] == {}

    # Scoring sees the block at once (the same normalisation: case, +tag).
    assert (await signals.load_signals(clean_db, order)).blocklisted == [IdentityKind.EMAIL]

    [row] = await _audit(clean_db)
    assert (row["actor"], row["role"], row["reason"]) == ("alice", "coordinator", "confirmed_fraud")
    assert row["action"] == "risk_block_list_added"
    assert row["case_id"] == fingerprint
    assert row["before"] == {}
    note_ref = row["after"].pop("note_ref")
    assert row["after"] == {
        "list": "block",
        "kind": "email",
        "fingerprint": fingerprint,
        "reason": "confirmed_fraud",
        "added_by": "alice",
    }
    text = json.dumps({k: str(v) for k, v in dict(row).items()}).lower()
    assert "camille" not in text and "stolen" not in text
    assert await pd.get_subject(clean_db, note_ref) == {"note": "three stolen cards in one hour"}

    # The same request again (a retry with its key, two copies at once):
    # the first answer, one audit row.
    again = await asyncio.gather(
        *(
            api.post(
                "/v1/risk/lists/block/entries",
                json=body,
                headers={**COORDINATOR, "Idempotency-Key": "blk-1"},
            )
            for _ in range(2)
        )
    )
    for answer in again:
        assert answer.status_code == 200
        assert answer.json()["replayed"] is True
        assert answer.json()["audit_entry_id"] == result["audit_entry_id"]
    # Without a key: the entry is already so, nothing written.
    same = await api.post("/v1/risk/lists/block/entries", json=body, headers=COORDINATOR)
    assert same.status_code == 200 and same.json()["changed"] is False
    assert len(await _audit(clean_db)) == 1
    # The key on another change is refused and changes nothing.
    other = await api.post(
        "/v1/risk/lists/block/entries",
        json={**body, "value": "other@example.net"},
        headers={**COORDINATOR, "Idempotency-Key": "blk-1"},
    )
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    assert await clean_db.fetchval("SELECT count(*) FROM risk_lists") == 1

    listed = await api.get("/v1/risk/lists/block/entries", headers=AUDITOR)
    assert listed.status_code == 200
    assert [(e["kind"], e["fingerprint"]) for e in listed.json()] == [("email", fingerprint)]


@pytest.mark.asyncio(loop_scope="session")
async def test_roles_come_from_the_key_and_a_refusal_writes_nothing(
    api: httpx.AsyncClient, clean_db: asyncpg.Pool
) -> None:
    allow = {"kind": "customer", "value": "C-778120", "reason": "vip_customer"}
    # Allowing loosens the rules: a manager's decision.
    refused = await api.post("/v1/risk/lists/allow/entries", json=allow, headers=COORDINATOR)
    assert refused.status_code == 403
    assert "manager" in refused.json()["detail"]
    for headers in (AUDITOR, SYSTEM):
        answer = await api.post("/v1/risk/lists/block/entries", json=allow, headers=headers)
        assert answer.status_code == 403
    assert (await api.post("/v1/risk/lists/block/entries", json=allow)).status_code == 401
    assert await _rows_written(clean_db) == 0

    added = await api.post("/v1/risk/lists/allow/entries", json=allow, headers=MANAGER)
    assert added.status_code == 200 and added.json()["changed"] is True
    assert (await signals.load_signals(clean_db, make_order("FR-R2"))).allowlisted is True

    # Blocking tightens (a coordinator may); unblocking loosens (a manager only).
    block = {"kind": "device", "value": "dev-778120-iphone", "reason": "account_takeover"}
    assert (
        await api.post("/v1/risk/lists/block/entries", json=block, headers=COORDINATOR)
    ).status_code == 200
    unblock = {**block, "reason": "false_positive"}
    denied = await api.request(
        "DELETE", "/v1/risk/lists/block/entries", json=unblock, headers=COORDINATOR
    )
    assert denied.status_code == 403
    removed = await api.request(
        "DELETE",
        "/v1/risk/lists/block/entries",
        json=unblock,
        headers={**MANAGER, "Idempotency-Key": "unblk-1"},
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["after"] == {}
    assert removed.json()["before"]["reason"] == "account_takeover"
    # The retry answers the first removal; without the key, it is not there.
    retried = await api.request(
        "DELETE",
        "/v1/risk/lists/block/entries",
        json=unblock,
        headers={**MANAGER, "Idempotency-Key": "unblk-1"},
    )
    assert retried.status_code == 200 and retried.json()["replayed"] is True
    gone = await api.request(
        "DELETE", "/v1/risk/lists/block/entries", json=unblock, headers=MANAGER
    )
    assert gone.status_code == 404
    actions = [(r["action"], r["actor"], r["role"]) for r in await _audit(clean_db)]
    assert actions == [
        ("risk_allow_list_added", "marc", "manager"),
        ("risk_block_list_added", "alice", "coordinator"),
        ("risk_block_list_removed", "marc", "manager"),
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_forwarders_and_postal_codes_reach_scoring(
    api: httpx.AsyncClient, clean_db: asyncpg.Pool
) -> None:
    order = make_order("FR-R3", shipping_address=SHIP_TO)
    assert not (await signals.load_signals(clean_db, order)).freight_forwarder_address
    forwarder = {"address": SHIP_TO, "name": "Paix Forwarding", "reason": "freight_forwarder"}
    added = await api.post(
        "/v1/risk/freight-forwarders/addresses", json=forwarder, headers=COORDINATOR
    )
    assert added.status_code == 200, added.text
    fingerprint = identity_hash(IdentityKind.ADDRESS, order.shipping_address)
    assert added.json()["fingerprint"] == fingerprint
    assert (await signals.load_signals(clean_db, order)).freight_forwarder_address
    [row] = await _audit(clean_db)
    assert "paix" not in json.dumps(row["after"]).replace("Paix Forwarding", "").lower()
    # Unmarking loosens: a manager, by the fingerprint the listing shows.
    listed = (await api.get("/v1/risk/freight-forwarders/addresses", headers=COORDINATOR)).json()
    assert [f["fingerprint"] for f in listed] == [fingerprint]
    unmark = {"fingerprint": fingerprint, "reason": "entered_in_error"}
    assert (
        await api.request(
            "DELETE", "/v1/risk/freight-forwarders/addresses", json=unmark, headers=COORDINATOR
        )
    ).status_code == 403
    assert (
        await api.request(
            "DELETE", "/v1/risk/freight-forwarders/addresses", json=unmark, headers=MANAGER
        )
    ).status_code == 200
    assert not (await signals.load_signals(clean_db, order)).freight_forwarder_address

    code = {
        "country": "FR",
        "postal_code": "75 002",
        "name": "Paris 2e",
        "reason": "freight_forwarder",
    }
    assert (
        await api.post("/v1/risk/freight-forwarders/postal-codes", json=code, headers=COORDINATOR)
    ).status_code == 200
    assert (await signals.load_signals(clean_db, order)).freight_forwarder_address
    codes = (await api.get("/v1/risk/freight-forwarders/postal-codes", headers=AUDITOR)).json()
    assert [(c["country"], c["postal_code"]) for c in codes] == [("FR", "75002")]
    removed = await api.request(
        "DELETE", "/v1/risk/freight-forwarders/postal-codes", json=code, headers=MANAGER
    )
    assert removed.status_code == 200
    assert not (await signals.load_signals(clean_db, order)).freight_forwarder_address
    assert [r["action"] for r in await _audit(clean_db)] == [
        "freight_forwarder_added",
        "freight_forwarder_removed",
        "freight_forwarder_postal_code_added",
        "freight_forwarder_postal_code_removed",
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_history_correction_is_audited_before_and_after(
    api: httpx.AsyncClient, clean_db: asyncpg.Pool
) -> None:
    order = make_order("FR-R4")
    customer_id = order.customer.customer_id
    await signals.set_customer_history(
        clean_db, customer_id, completed_orders=6, chargebacks=1, returns=0
    )
    assert (await signals.load_signals(clean_db, order)).chargebacks == 1
    correction = {
        "customer_id": customer_id,
        "chargebacks": 0,
        "reason": "data_correction",
        "note": "the bank reversed it",
    }
    assert (
        await api.post(
            "/v1/risk/customer-history/corrections", json=correction, headers=COORDINATOR
        )
    ).status_code == 403
    # Counters that would not add up after the merge: 422 naming the field, nothing written.
    inconsistent = await api.post(
        "/v1/risk/customer-history/corrections",
        json={**correction, "chargebacks_lost": 2, "chargebacks": None},
        headers=MANAGER,
    )
    assert inconsistent.status_code == 422
    assert [d["field"] for d in inconsistent.json()["detail"]] == ["chargebacks"]
    assert await _audit(clean_db) == []
    answer = await api.post(
        "/v1/risk/customer-history/corrections", json=correction, headers=MANAGER
    )
    assert answer.status_code == 200, answer.text
    found = await signals.load_signals(clean_db, order)
    assert (found.completed_orders, found.chargebacks) == (6, 0)

    fingerprint = identity_hash(IdentityKind.CUSTOMER, customer_id)
    [row] = await _audit(clean_db)
    assert (row["action"], row["actor"], row["role"]) == (
        "customer_history_corrected",
        "marc",
        "manager",
    )
    assert row["case_id"] == fingerprint and customer_id not in json.dumps(dict(row), default=str)
    assert row["before"]["chargebacks"] == 1 and row["after"]["chargebacks"] == 0
    assert row["before"]["completed_orders"] == row["after"]["completed_orders"] == 6

    # Order management's sync may correct too (a system key); the same values
    # again change nothing and write no row.
    sync = {"customer_id": customer_id, "returns": 2, "reason": "order_management_sync"}
    assert (
        await api.post("/v1/risk/customer-history/corrections", json=sync, headers=SYSTEM)
    ).json()["changed"] is True
    again = await api.post("/v1/risk/customer-history/corrections", json=sync, headers=SYSTEM)
    assert again.json()["changed"] is False
    assert len(await _audit(clean_db)) == 2

    shown = await api.get(
        "/v1/risk/customer-history", params={"customer_id": customer_id}, headers=AUDITOR
    )
    assert shown.status_code == 200
    assert shown.json()["customer_fingerprint"] == fingerprint
    assert (shown.json()["completed_orders"], shown.json()["returns"]) == (6, 2)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_cli_changes_the_lists_through_the_api_as_the_key(
    clean_db: asyncpg.Pool,
    integration_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from starters import api_client, cli
    from tests.integration.test_cli_through_api import LoopBridge

    settings = integration_settings.model_copy(update={"data_dir": tmp_path})
    app = create_app(
        settings,
        client=None,
        pool=clean_db,
        api_keys=ApiKeyStore.from_mapping(KEYS),
        codec=EncryptionCodec(Keyring.generate()),
    )
    bridge = LoopBridge(app, asyncio.get_running_loop())
    monkeypatch.setattr(
        api_client, "cli_client", lambda: api_client.ApiClient.from_environment(transport=bridge)
    )
    runner = CliRunner()

    async def steward(key: str, *args: str) -> Any:
        env = {
            "STEWARD_API_KEY": key,
            "STEWARD_API_URL": "http://steward.test",
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        return await asyncio.to_thread(runner.invoke, cli.app, list(args), env=env)

    block = ("risk", "block", "add", "--kind", "device", "--value", "dev-stolen-1")
    added = await steward("rk-coord", *block, "--reason", "account_takeover")
    assert added.exit_code == 0, added.output
    fingerprint = identity_hash(IdentityKind.DEVICE, "dev-stolen-1")
    assert "risk_block_list_added" in added.output and fingerprint in added.output
    listed = await steward("rk-auditor", "risk", "block", "list")
    assert listed.exit_code == 0 and fingerprint in listed.output
    # Unblocking is a manager's: the coordinator's key is refused with the API's reason.
    unblock = ("risk", "block", "remove", "--kind", "device", "--fingerprint", fingerprint)
    refused = await steward("rk-coord", *unblock, "--reason", "false_positive")
    assert refused.exit_code == 1
    assert "not allowed" in refused.output and "manager" in refused.output
    removed = await steward("rk-manager", *unblock, "--reason", "false_positive")
    assert removed.exit_code == 0, removed.output
    rows = [(r["action"], r["actor"], r["role"]) for r in await _audit(clean_db)]
    assert rows == [
        ("risk_block_list_added", "alice", "coordinator"),
        ("risk_block_list_removed", "marc", "manager"),
    ]
    shown = await steward("rk-auditor", "risk", "history", "show", "C-778120")
    assert shown.exit_code == 0 and "completed_orders" in shown.output
