"""The HTTP API's edges, without Temporal or PostgreSQL.

`create_app` takes its client and pool as arguments; here they are stubs that
fail the test if the API reaches them when it must not (bad input, missing or
wrong key), and record what it sends when it should.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from clients.order_review import format_amount, review_summary
from domain.common import Role
from domain.order_privacy import is_pseudonymised
from domain.review import OrderReviewState, ReviewStatus
from starters.api.app import create_app, field_path
from starters.auth import ApiKeyError, ApiKeyStore, parse_api_keys
from tests.factories import make_order, order_data
from tests.unit.recording_db import RecordingConnection
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings
from workflows import visibility

KEYS = {
    "k-system": ("order-management", Role.SYSTEM),
    "k-ops": ("olivia", Role.OPS),
    "k-coord": ("alice", Role.COORDINATOR),
    "k-manager": ("marc", Role.MANAGER),
    "k-auditor": ("audrey", Role.AUDITOR),
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class MustNotBeCalled:
    """Stands in for the Temporal client or the pool: any use fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.calls: list[str] = []

    def __getattr__(self, attr: str) -> Any:
        self.calls.append(attr)
        raise AssertionError(f"the API used the {self._name} ({attr}) when it must not")


class _Response:
    def __init__(self, started: bool) -> None:
        self.started = started


class _Handle:
    def __init__(self, started: bool) -> None:
        self._start_workflow_response = _Response(started)


class RecordingClient:
    """Records start_workflow calls; answers like the server would."""

    def __init__(self, *, started: bool = True, closed_duplicate: bool = False) -> None:
        self.starts: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._started = started
        self._closed_duplicate = closed_duplicate

    async def start_workflow(self, *args: Any, **kwargs: Any) -> _Handle:
        self.starts.append((args, kwargs))
        if self._closed_duplicate:
            raise WorkflowAlreadyStartedError(kwargs["id"], args[0], run_id="r1")
        return _Handle(self._started)


