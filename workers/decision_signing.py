"""Signed human decisions: a decision counts only if a Steward process that
holds the decision key sent it (the API, on behalf of an authenticated key).

Why: anyone who can reach Temporal can send an update. Tried as an ops person
would, `temporal workflow update execute --name decide` with a self-declared
actor and role was applied by the worker. Every human decision in Steward is
an update, so:

- `DecisionSigner` (a Temporal client interceptor, installed by
  `starters.client.connect`, so the API and every Steward process sign) adds a
  `steward-decision` header to every update it sends: an HMAC-SHA256, with the
  active key of the decision keyring, over the workflow id, the update's name,
  its update id, the time, and a digest of the arguments (the decision itself:
  actor, role, decision, reason, note...).
- `DecisionVerifier` (a worker interceptor, installed by `build_worker`) runs
  before every update validator of every workflow, the processes added later
  included: it refuses, with a reason the caller reads, an update whose
  payload arrived unencrypted (sent without Steward's codec), an update
  without the header, with a signature that does not match (a changed
  decision, another case, an unknown key), or one signed too long ago.

Replay: validators do not run when a history is replayed, so decisions in
recorded histories (which carry no header) replay unchanged; a refused update
never enters history. Nothing here changes a workflow's commands.

The header holds no personal data (no actor name): only the key id, the time
and the MAC. The keyring has the codec's format and rotation
(workers/codec.py: `{"active": kid, "keys": {kid: base64}}`); the file is
`STEWARD_DECISION_KEYRING` (default `<data dir>/decision-keyring.json`), shared
by the API and the workers and by nobody else.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor as ClientInterceptor,
)
from temporalio.client import (
    OutboundInterceptor,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from workers.codec import Keyring

HEADER = "steward-decision"
VERSION = 1
# The API signs just before sending; the worker validates when it takes the
# update, seconds later. An hour leaves room for a worker backlog.
DEFAULT_MAX_AGE = timedelta(hours=1)
# Business error type of every refusal here (clients turn it into a 409).
DECISION_NOT_SIGNED = "DecisionNotSigned"

# Set by the payload converter each time it decodes arguments, read by the
# verifier right after, in the same update task (see workers/converter.py).
unencrypted_arguments: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "steward_unencrypted_arguments", default=False
)


def args_digest(args: Sequence[Any]) -> str:
    """SHA-256 of the arguments' canonical JSON: the same on the sending side
    (the models the client passed) and in the worker (the models it decoded)."""
    canonical = json.dumps(
        to_jsonable_python(list(args)), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _message(workflow_id: str, update: str, update_id: str, at: str, digest: str) -> bytes:
    return "\n".join(
        (f"steward-decision-v{VERSION}", workflow_id, update, update_id, at, digest)
    ).encode("utf-8")


def sign(
    keyring: Keyring,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    args: Sequence[Any],
    now: datetime,
) -> Payload:
    """The header payload vouching for this update."""
    at = now.astimezone(UTC).isoformat()
    mac = hmac.new(
        keyring.keys[keyring.active],
        _message(workflow_id, update, update_id, at, args_digest(args)),
        hashlib.sha256,
    ).hexdigest()
    body = {"v": VERSION, "kid": keyring.active, "at": at, "mac": mac}
    return Payload(
        metadata={"encoding": b"json/plain"},
        data=json.dumps(body, separators=(",", ":")).encode("utf-8"),
    )


def verification_error(
    keys: Mapping[str, bytes],
    header: Payload | None,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    args: Sequence[Any],
    now: datetime,
    max_age: timedelta | None,
) -> str | None:
    """Why this update is not a decision the API vouched for; None when it is."""
    how = "decisions are taken through the Steward API or console"
    if header is None:
        return f"decision refused: it was not signed by the Steward API ({how})"
    try:
        body = json.loads(header.data)
        kid, at, mac = str(body["kid"]), str(body["at"]), str(body["mac"])
        signed_at = datetime.fromisoformat(at)
    except (ValueError, KeyError, TypeError):
        return f"decision refused: its signature header is malformed ({how})"
    key = keys.get(kid)
    if key is None:
        return f"decision refused: signed with an unknown key {kid!r} ({how})"
    expected = hmac.new(
        key, _message(workflow_id, update, update_id, at, args_digest(args)), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return (
            "decision refused: its signature does not match this case and decision "
            f"(changed after signing, or signed for another case) ({how})"
        )
    if max_age is not None and signed_at.tzinfo is not None and now - signed_at > max_age:
        return f"decision refused: signed at {at}, more than {max_age} ago; send it again"
    return None


# ------------------------------------------------------------ client side


class _SigningOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, keyring: Keyring) -> None:
        super().__init__(next)
        self._keyring = keyring

    def _signed(
        self,
        headers: Mapping[str, Payload],
        workflow_id: str,
        update: str,
        update_id: str,
        args: Sequence[Any],
    ) -> dict[str, Payload]:
        header = sign(
            self._keyring,
            workflow_id=workflow_id,
            update=update,
            update_id=update_id,
            args=args,
            now=datetime.now(UTC),
        )
        return {**headers, HEADER: header}

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        # The id must be known to be signed: choose it here when the caller did not.
        input.update_id = input.update_id or str(uuid.uuid4())
        input.headers = self._signed(
            input.headers, input.id, input.update, input.update_id, input.args
        )
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        update = input.update_workflow_input
        update.update_id = update.update_id or str(uuid.uuid4())
        update.headers = self._signed(
            update.headers,
            input.start_workflow_input.id,
            update.update,
            update.update_id,
            update.args,
        )
        return await super().start_update_with_start_workflow(input)


class DecisionSigner(ClientInterceptor):
    """Signs every update this client sends (see the module docstring)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _SigningOutbound(next, self._keyring)


# ------------------------------------------------------------ worker side


def _verifying_inbound(
    keys: Mapping[str, bytes], max_age: timedelta | None
) -> type[WorkflowInboundInterceptor]:
    # A class per worker, closing over the keys: the sandbox instantiates the
    # class it is given, so the keys never pass through workflow code or state.
    class _VerifyingInbound(WorkflowInboundInterceptor):
        def handle_update_validator(self, input: HandleUpdateInput) -> None:
            if unencrypted_arguments.get():
                raise ApplicationError(
                    "decision refused: its payload was sent unencrypted (without Steward's "
                    "codec); decisions are taken through the Steward API or console",
                    type=DECISION_NOT_SIGNED,
                    non_retryable=True,
                )
            error = verification_error(
                keys,
                input.headers.get(HEADER),
                workflow_id=workflow.info().workflow_id,
                update=input.update,
                update_id=input.id,
                args=input.args,
                now=workflow.now(),
                max_age=max_age,
            )
            if error is not None:
                raise ApplicationError(error, type=DECISION_NOT_SIGNED, non_retryable=True)
            super().handle_update_validator(input)

    return _VerifyingInbound


class DecisionVerifier(Interceptor):
    """Refuses, before any update validator, a decision the API did not sign."""

    def __init__(self, keyring: Keyring, *, max_age: timedelta | None = DEFAULT_MAX_AGE) -> None:
        self._inbound = _verifying_inbound(dict(keyring.keys), max_age)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return self._inbound


__all__ = [
    "DECISION_NOT_SIGNED",
    "HEADER",
    "DecisionSigner",
    "DecisionVerifier",
    "args_digest",
    "sign",
    "unencrypted_arguments",
    "verification_error",
]
