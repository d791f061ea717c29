"""Issue 14, bugs 1-6: input a hostile client sends is refused at the edge
with a 4xx naming the field, before anything starts (the Temporal client and
the pool are stubs that fail the test when used), and every error body
matches the OpenAPI document."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from domain.chargeback import (
    DisputeEvent,
    IgnoredEvent,
    WebhookPayloadError,
    read_adyen_item,
    read_stripe_event,
)
from domain.common import MAX_MINOR_UNITS, StewardModel
from domain.orders import Order
from domain.returns import ReturnOrder
from domain.webhook_signatures import (
    SignatureError,
    stripe_signature_header,
    verify_adyen_item,
    verify_stripe_signature,
)
from starters.api.request_guard import loggable
from tests.factories import order_data
from tests.unit.test_api_validation import _json, auth, fields, make_client
from tests.unit.test_provider_payloads import adyen_item, dispute, event
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

STRIPE_SECRET = "whsec_test_hostile"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        STEWARD_DATA_DIR=tmp_path,
        STEWARD_TASK_QUEUE="unit-tq",
        STEWARD_STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
    )


@pytest.fixture
def api(settings: Settings) -> TestClient:
    return make_client(settings, EncryptionCodec(Keyring.generate()))


def post_order(api: TestClient, data: dict[str, Any]) -> Any:
    return api.post("/v1/order-reviews", json=json.loads(_json(data)), headers=auth("k-system"))


def one_item(unit_price_minor: int, quantity: int = 1, **item: Any) -> list[dict[str, Any]]:
    return [
        {
            "sku": "HB-1",
            "name": "Tote",
            "category": "handbags",
            "unit_price_minor": unit_price_minor,
            "quantity": quantity,
            **item,
        }
    ]


# ------------------------------------------------------------ 1. amounts


@pytest.mark.parametrize("amount", [2**63, 10**30, MAX_MINOR_UNITS + 1])
def test_an_amount_beyond_the_bound_is_422_on_each_field(api: TestClient, amount: int) -> None:
    data = order_data("FR-BIG", items=one_item(amount), payment={"amount_minor": amount})
    response = post_order(api, data)
    assert response.status_code == 422
    errors = fields(response)
    assert "less than or equal to 1000000000000000" in errors["items[0].unit_price_minor"]
    assert "payment.amount_minor" in errors


def test_a_total_beyond_the_bound_is_422_even_when_each_field_is_in_range(
    api: TestClient,
) -> None:
    # 4 x 4e14 = 1.6e15: each price fits, the total does not.
    price = 4 * 10**14
    data = order_data("FR-SUM", items=one_item(price, 4))
    assert data["payment"]["amount_minor"] == 16 * 10**14
    response = post_order(api, data)
    assert response.status_code == 422
    errors = fields(response)
    assert "exceeds the maximum" in errors["items"]
    # Shipping brings an order whose items fit over the bound.
    shipped = order_data(
        "FR-SHIP", items=one_item(MAX_MINOR_UNITS), shipping_minor=1, payment={"amount_minor": 1}
    )
    assert "exceeds the maximum" in fields(post_order(api, shipped))["shipping_minor"]


def test_the_largest_amount_is_accepted() -> None:
    order = Order.model_validate(order_data("FR-MAX", items=one_item(MAX_MINOR_UNITS)))
    assert order.total_minor == MAX_MINOR_UNITS


def test_return_amounts_are_bounded() -> None:
    line = {"sku": "HB-1", "name": "Tote", "unit_price_minor": 2**63, "quantity": 1}
    with pytest.raises(ValueError, match="less than or equal to 1000000000000000"):
        ReturnOrder.model_validate(
            {
                "order_id": "FR-1",
                "market": "FR",
                "currency": "EUR",
                "delivered_at": "2026-11-20T09:00:00Z",
                "lines": [line],
                "authorisation_ref": "auth-1",
            }
        )


def signed(api: TestClient, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()
    header = stripe_signature_header(STRIPE_SECRET, int(time.time()), body)
    return api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "content-type": "application/json"},
    )


@pytest.mark.parametrize("amount", [2**63, 10**30])
def test_a_signed_stripe_dispute_with_a_huge_amount_is_422_and_starts_nothing(
    api: TestClient, amount: int
) -> None:
    response = signed(api, event("charge.dispute.created", dispute(amount=amount)))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("data.object.amount: exceeds the maximum")


def test_an_adyen_dispute_with_a_huge_amount_is_named() -> None:
    item = adyen_item("CHARGEBACK", amount={"currency": "EUR", "value": 2**63})
    with pytest.raises(WebhookPayloadError) as error:
        read_adyen_item(item, "notificationItems[0].NotificationRequestItem.")
    assert error.value.field == "notificationItems[0].NotificationRequestItem.amount.value"


# ------------------------------------------------ 2. control characters


@pytest.mark.parametrize(
    ("where", "overrides", "field"),
    [
        ("sku", {"items": one_item(245_000, sku="HB\x00TOTE")}, "items[0].sku"),
        ("name", {"items": one_item(245_000, name="Tote\x1b[31m")}, "items[0].name"),
        ("address", {"shipping_address": {"line1": "18 Rue\x00"}}, "shipping_address.line1"),
        ("line2", {"billing_address": {"line2": "3e\x00"}}, "billing_address.line2"),
        ("customer", {"customer": {"full_name": "Camille\x00"}}, "customer.full_name"),
        ("payment", {"payment": {"authorisation_ref": "a\x00"}}, "payment.authorisation_ref"),
        ("device", {"device": {"ip_address": "1.2.3.4\x00"}}, "device.ip_address"),
    ],
)
def test_a_control_character_in_order_text_is_422_naming_the_field(
    api: TestClient, where: str, overrides: dict[str, Any], field: str
) -> None:
    response = post_order(api, order_data(f"FR-{where}", **overrides))
    assert response.status_code == 422, where
    assert "control character" in fields(response)[field]


def test_a_nul_in_a_decline_note_is_422_and_reaches_no_workflow(api: TestClient) -> None:
    response = api.post(
        "/v1/order-reviews/FR-9/decision",
        json={"decision": "decline", "reason_code": "suspected_fraud", "note": "no\u0000"},
        headers=auth("k-coord"),
    )
    assert response.status_code == 422
    assert "U+0000" in fields(response)["note"]


def test_free_text_keeps_tab_and_line_breaks_but_one_line_fields_do_not() -> None:
    class Note(StewardModel):
        text: str
        tags: list[str] = []
        extra: dict[str, str] = {}

    assert Note(text="line 1\r\nline 2\tend").text == "line 1\r\nline 2\tend"
    for bad in (
        {"text": "a\x00"},
        {"text": "a", "tags": ["\x07"]},
        {"text": "", "extra": {"k": "\x7f"}},
    ):
        with pytest.raises(ValueError, match="control character"):
            Note.model_validate(bad)
    with pytest.raises(ValueError, match=r"U\+000A"):
        Order.model_validate(order_data("FR-NL", items=one_item(245_000, sku="HB\nTOTE")))


# ------------------------------------------------------- 3. 500s -> 4xx


def test_an_order_over_the_request_limit_is_413_with_the_limit(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR-HUGE")))
    data["items"][0]["name"] = "x" * (2 * 1024 * 1024)
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-system"))
    assert response.status_code == 413
    assert "1048576 bytes" in response.json()["detail"]
    # Without a Content-Length (chunked), the limit holds too.
    chunked = api.post(
        "/v1/order-reviews",
        content=iter([b"{" + b" " * (700 * 1024), b" " * (700 * 1024) + b"}"]),
        headers={**auth("k-system"), "content-type": "application/json"},
    )
    assert chunked.status_code == 413


def test_an_order_is_bounded_in_text_and_items(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR-LONG")))
    data["items"][0]["sku"] = "S" * 201
    data["shipping_address"]["line1"] = "L" * 501
    data["customer"]["full_name"] = "N" * 501
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-system"))
    assert response.status_code == 422
    errors = fields(response)
    assert {"items[0].sku", "shipping_address.line1", "customer.full_name"} <= set(errors)
    assert "at most 200 characters" in errors["items[0].sku"]
    many = json.loads(_json(order_data("FR-MANY", items=one_item(1_000) * 101)))
    too_many = api.post("/v1/order-reviews", json=many, headers=auth("k-system"))
    assert "at most 100 items" in fields(too_many)["items"]


def _operations(api: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = api.get("/openapi.json").json()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post")
    ]


def _with_nul(path: str, operation: dict[str, Any]) -> tuple[str, str | None]:
    """The URL with a NUL in every path parameter, or one query parameter."""
    params = operation.get("parameters", [])
    if "{" in path:
        return re.sub(r"\{[^}]+\}", "FR%00X", path), None
    query = [p["name"] for p in params if p["in"] == "query"]
    if query:
        return f"{path}?{query[0]}=%00", query[0]
    return path, None


def test_a_nul_in_any_path_or_query_parameter_is_422(api: TestClient) -> None:
    checked = []
    for method, path, operation in _operations(api):
        url, query = _with_nul(path, operation)
        if url == path:
            continue
        response = api.request(method.upper(), url, headers=auth("k-manager"), json={})
        assert response.status_code == 422, url
        named = fields(response)
        expected = f"query.{query}" if query else next(iter(named))
        assert expected in named and "U+0000" in named[expected], (url, named)
        if query is None:
            assert all(f.startswith("path.") for f in named), (url, named)
        checked.append(url)
    assert "/v1/tasks?assignee=%00" in checked or "/v1/tasks?role=%00" in checked
    assert "/v1/audit/FR%00X" in checked
    assert len(checked) >= 20


@pytest.mark.parametrize("route", ["/codec/decode", "/codec/encode"])
def test_a_non_utf8_codec_body_is_400(api: TestClient, route: str) -> None:
    for body in (b"\xff\xfe", b'{"payloads": [{"data": "\xff"}]}'):
        response = api.post(route, content=body, headers=auth("k-ops"))
        assert response.status_code == 400, body
        assert "UTF-8" in response.json()["detail"]


# ------------------------------------------------------- 4. currencies


@pytest.mark.parametrize("currency", ["XYZ", "XXX", "AAA", "XTS"])
def test_a_currency_without_a_known_exponent_is_422(api: TestClient, currency: str) -> None:
    response = post_order(api, order_data("FR-CUR", market="ZZ", currency=currency))
    assert response.status_code == 422
    assert "ISO 4217" in fields(response)["currency"]


def test_a_currency_the_market_does_not_sell_in_is_422(api: TestClient) -> None:
    response = post_order(api, order_data("FR-USD", currency="USD"))
    assert response.status_code == 422
    assert "market FR sells in EUR, not USD" in fields(response)["currency"]
    # A known currency in a market without a list, and JPY in Japan, are fine.
    Order.model_validate(order_data("ZZ-1", market="ZZ", currency="XAF"))
    Order.model_validate(order_data("JP-1", market="JP", currency="JPY"))


def test_a_dispute_in_an_unknown_currency_is_named() -> None:
    with pytest.raises(WebhookPayloadError) as error:
        read_stripe_event(event("charge.dispute.created", dispute(currency="xyz")))
    assert error.value.field == "data.object.currency"


# ------------------------------------------- 5. unaddressable dispute ids


@pytest.mark.parametrize("dispute_id", ["dp 1", "dp/1", "dp\x001", "é" * 3, "d" * 65, "-dp"])
def test_a_signed_dispute_whose_id_the_api_cannot_address_is_422(
    api: TestClient, dispute_id: str
) -> None:
    response = signed(api, event("charge.dispute.created", dispute(id=dispute_id)))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("data.object.id: expected a dispute id")


def test_an_adyen_dispute_whose_psp_reference_is_not_a_key_is_named() -> None:
    with pytest.raises(WebhookPayloadError) as error:
        read_adyen_item(adyen_item("CHARGEBACK", pspReference="99/15"), "items[0].")
    assert error.value.field == "items[0].pspReference"
    # The ids the providers send read as before.
    assert isinstance(read_adyen_item(adyen_item("CHARGEBACK"), ""), DisputeEvent)


def test_a_dispute_with_a_control_character_is_422_naming_the_providers_field(
    api: TestClient,
) -> None:
    response = signed(api, event("charge.dispute.created", dispute(reason="fraudulent\x00")))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "data.object.reason: control character U+0000 is not allowed"
    )
    with pytest.raises(WebhookPayloadError) as adyen:
        read_adyen_item(adyen_item("CHARGEBACK", merchantReference="pay\x1b"), "items[0].")
    assert adyen.value.field == "items[0].merchantReference"


def test_an_ignored_event_with_a_control_character_is_still_acknowledged() -> None:
    # Every authentic event Steward does not act on is acknowledged and recorded
    # (docs/chargeback.md): its type and references are recorded printable.
    read = read_stripe_event(event("customer.created\x00", {"id": "cus_\x07"}))
    assert isinstance(read, IgnoredEvent)
    assert (read.event_type, read.object_ref) == ("customer.created\ufffd", "cus_\ufffd")
    item = adyen_item("REPORT_AVAILABLE\x00", pspReference="99\x0015")
    ignored = read_adyen_item(item, "")
    assert isinstance(ignored, IgnoredEvent) and "\x00" not in ignored.event_key


# ------------------------------------------- 6. error bodies match the document


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def matches(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """The JSON Schema subset FastAPI writes: $ref, anyOf, type, properties, required, items."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        return any(matches(spec, option, value) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind == "object":
        return (
            isinstance(value, dict)
            and all(name in value for name in schema.get("required", []))
            and all(
                matches(spec, sub, value[name])
                for name, sub in schema.get("properties", {}).items()
                if name in value
            )
        )
    if kind == "array":
        return isinstance(value, list) and all(
            matches(spec, schema.get("items", {}), item) for item in value
        )
    checks = {"string": str, "integer": int, "boolean": bool, "null": type(None)}
    return kind is None or isinstance(value, checks.get(kind, object))


