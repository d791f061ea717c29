"""Property-based fuzzing of the whole HTTP API (schemathesis + Hypothesis).

Every operation of the OpenAPI document gets generated requests, valid ones
(positive) and invalid ones (negative), each sent once with the key of every
role to the real API on the embedded stack (tests/integration/fuzz_stack.py:
uvicorn, a worker, the Temporal dev server, PostgreSQL). A request fails the
test when:

- the answer is a 5xx;
- the answer does not match the OpenAPI document: status code not documented
  for the operation, content type or body not matching the documented schema;
- the answer is a 4xx and the request started a workflow, signalled or updated
  one, or wrote a row (both recorded exactly: tests/integration/fuzz_stack.py);
- after the run, a workflow on the fuzz task queue is not explained by a
  request answered 2xx (or a workflow one started): Temporal visibility agrees
  with the recorder.

Failures are collected per class (operation, check, status) so one run lists
every class with one reproducing request each, instead of stopping and
shrinking on the first one.

Profiles: `quick` (default, in `make test`: derandomized, a few examples per
operation, a time budget) and `long` (`make fuzz`: random, many examples).
`FUZZ_PROFILE`, `FUZZ_EXAMPLES` and `FUZZ_BUDGET_SECONDS` override them.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.webhook_signatures import adyen_signature, stripe_signature_header
from tests.integration.conftest import free_port
from tests.integration.fuzz_stack import ROLE_KEYS, WEBHOOK_SECRETS, FuzzStack
from tests.unit.test_domain_properties import (
    ADYEN_ITEM,
    STRIPE_DISPUTE,
    STRIPE_WARNING,
    mutated,
)
from workers.settings import Settings


@dataclass(frozen=True)
class Profile:
    examples: int  # generated requests per operation (each sent with all six keys)
    budget_seconds: float  # wall clock for all operations; the rest of the examples is skipped
    derandomize: bool


PROFILES = {
    "quick": Profile(examples=20, budget_seconds=45.0, derandomize=True),
    "long": Profile(examples=150, budget_seconds=1200.0, derandomize=False),
}


def _profile() -> Profile:
    base = PROFILES[os.environ.get("FUZZ_PROFILE", "quick")]
    return Profile(
        examples=int(os.environ.get("FUZZ_EXAMPLES", base.examples)),
        budget_seconds=float(os.environ.get("FUZZ_BUDGET_SECONDS", base.budget_seconds)),
        derandomize=base.derandomize,
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class OpenFinding:
    """A failure class this fuzzer found whose fix has not landed yet."""

    check: str  # the schemathesis check title
    status: int
    answer: str  # a fragment of the answer that identifies the class
    what: str


# Only schema classes may be listed here, never a 5xx or a 4xx with side
# effects. They are printed with the run, not failed on; remove an entry when
# its fix is committed (docs/testing.md#findings).
OPEN_API_FINDINGS: list[OpenFinding] = []


def _open_finding(what: str, status: int, example: str) -> OpenFinding | None:
    for finding in OPEN_API_FINDINGS:
        if finding.check == what and finding.status == status and finding.answer in example:
            return finding
    return None


@dataclass
class Findings:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    # (operation, what failed, status, open finding or "") -> (count, one request reproducing it)
    classes: dict[tuple[str, str, int, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, operation: str, what: str, status: int, example: str) -> None:
        # An open finding is its own class: another cause of the same status on
        # the same route still fails the test.
        known = _open_finding(what, status, example)
        key = (operation, what, status, known.what if known else "")
        count, first = self.classes.get(key, (0, example))
        self.classes[key] = (count + 1, first)

    def failing(self) -> list[tuple[str, str, int, str]]:
        return [key for key in self.classes if not key[3]]

    def report(self) -> str:
        lines = []
        for (operation, what, status, known), (count, example) in sorted(self.classes.items()):
            note = f" [open finding: {known}]" if known else ""
            lines.append(f"{operation} -> {status}: {what} (x{count}){note}\n    {example}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_stack(integration_settings: Settings, postgres_dsn: str) -> Iterator[FuzzStack]:
    stack = FuzzStack(integration_settings, postgres_dsn)
    stack.start(free_port())
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def run(fuzz_stack: FuzzStack) -> FuzzRun:
    """Shared by this module's tests: what the 2xx answers started, for the
    visibility check at the end of each."""
    return FuzzRun(fuzz_stack)


def _describe(case: schemathesis.Case, role: str, response: requests.Response) -> str:
    body = response.text[:300].replace("\n", " ")
    sent = repr(case.body)[:300] if case.body is not None else ""
    return (
        f"{case.method} {response.request.url} as {role} body={sent} "
        f"-> {response.status_code} {body}"
    )


@dataclass
class FuzzRun:
    stack: FuzzStack
    findings: Findings = field(default_factory=Findings)
    started_by_2xx: set[str] = field(default_factory=set)
    session: requests.Session = field(default_factory=requests.Session)
    # "METHOD /path" -> the status codes the OpenAPI document lists.
    documented_statuses: dict[str, set[str]] = field(default_factory=dict)

    def send(self, case: schemathesis.Case, label: str) -> None:
        """`case` once with each role's key, every answer checked."""
        stack, findings = self.stack, self.findings
        for role, key in ROLE_KEYS.items():
            before = stack.snapshot()
            headers = {"Authorization": f"Bearer {key}"}
            response = case.call(base_url=stack.base_url, session=self.session, headers=headers)
            findings.requests += 1
            findings.statuses[response.status_code] += 1
            example = _describe(case, role.value, response)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    findings.add(label, failure.title, response.status_code, example)
            except Failure as failure:
                findings.add(label, failure.title, response.status_code, example)
            effects = stack.side_effects_since(before)
            if 400 <= response.status_code < 500 and effects:
                what = "4xx with side effects: " + "; ".join(effects)
                findings.add(label, what, response.status_code, example)
            if 200 <= response.status_code < 300:
                self.started_by_2xx.update(stack.recorder.started_ids[before.starts :])

    def check_visibility(self) -> None:
        """Every workflow on the fuzz queue was started by a 2xx answer (or by
        a workflow): none by a refused request, as Temporal visibility sees it."""
        unexplained = [
            workflow_id
            for workflow_id, parent in self.stack.workflows_on_queue()
            if parent is None
            and workflow_id not in self.started_by_2xx
            and _started_by(workflow_id) not in self.started_by_2xx
        ]
        if unexplained:
            self.findings.add("visibility", f"workflows no 2xx started: {unexplained[:5]}", 0, "")


