"""Local fake payment providers for the integration tests: real HTTP servers on
loopback, started by the test, speaking the request and answer shapes of
Stripe's and Adyen's API references, so the official libraries inside the
adapters talk to them exactly as they would to the providers. No network.

- FakeStripe: PaymentIntents capture and cancel, Refunds; form-encoded
  requests, Bearer key, Idempotency-Key replay (and Stripe's
  idempotency_error for a key reused with other parameters), Stripe's error
  bodies.
- FakeAdyen: Checkout modifications (captures, cancels, refunds) answered
  `received` (201) with the modification's pspReference; then, like Adyen,
  it POSTs the CAPTURE / CANCELLATION / REFUND notification (HMAC-signed with
  Adyen's own library) to the webhook URL it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import requests
import uvicorn
from Adyen.util import generate_notification_sig
from fastapi import FastAPI

from tests.integration.conftest import free_port


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class _Server:
    """A ThreadingHTTPServer on a free loopback port calling `handle`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, extra = fake.handle(self.path, headers, raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
                fake.after_answer()

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = fake.handle_get(self.path, headers)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def handle(
        self, path: str, headers: dict[str, str], raw: str
    ) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def handle_get(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        return 404, {"error": {"type": "invalid_request_error", "message": f"GET {path}"}}

    def after_answer(self) -> None:
        """Runs after the answer went out (Adyen sends its notification then)."""

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @contextlib.contextmanager
    def running(self) -> Iterator[Any]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


# -- Stripe -----------------------------------------------------------------------


class FakeStripe(_Server):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._replays: dict[str, tuple[str, dict[str, list[str]], int, Any]] = {}
        # What a new refund answers: "succeeded", or "pending" (its final
        # status then comes by webhook: `refund_event`).
        self.refund_status = "succeeded"

    def authorise(self, amount: int, currency: str) -> str:
        """A PaymentIntent the checkout confirmed with capture_method=manual."""
        intent_id = f"pi_{uuid.uuid4().hex[:24]}"
        self.intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": amount,
            "amount_received": 0,
            "capture_method": "manual",
            "currency": currency.lower(),
            "latest_charge": f"ch_{uuid.uuid4().hex[:24]}",
            "livemode": False,
            "metadata": {},
            "status": "requires_capture",
        }
        return intent_id

    @staticmethod
    def _error(status: int, type_: str, message: str, code: str | None = None) -> tuple[int, Any]:
        error: dict[str, Any] = {"type": type_, "message": message}
        if code:
            error["code"] = code
        return status, {"error": error}

    def handle(
        self, path: str, headers: dict[str, str], raw: str
    ) -> tuple[int, Any, dict[str, str]]:
        form = parse_qs(raw)
        self.record(Recorded("POST", path, headers, {k: v[0] for k, v in form.items()}))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            status, body = self._error(
                401, "invalid_request_error", "Invalid API Key provided: sk_test_****"
            )
            return status, body, {}
        key = headers.get("idempotency-key", "")
        with self._lock:
            replay = self._replays.get(key)
            if replay is not None:
                first_path, first_form, status, body = replay
                if (first_path, first_form) != (path, form):
                    status, body = self._error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                return status, body, {"Idempotent-Replayed": "true"}
            status, body = self._apply(path, form)
            self._replays[key] = (path, form, status, body)
        return status, body, {}

    def handle_get(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        """Retrieve a PaymentIntent (what Steward reads after giving a capture up)."""
        self.record(Recorded("GET", path, headers, {}))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "invalid_request_error", "Invalid API Key provided")
        match = re.fullmatch(r"/v1/payment_intents/([^/?]+)", path)
        intent = self.intents.get(match[1]) if match else None
        if intent is None:
            return self._error(
                404, "invalid_request_error", f"No such payment_intent: {path}", "resource_missing"
            )
        return 200, dict(intent)

    def _apply(self, path: str, form: dict[str, list[str]]) -> tuple[int, Any]:
        if match := re.fullmatch(r"/v1/payment_intents/([^/]+)/(capture|cancel)", path):
            intent = self.intents.get(match[1])
            if intent is None:
                return self._error(
                    404,
                    "invalid_request_error",
                    f"No such payment_intent: '{match[1]}'",
                    "resource_missing",
                )
            if intent["status"] != "requires_capture":
                return self._error(
                    400,
                    "invalid_request_error",
                    f"This PaymentIntent could not be {match[2]}d because it has a status of "
                    f"{intent['status']}.",
                    "payment_intent_unexpected_state",
                )
            if match[2] == "cancel":
                intent.update(status="canceled", amount_capturable=0)
                return 200, dict(intent)
            amount = int(form.get("amount_to_capture", [intent["amount_capturable"]])[0])
            if amount > intent["amount_capturable"]:
                return self._error(
                    400,
                    "invalid_request_error",
                    "The amount to capture is greater than the amount capturable.",
                    "amount_too_large",
                )
            intent.update(status="succeeded", amount_capturable=0, amount_received=amount)
            return 200, dict(intent)
        if path == "/v1/refunds":
            intent = self.intents.get(form.get("payment_intent", [""])[0])
            if intent is None:
                return self._error(
                    404, "invalid_request_error", "No such payment_intent", "resource_missing"
                )
            amount = int(form["amount"][0])
            refunded = sum(
                r["amount"]
                for r in self.refunds.values()
                if r["payment_intent"] == intent["id"] and r["status"] not in ("failed", "canceled")
            )
            if amount > intent["amount_received"] - refunded:
                return self._error(
                    400,
                    "invalid_request_error",
                    "Refund amount is greater than unrefunded amount on charge.",
                    "amount_too_large",
                )
            refund = {
                "id": f"re_{uuid.uuid4().hex[:24]}",
                "object": "refund",
                "amount": amount,
                "charge": intent["latest_charge"],
                "currency": intent["currency"],
                "metadata": {
                    k[len("metadata[") : -1]: v[0]
                    for k, v in form.items()
                    if k.startswith("metadata[")
                },
                "payment_intent": intent["id"],
                "reason": None,
                "status": self.refund_status,
            }
            self.refunds[refund["id"]] = refund
            return 200, dict(refund)
        return self._error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path})")

    def refund_event(
        self,
        refund_id: str,
        status: str,
        *,
        event_type: str = "refund.updated",
        failure_reason: str | None = None,
    ) -> dict[str, Any]:
        """The refund moves to `status`: the Event object Stripe sends about it
        (API reference: the Refund, not expanded, in `data.object`)."""
        refund = self.refunds[refund_id]
        previous = refund["status"]
        refund["status"] = status
        if failure_reason:
            refund["failure_reason"] = failure_reason
        return {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "data": {"object": dict(refund), "previous_attributes": {"status": previous}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }


# -- Adyen ------------------------------------------------------------------------

MODIFICATIONS = {"captures": "CAPTURE", "cancels": "CANCELLATION", "refunds": "REFUND"}


@dataclass
class AdyenPayment:
    psp: str
    amount: int
    currency: str
    captured: int = 0
    refunded: int = 0
    cancelled: bool = False


@dataclass
class Delivery:
    body: dict[str, Any]
    status: int = 0
    text: str = ""


@dataclass
class FakeAdyenState:
    payments: dict[str, AdyenPayment] = field(default_factory=dict)
    replays: dict[str, tuple[int, Any]] = field(default_factory=dict)
    outgoing: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class FakeAdyen(_Server):
    """`mode`: "auto" sends each notification just after the answer,
    "before_answer" before it (the outcome overtakes the answer), "hold" keeps
    them until `release()`."""

    def __init__(
        self, api_key: str, hmac_key: str, merchant_account: str, *, version: int = 71
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.hmac_key = hmac_key
        self.merchant_account = merchant_account
        self.version = version
        self.webhook_url = ""
        self.mode = "auto"
        self.state = FakeAdyenState()
        # eventCode -> reason: the next such modification fails with it.
        self.fail_next: dict[str, str] = {}
        # eventCode -> value: the next such notification names this amount
        # instead of the requested one.
        self.notify_value_next: dict[str, int] = {}

    def authorise(self, amount: int, currency: str) -> str:
        psp = f"{uuid.uuid4().int % 10**16:016d}"
        self.state.payments[psp] = AdyenPayment(psp, amount, currency)
        return psp

    @staticmethod
    def _error(status: int, code: str, message: str, error_type: str) -> tuple[int, Any]:
        return status, {
            "status": status,
            "errorCode": code,
            "message": message,
            "errorType": error_type,
        }

    def handle(
        self, path: str, headers: dict[str, str], raw: str
    ) -> tuple[int, Any, dict[str, str]]:
        body = json.loads(raw or "{}")
        self.record(Recorded("POST", path, headers, body))
        if headers.get("x-api-key") != self.api_key:
            status, answer = self._error(
                401, "000", "HTTP Status Response - Unauthorized", "security"
            )
            return status, answer, {}
        match = re.fullmatch(rf"/v{self.version}/payments/([^/]+)/(captures|cancels|refunds)", path)
        if match is None:
            status, answer = self._error(404, "000", f"no endpoint {path}", "validation")
            return status, answer, {}
        key = headers.get("idempotency-key", "")
        with self._lock:
            if key and key in self.state.replays:
                status, answer = self.state.replays[key]
                return status, answer, {"idempotency-key": key}
            status, answer = self._modify(match[1], match[2], body)
            if key:
                self.state.replays[key] = (status, answer)
        return status, answer, {}

    def _modify(self, payment_psp: str, action: str, body: dict[str, Any]) -> tuple[int, Any]:
        payment = self.state.payments.get(payment_psp)
        if payment is None:
            return self._error(
                422, "167", "Original pspReference required for this operation", "validation"
            )
        if body.get("merchantAccount") != self.merchant_account:
            return self._error(403, "901", "Invalid Merchant Account", "security")
        code = MODIFICATIONS[action]
        amount = body.get("amount") or {"value": payment.amount, "currency": payment.currency}
        value = int(amount["value"])
        reason = self.fail_next.pop(code, "")
        over_capture = code == "CAPTURE" and (
            payment.cancelled or payment.captured + value > payment.amount
        )
        over_refund = code == "REFUND" and payment.refunded + value > payment.captured
        if not reason and (over_capture or over_refund):
            reason = "Insufficient balance on payment"
        elif not reason and code == "CANCELLATION" and payment.captured:
            reason = "Payment already captured"
        if not reason:
            if code == "CAPTURE":
                payment.captured += value
            elif code == "REFUND":
                payment.refunded += value
            else:
                payment.cancelled = True
        psp = f"{uuid.uuid4().int % 10**16:016d}"
        notified = self.notify_value_next.pop(code, value)
        item: dict[str, Any] = {
            "amount": {"currency": amount["currency"], "value": notified},
            "eventCode": code,
            "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
            "merchantAccountCode": self.merchant_account,
            "merchantReference": body.get("reference", ""),
            "originalReference": payment_psp,
            "pspReference": psp,
            "reason": reason,
            "success": "false" if reason else "true",
        }
        item["additionalData"] = {
            "hmacSignature": generate_notification_sig(item, self.hmac_key).decode()
        }
        self.state.outgoing.append(
            {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        )
        answer: dict[str, Any] = {
            "merchantAccount": self.merchant_account,
            "paymentPspReference": payment_psp,
            "pspReference": psp,
            "reference": body.get("reference", ""),
            "status": "received",
        }
        if "amount" in body:
            answer["amount"] = body["amount"]
        if self.mode == "before_answer":
            self._send_outgoing()
        return 201, answer

    def after_answer(self) -> None:
        if self.mode == "auto":
            # Adyen's notifications follow the answer within moments.
            threading.Timer(0.2, self._send_outgoing).start()
        elif self.mode == "hold":
            with self._lock:
                self.state.held += self.state.outgoing
                self.state.outgoing = []

    def _send_outgoing(self) -> None:
        with self._lock:
            batch, self.state.outgoing = self.state.outgoing, []
        for body in batch:
            self.deliver(body)

    def deliver(self, body: dict[str, Any]) -> Delivery:
        """POST one notification body to Steward's webhook, as Adyen does."""
        response = requests.post(self.webhook_url, json=body, timeout=30)
        delivery = Delivery(body, response.status_code, response.text)
        with self._lock:
            self.state.deliveries.append(delivery)
        return delivery

    def release(self) -> list[Delivery]:
        """Send the held notifications (call from a thread: it blocks)."""
        with self._lock:
            held, self.state.held = self.state.held, []
        return [self.deliver(body) for body in held]

    def modifications(self) -> list[Recorded]:
        return [r for r in self.requests if "/payments/" in r.path]


@contextlib.asynccontextmanager
async def serve_api(app: FastAPI) -> AsyncIterator[str]:
    """Steward's API on a loopback port in this event loop (the fake Adyen
    posts its notifications to it over HTTP)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