def test_every_documented_422_matches_the_body_the_api_sends(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    checked = []
    for method, path, operation in _operations(api):
        if "422" not in operation["responses"]:
            continue
        documented = operation["responses"]["422"]["content"]["application/json"]["schema"]
        # A real 422 of this route: a bad parameter, else a body with an unknown field.
        url, _ = _with_nul(path, operation)
        if url != path:
            response = api.request(method.upper(), url, headers=auth("k-manager"))
        else:
            url = re.sub(r"\{[^}]+\}", "FR-1", path)
            response = api.request(
                method.upper(), url, headers=auth("k-system"), json={"unknown": 1}
            )
        if response.status_code != 422:
            continue  # a route whose bad body is refused otherwise (webhooks: 400/401)
        assert matches(spec, documented, response.json()), (method, path, response.json())
        checked.append(path)
    for route in (
        "/v1/order-reviews/{order_id}",
        "/v1/returns/{rma_id}",
        "/v1/failed-deliveries/{shipment_id}",
        "/v1/carrier-claims/{carrier}/{tracking_number}",
    ):
        assert route in checked
    assert len(checked) >= 25


def test_every_documented_error_is_the_error_body(api: TestClient) -> None:
    for method, path, operation in _operations(api):
        for code, response in operation["responses"].items():
            if code[0] in "45":
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                    method,
                    path,
                    code,
                )
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
    spec = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_an_unpaired_surrogate_is_422_not_a_failure_to_encode(api: TestClient) -> None:
    # JSON may carry "\udc80"; no UTF-8 encoder (Temporal's, PostgreSQL's) takes it.
    body = _json(order_data("FR-SUR", customer={"full_name": "Camille \udc80"}))
    assert "\\udc80" in body
    response = api.post(
        "/v1/order-reviews",
        content=body.encode(),
        headers={**auth("k-system"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "customer.full_name" in fields(response)
    # Read from a parsed dict (as a provider payload is), it is refused as well.
    with pytest.raises(ValueError, match=r"customer\.full_name"):
        Order.model_validate(order_data("FR-SUR", customer={"full_name": "Camille \udc80"}))


# ------------------- findings of the property tests (tests/unit/test_domain_properties.py)


def test_timestamps_and_dates_beyond_the_calendar_are_named_not_raised() -> None:
    past_9999 = 253402300800 * 10
    with pytest.raises(WebhookPayloadError) as stripe_created:
        read_stripe_event(event("charge.dispute.created", dispute()) | {"created": past_9999})
    assert stripe_created.value.field == "created"
    due = dispute(evidence_details={"due_by": past_9999})
    with pytest.raises(WebhookPayloadError) as due_by:
        read_stripe_event(event("charge.dispute.created", due))
    assert due_by.value.field == "data.object.evidence_details.due_by"
    for date in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
        with pytest.raises(WebhookPayloadError) as adyen_date:
            read_adyen_item(adyen_item("CHARGEBACK", eventDate=date), "")
        assert adyen_date.value.field == "eventDate"


def test_signatures_that_cannot_match_are_refused_with_a_signature_error() -> None:
    body = b'{"id": "evt_1"}'
    now = int(time.time())
    for v1 in ("\u00e9" * 64, "ZZ", "A" * 64):
        with pytest.raises(SignatureError, match="no v1 signature matches"):
            verify_stripe_signature(
                body=body, header=f"t={now},v1={v1}", secrets=[STRIPE_SECRET], now=now
            )
    key = "00112233445566778899AABBCCDDEEFF"
    item = adyen_item("CHARGEBACK")
    item["additionalData"]["hmacSignature"] = "\u00e9t\u00e9"
    with pytest.raises(SignatureError, match="does not match"):
        verify_adyen_item(item, [key])
    lone = adyen_item("CHARGEBACK", merchantReference="pay-\udc80")
    with pytest.raises(SignatureError, match="not valid UTF-8"):
        verify_adyen_item(lone, [key])


def test_a_return_order_total_beyond_the_bound_is_named() -> None:
    line = {"sku": "HB-1", "name": "Tote", "unit_price_minor": 4 * 10**14, "quantity": 3}
    order = {
        "order_id": "FR-1",
        "market": "FR",
        "currency": "EUR",
        "delivered_at": "2026-11-20T09:00:00Z",
        "lines": [line],
        "authorisation_ref": "auth-1",
    }
    with pytest.raises(ValueError, match="duties_minor") as error:
        ReturnOrder.model_validate(order)
    assert "exceeds the maximum 1000000000000000" in str(error.value)
    with pytest.raises(ValueError, match="not an ISO 4217 currency"):
        ReturnOrder.model_validate(order | {"currency": "XXX", "lines": [line | {"quantity": 1}]})
    assert ReturnOrder.model_validate(order | {"lines": [line | {"quantity": 2}]})


def test_an_order_date_time_without_an_offset_is_422_not_a_type_error(api: TestClient) -> None:
    data = json.loads(_json(order_data("FR-NAIVE")))
    data["payment"]["authorised_at"] = data["payment"]["authorised_at"][:19]  # no offset
    response = api.post("/v1/order-reviews", json=data, headers=auth("k-system"))
    assert response.status_code == 422
    assert "timezone" in fields(response)["payment.authorised_at"]


def test_every_body_route_documents_the_400_of_an_unparsable_body_and_signatures_their_401(
    api: TestClient,
) -> None:
    spec = api.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
    easypost = spec["paths"]["/v1/webhooks/carrier/easypost"]["post"]["responses"]
    assert "401" in easypost


def test_a_hostile_path_reaches_the_request_log_escaped(api: TestClient) -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        api.get("/v1/audit/FR%1B%5B2J%00", headers=auth("k-manager"))
    (line,) = [entry for entry in logs if entry["event"] == "http_request"]
    assert line["status"] == 422 and line["path"] == "/v1/audit/FR\\x1b[2J\\x00"
    assert loggable("Zoë\ttab") == "Zoë\\x09tab"


def test_a_replacement_order_the_market_does_not_sell_in_is_422(api: TestClient) -> None:
    replacement = json.loads(_json(order_data("FR-REPL", currency="USD")))
    body = {
        "rma_id": "RMA-1",
        "order": {
            "order_id": "FR-1",
            "market": "FR",
            # A delivered order is returned whatever the policy (it is not checked);
            # the replacement is a new order, and must be in the order's currency.
            "currency": "USD",
            "delivered_at": "2026-11-20T09:00:00Z",
            "lines": [{"sku": "HB-1", "name": "Tote", "unit_price_minor": 1000, "quantity": 1}],
            "authorisation_ref": "auth-1",
        },
        "lines": [{"sku": "HB-1", "quantity": 1}],
        "reason": "too_small",
        "resolution": "exchange",
        "contact": {"email": "camille@example.fr"},
        "replacement": replacement,
    }
    response = api.post("/v1/returns", json=body, headers=auth("k-system"))
    assert response.status_code == 422
    assert "market FR sells in EUR, not USD" in fields(response)["replacement.currency"]


def test_the_market_policy_is_not_part_of_the_order_model() -> None:
    # An order a running review holds deserialises whatever the policy becomes.
    assert Order.model_validate(order_data("FR-USD", currency="USD")).currency == "USD"