def _started_by(workflow_id: str) -> str | None:
    """The case whose activity starts this workflow without being its parent:
    an order's fulfilment is started by its review's release activity (issue 16)."""
    process, _, key = workflow_id.partition(":")
    return f"order-review:{key}" if process == "fulfilment" else None


def _fuzz_operation(
    run: FuzzRun, operation: schemathesis.APIOperation, profile: Profile, deadline: float
) -> None:
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=profile.examples,
        deadline=None,
        database=None,
        derandomize=profile.derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: schemathesis.Case) -> None:
        # Past the budget the remaining examples are drawn but not sent.
        if time.monotonic() <= deadline:
            run.send(case, operation.label)

    exercise()


def test_every_route_and_role_survives_generated_requests(
    fuzz_stack: FuzzStack, run: FuzzRun
) -> None:
    profile = _profile()
    document = requests.get(f"{fuzz_stack.base_url}/openapi.json", timeout=60).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, [op.label for op in operations]

    findings = run.findings = Findings()
    per_operation = profile.budget_seconds / len(operations)
    started_at = time.monotonic()

    for operation in operations:
        _fuzz_operation(run, operation, profile, time.monotonic() + per_operation)

    elapsed = time.monotonic() - started_at
    run.check_visibility()
    print(
        f"\nfuzzed {len(operations)} operations, {findings.requests} requests in {elapsed:.1f} s "
        f"({profile.examples} examples each x {len(ROLE_KEYS)} roles); "
        f"statuses {dict(sorted(findings.statuses.items()))}"
    )
    assert findings.requests >= len(operations) * len(ROLE_KEYS)
    print(findings.report())
    assert not findings.failing(), "failure classes:\n" + findings.report()