class RefusingUpdateClient:
    """A review whose `decide` validator refuses with `message`."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.updates: list[Any] = []

    def get_workflow_handle(self, workflow_id: str) -> Any:
        outer = self

        class Handle:
            async def execute_update(self, name: str, arg: Any, **kwargs: Any) -> Any:
                outer.updates.append((workflow_id, name, arg, kwargs))
                raise WorkflowUpdateFailedError(
                    ApplicationError(outer.message, type="DecisionRejected")
                )

        return Handle()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        STEWARD_DATA_DIR=tmp_path,
        STEWARD_TASK_QUEUE="unit-tq",
    )


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(Keyring.generate())


def make_client(
    settings: Settings, codec: EncryptionCodec, temporal: Any = None, pool: Any = None
) -> TestClient:
    app = create_app(
        settings,
        client=cast(Any, temporal or MustNotBeCalled("Temporal client")),
        pool=cast(Any, pool or MustNotBeCalled("database pool")),
        api_keys=ApiKeyStore.from_mapping(KEYS),
        codec=codec,
    )
    # Not used as a context manager: the lifespan (which would connect) never runs.
    return TestClient(app)


@pytest.fixture
def api(settings: Settings, codec: EncryptionCodec) -> Iterator[TestClient]:
    yield make_client(settings, codec)


def fields(response: Any) -> dict[str, str]:
    body = response.json()
    assert "nothing was started" in body["message"]
    return {d["field"]: d["reason"] for d in body["detail"]}


# ----------------------------------------------------------- start a review


def test_amount_not_matching_items_is_422_on_payment_amount(api: TestClient) -> None:
    data = order_data("FR-1", payment={"amount_minor": 100})
    response = api.post("/v1/order-reviews", json=json.loads(_json(data)), headers=auth("k-system"))
    assert response.status_code == 422
    errors = fields(response)
    assert "payment.amount_minor" in errors
    assert "differs from the order total 245000" in errors["payment.amount_minor"]


def test_each_invalid_field_is_named_with_its_path(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR-2")))
    data["items"][0]["quantity"] = 0
    data["customer"]["email"] = "not-an-email"
    data["market"] = "France"
    data["payment"]["authorisation_expires_at"] = data["payment"]["authorised_at"]
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-system"))
    assert response.status_code == 422
    errors = fields(response)
    assert set(errors) >= {
        "items[0].quantity",
        "customer.email",
        "market",
        "payment.authorisation_expires_at",
    }
    assert "greater than or equal to 1" in errors["items[0].quantity"]
    # Our own validators' messages arrive without pydantic's "Value error, " prefix.
    assert errors["payment.authorisation_expires_at"].startswith("authorisation_expires_at must")


def test_unknown_fields_and_bad_ids_are_refused(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR 3 with spaces")))
    data["coupon"] = "VIP"
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-ops"))
    errors = fields(response)
    assert "coupon" in errors and "order_id" in errors
    assert "Extra inputs are not permitted" in errors["coupon"]


def test_invalid_json_is_422_on_body(api: TestClient) -> None:
    response = api.post(
        "/v1/order-reviews",
        content=b'{"order_id": ',
        headers={**auth("k-system"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "body" in fields(response)


def test_validation_errors_never_echo_customer_data(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR-4")))
    data["customer"]["email"] = "camille durand at example"
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-system"))
    assert response.status_code == 422
    assert "camille durand at example" not in response.text


def test_anonymous_and_unknown_keys_get_401(api: TestClient) -> None:
    body = json.loads(_json(order_data("FR-5")))
    anonymous = api.post("/v1/order-reviews", json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in anonymous.json()["detail"]
    unknown = api.post("/v1/order-reviews", json=body, headers={"X-API-Key": "nope"})
    assert unknown.status_code == 401
    assert api.get("/v1/order-reviews/FR-5").status_code == 401
    assert api.get("/v1/tasks").status_code == 401


def test_wrong_role_gets_403_before_anything_starts(api: TestClient) -> None:
    body = json.loads(_json(order_data("FR-6")))
    response = api.post("/v1/order-reviews", json=body, headers=auth("k-coord"))
    assert response.status_code == 403
    assert "needs one of: ops, system" in response.json()["detail"]


def test_valid_order_starts_one_review_with_policies_and_ui_metadata(
    settings: Settings, codec: EncryptionCodec
) -> None:
    temporal = RecordingClient()
    db = RecordingConnection()
    api = make_client(settings, codec, temporal=temporal, pool=db)
    data = order_data("FR-7")
    response = api.post("/v1/order-reviews", json=json.loads(_json(data)), headers=auth("k-system"))
    assert response.status_code == 202
    assert response.json() == {
        "workflow_id": "order-review:FR-7",
        "order_id": "FR-7",
        "started": True,
    }
    ((args, kwargs),) = temporal.starts
    assert args[0] == "OrderReviewWorkflow"
    assert args[1].order.order_id == "FR-7"
    # Issue 21: the order's personal values went to the personal-data store
    # (encrypted: not one of them among the values sent to the database);
    # the review's input holds the order pseudonymised and the subject id.
    personal = (
        data["customer"]["email"],
        data["customer"]["full_name"],
        data["shipping_address"]["line1"],
        data["device"]["ip_address"],
    )
    assert any("INSERT INTO personal_subjects" in sql for sql, _ in db.statements)
    assert args[1].subject_id is not None and args[1].subject_id.startswith("subj_")
    assert is_pseudonymised(args[1].order)
    started_with = args[1].model_dump_json()
    for value in personal:
        assert value not in started_with
        assert value.encode() not in db.sent()
    # The starter resolves the market's policy: FR reviews have a 2 h SLA.
    assert args[1].policy.review_sla.total_seconds() == 2 * 3600
    assert kwargs["id"] == "order-review:FR-7"
    assert kwargs["task_queue"] == "unit-tq"
    assert kwargs["id_conflict_policy"] is WorkflowIDConflictPolicy.USE_EXISTING
    assert kwargs["id_reuse_policy"] is WorkflowIDReusePolicy.REJECT_DUPLICATE
    assert kwargs["static_summary"] == "Order review FR · 2,450.00 EUR"
    assert "camille" not in kwargs["static_details"].lower()
    attributes = kwargs["search_attributes"]
    assert attributes.get(visibility.PROCESS) == "order-review"
    assert attributes.get(visibility.MARKET) == "FR"


@pytest.mark.parametrize(
    ("temporal", "started"),
    [(RecordingClient(started=False), False), (RecordingClient(closed_duplicate=True), False)],
)
def test_duplicate_order_reports_started_false(
    settings: Settings, codec: EncryptionCodec, temporal: RecordingClient, started: bool
) -> None:
    api = make_client(settings, codec, temporal=temporal, pool=RecordingConnection())
    response = api.post(
        "/v1/order-reviews", json=json.loads(_json(order_data("FR-8"))), headers=auth("k-ops")
    )
    assert response.status_code == 202
    assert response.json()["started"] is started


# ---------------------------------------------------------------- decisions


def test_decision_actor_comes_from_the_key_never_the_body(api: TestClient) -> None:
    response = api.post(
        "/v1/order-reviews/FR-9/decision",
        json={
            "decision": "approve",
            "reason_code": "verified_customer",
            "actor": "someone-else",
            "role": "manager",
        },
        headers=auth("k-coord"),
    )
    assert response.status_code == 422
    assert set(fields(response)) == {"actor", "role"}


def test_decision_with_reserved_or_unknown_reason_is_422(api: TestClient) -> None:
    reserved = api.post(
        "/v1/order-reviews/FR-9/decision",
        json={"decision": "approve", "reason_code": "automatic"},
        headers=auth("k-coord"),
    )
    assert "reserved for Steward" in fields(reserved)["reason_code"]
    unknown = api.post(
        "/v1/order-reviews/FR-9/decision",
        json={"decision": "maybe", "reason_code": "vibes"},
        headers=auth("k-coord"),
    )
    assert set(fields(unknown)) == {"decision", "reason_code"}


def test_decision_by_a_role_that_never_decides_is_403(api: TestClient) -> None:
    response = api.post(
        "/v1/order-reviews/FR-9/decision",
        json={"decision": "approve", "reason_code": "verified_customer"},
        headers=auth("k-ops"),
    )
    assert response.status_code == 403


def test_refused_decision_is_409_with_the_validators_message(
    settings: Settings, codec: EncryptionCodec
) -> None:
    temporal = RefusingUpdateClient("role: coordinator may not decide this review (needs manager)")
    api = make_client(settings, codec, temporal=temporal)
    response = api.post(
        "/v1/order-reviews/FR-10/decision",
        json={"decision": "approve", "reason_code": "verified_customer", "note": "called"},
        headers={**auth("k-coord"), "Idempotency-Key": "retry-1"},
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "role: coordinator may not decide this review (needs manager)"
    }
    ((workflow_id, name, decision, kwargs),) = temporal.updates
    assert (workflow_id, name) == ("order-review:FR-10", "decide")
    assert (decision.actor, decision.role) == ("alice", Role.COORDINATOR)
    assert kwargs["id"] == "alice/retry-1"


def test_bad_path_and_query_parameters_are_named(api: TestClient) -> None:
    response = api.get("/v1/tasks?limit=0&role=boss", headers=auth("k-coord"))
    assert response.status_code == 422
    assert set(fields(response)) == {"query.limit", "query.role"}
    bad_id = api.get("/v1/order-reviews/has%20space", headers=auth("k-coord"))
    assert bad_id.status_code == 422
    assert "path.order_id" in fields(bad_id)


def test_audit_needs_an_audit_reader_role(api: TestClient) -> None:
    assert api.get("/v1/audit/FR-1", headers=auth("k-system")).status_code == 403


def test_tasks_default_to_the_callers_role(settings: Settings, codec: EncryptionCodec) -> None:
    seen: dict[str, Any] = {}

    class Pool:
        async def fetch(self, query: str, *args: Any) -> list[Any]:
            seen["args"] = args
            return []

    api = make_client(settings, codec, pool=Pool())
    response = api.get("/v1/tasks?process=order-review", headers=auth("k-manager"))
    assert response.status_code == 200
    assert response.json() == []
    assert seen["args"] == ("manager", None, "order-review", 100)


def test_openapi_and_docs_are_served(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert "/v1/order-reviews/{order_id}/decision" in spec["paths"]
    assert "/codec/decode" in spec["paths"]
    assert api.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("prefix", "first_prefix", "case"),
    [
        ("/v1/failed-deliveries", "/v1/deliveries", "/SH-1"),
        ("/v1/carrier-claims", "/v1/claims", "/ups/1Z1"),
        ("/v1/chargebacks", "/v1/disputes", "/stripe/dp_1"),
    ],
)
def test_each_process_has_its_own_prefix_and_keeps_its_first_one(
    api: TestClient, prefix: str, first_prefix: str, case: str
) -> None:
    paths = list(api.get("/openapi.json").json()["paths"])
    assert prefix in paths
    # The first name is still served (an unknown key: 401, not an unknown
    # route: 404) but no longer documented.
    assert not [p for p in paths if p == first_prefix or p.startswith(first_prefix + "/")]
    for url in (prefix, prefix + case, first_prefix, first_prefix + case):
        assert api.get(url).status_code == 401, url
    assert api.get("/v1/no-such-process").status_code == 404


# -------------------------------------------------------------------- codec


def _payloads_json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def test_codec_round_trip(api: TestClient) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"order_id":"FR-1"}')
    encoded = api.post(
        "/codec/encode",
        json=_payloads_json([plain]),
        headers={**auth("k-ops"), "X-Namespace": "default"},
    )
    assert encoded.status_code == 200
    sealed = encoded.json()["payloads"][0]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"FR-1" not in base64.b64decode(sealed["data"])

    decoded = api.post("/codec/decode", json=encoded.json(), headers=auth("k-auditor"))
    assert decoded.status_code == 200
    (payload,) = decoded.json()["payloads"]
    assert base64.b64decode(payload["data"]) == b'{"order_id":"FR-1"}'
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"


def test_codec_refuses_remote_callers_without_a_key_and_bad_bodies(api: TestClient) -> None:
    # TestClient's peer is "testclient", not a loopback address.
    assert api.post("/codec/decode", json={"payloads": []}).status_code == 401
    bad = api.post("/codec/decode", content=b"[1, 2]", headers=auth("k-ops"))
    assert bad.status_code == 400


def test_codec_trusts_configured_networks_without_a_key(
    settings: Settings, codec: EncryptionCodec
) -> None:
    # Compose: the UI's browser reaches the API through Docker's gateway.
    trusting = settings.model_copy(update={"codec_trusted_networks": "172.16.0.0/12, 10.9.0.0/16"})
    app = make_client(trusting, codec).app
    inside = TestClient(app, client=("172.18.0.1", 50000))
    assert inside.post("/codec/decode", json={"payloads": []}).status_code == 200
    outside = TestClient(app, client=("192.168.1.20", 50000))
    assert outside.post("/codec/decode", json={"payloads": []}).status_code == 401


def test_codec_reports_an_unknown_key_id(api: TestClient) -> None:
    foreign = EncryptionCodec(Keyring(active="k9", keys={"k9": b"\x01" * 32})).encrypt(
        Payload(metadata={"encoding": b"json/plain"}, data=b"{}")
    )
    response = api.post("/codec/decode", json=_payloads_json([foreign]), headers=auth("k-ops"))
    assert response.status_code == 422
    assert "unknown key id 'k9'" in response.json()["detail"]


def test_cors_lets_the_temporal_ui_call_the_codec(api: TestClient, settings: Settings) -> None:
    origin = f"http://localhost:{settings.temporal_ui_port}"
    response = api.options(
        "/codec/decode",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    other = api.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


# ---------------------------------------------------------- keys and helpers


def test_api_keys_from_settings_and_file(tmp_path: Path) -> None:
    (tmp_path / "api-keys.txt").write_text(
        "# dev keys\nfilekey:alice:coordinator\n\nsvc:key:svc:oms:system\n", encoding="utf-8"
    )
    settings = Settings(
        _env_file=None,
        STEWARD_DATA_DIR=tmp_path,
        STEWARD_API_KEYS="envkey:marc:manager, other:audrey:auditor",
    )
    store = ApiKeyStore.from_settings(settings)
    assert (store.lookup("envkey"), store.lookup("filekey")) == (
        _principal("marc", Role.MANAGER),
        _principal("alice", Role.COORDINATOR),
    )
    # The actor may contain colons: key before the first, role after the last.
    assert store.lookup("svc") == _principal("key:svc:oms", Role.SYSTEM)
    assert store.lookup("missing") is None
    # A key added to the file is picked up without a restart.
    (tmp_path / "api-keys.txt").write_text("newkey:fiona:finance\n", encoding="utf-8")
    assert store.lookup("newkey") == _principal("fiona", Role.FINANCE)
    assert store.lookup("filekey") is None


def test_malformed_keys_are_refused_without_echoing_the_key() -> None:
    with pytest.raises(ApiKeyError, match="unknown role 'boss'") as err:
        parse_api_keys(["s3cret:alice:boss"], "STEWARD_API_KEYS")
    assert "s3cret" not in str(err.value)
    with pytest.raises(ApiKeyError, match="expected 'key:actor:role'"):
        parse_api_keys(["s3cret-only"], "test")


def test_field_paths() -> None:
    assert field_path(("body", "items", 0, "quantity"), "x") == "items[0].quantity"
    assert field_path(("query", "limit"), "x") == "query.limit"
    assert field_path(("body",), "Field required") == "body"
    assert field_path(("body", 12), "JSON decode error") == "body"
    assert field_path(("body",), "payment.currency USD differs", model_level=True) == (
        "payment.currency"
    )
    assert field_path(("body", "payment"), "authorisation_expires_at must", model_level=True) == (
        "payment.authorisation_expires_at"
    )


def test_amounts_follow_the_currency_exponent() -> None:
    assert format_amount(245_000, "EUR") == "2,450.00 EUR"
    assert format_amount(385_000, "JPY") == "385,000 JPY"
    assert format_amount(3_900_000, "KRW") == "3,900,000 KRW"
    assert review_summary(make_order("FR-1")) == "Order review FR · 2,450.00 EUR"


def test_status_model_is_what_get_returns() -> None:
    # Guards the response model: the API serialises the workflow's state as is.
    state = OrderReviewState(
        order_id="FR-1", market="FR", status=ReviewStatus.RELEASED, amount_minor=1, currency="EUR"
    )
    assert OrderReviewState.model_validate_json(state.model_dump_json()) == state


def _principal(actor: str, role: Role) -> Any:
    from starters.auth import Principal

    return Principal(actor=actor, role=role)


def _json(data: dict[str, Any]) -> str:
    # Datetimes in the factory data become ISO strings, as on the wire.
    return json.dumps(data, default=lambda v: v.isoformat())


def test_a_customer_answer_may_not_name_its_own_message_subject(api: TestClient) -> None:
    # Issue 21: Steward keeps the words and sets the subject id; a caller
    # pointing the answer at a subject of its choosing is refused, nothing sent.
    response = api.post(
        "/v1/order-reviews/FR-11/customer-answer",
        json={"event_id": "e1", "confirmed": True, "message_subject_id": "subj_abcdefgh1234"},
        headers=auth("k-system"),
    )
    assert response.status_code == 422
    assert fields(response) == {
        "message_subject_id": "set by Steward: send the customer's words in message"
    }


def test_a_failed_delivery_reply_may_not_name_its_own_message_subject(api: TestClient) -> None:
    response = api.post(
        "/v1/failed-deliveries/SH-11/customer-reply",
        json={"event_id": "e1", "option": "reschedule", "message_subject_id": "subj_abcdefgh1234"},
        headers=auth("k-system"),
    )
    assert response.status_code == 422
    assert fields(response) == {
        "message_subject_id": "set by Steward: send the customer's words in message"
    }