# ------------------------------------------------- signed provider webhooks

# The Stripe and Adyen routes take raw bodies (no schema to generate from) and
# check a signature first: generated requests stop at 401. Here the bodies are
# the unit tests' valid provider payloads with one value deleted or replaced
# (tests/unit/test_domain_properties.py), signed with the configured secrets,
# so the parsers, the intake and the store are reached through the API.


def _send_signed(run: FuzzRun, label: str, body: bytes, headers: dict[str, str]) -> None:
    stack, findings = run.stack, run.findings
    before = stack.snapshot()
    response = run.session.post(
        f"{stack.base_url}{label.split(' ', 1)[1]}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=60,
    )
    findings.requests += 1
    findings.statuses[response.status_code] += 1
    example = f"{label} body={body[:300]!r} -> {response.status_code} {response.text[:300]}"
    if response.status_code >= 500:
        findings.add(label, "server error", response.status_code, example)
    documented = run.documented_statuses.get(label)
    if documented is not None and str(response.status_code) not in documented:
        findings.add(label, "Undocumented status code", response.status_code, example)
    effects = stack.side_effects_since(before)
    if 400 <= response.status_code < 500 and effects:
        what = "4xx with side effects: " + "; ".join(effects)
        findings.add(label, what, response.status_code, example)
    if 200 <= response.status_code < 300:
        run.started_by_2xx.update(stack.recorder.started_ids[before.starts :])


def _signed_settings(profile: Profile) -> settings:
    return settings(
        max_examples=max(10, profile.examples * 5),
        deadline=None,
        database=None,
        derandomize=profile.derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def test_signed_provider_webhooks_survive_mutated_payloads(
    fuzz_stack: FuzzStack, run: FuzzRun
) -> None:
    profile = _profile()
    document = requests.get(f"{fuzz_stack.base_url}/openapi.json", timeout=60).json()
    run.documented_statuses = {
        f"{method.upper()} {path}": set(operation["responses"])
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    stripe_secret = WEBHOOK_SECRETS["stripe_webhook_secrets"]
    adyen_key = WEBHOOK_SECRETS["adyen_hmac_keys"]
    run.findings = Findings()

    @_signed_settings(profile)
    @given(st.one_of(mutated(STRIPE_DISPUTE), mutated(STRIPE_WARNING)))
    def stripe(event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        header = stripe_signature_header(stripe_secret, int(time.time()), body)
        _send_signed(run, "POST /v1/webhooks/stripe", body, {"Stripe-Signature": header})

    @_signed_settings(profile)
    @given(mutated(ADYEN_ITEM))
    def adyen(item: dict[str, Any]) -> None:
        additional = item.get("additionalData")
        item["additionalData"] = {**(additional if isinstance(additional, dict) else {})}
        try:
            signature = adyen_signature(adyen_key, item)
        except UnicodeEncodeError:  # a lone surrogate: unsignable, sent all the same
            signature = "unsignable"
        item["additionalData"]["hmacSignature"] = signature
        batch = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        _send_signed(run, "POST /v1/webhooks/adyen", json.dumps(batch).encode(), {})

    stripe()
    adyen()
    run.check_visibility()
    print(
        f"\nsigned webhooks: {run.findings.requests} requests; "
        f"statuses {dict(sorted(run.findings.statuses.items()))}"
    )
    assert run.findings.requests > 0
    # The recorders are live: signed disputes started cases and wrote rows.
    assert run.started_by_2xx, "no 2xx started a workflow: the recorder saw nothing"
    assert fuzz_stack.rows_written() > 0, "the API wrote no row: the write log saw nothing"
    print(run.findings.report())
    assert not run.findings.failing(), "failure classes:\n" + run.findings.report()
