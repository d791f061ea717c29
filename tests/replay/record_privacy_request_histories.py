"""Record the privacy-request histories replayed by
tests/replay/test_privacy_request_replay.py:

- privacy_request_erasure_hold_lifted: a reminder before the SLA, the
  requester verified, one subject erased at once and one held by an open
  dispute, the partial answer, the hold lifted a week later, the rest erased;
- privacy_request_access_exported: an access request verified and exported.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with `workflow.patched`.

    .venv/bin/python -m tests.replay.record_privacy_request_histories [OUT_DIR]
"""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.common import Role
from domain.privacy_request import (
    CheckHoldsResult,
    HoldKind,
    Jurisdiction,
    LegalHold,
    PrivacyRequestContract,
    PrivacyRequestInput,
    PrivacyRequestKind,
    PrivacyRequestStatus,
    VerifyDecision,
    VerifyInput,
    privacy_request_workflow_id,
)
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, wait_for_status
from tests.workflows.test_privacy_request import CONTACT, FP, A, B, FakePrivacy
from workers.dev_server import ensure_search_attributes
from workflows.privacy_request import PrivacyRequestWorkflow

HISTORIES = Path(__file__).parent / "histories"
VERIFIED = VerifyInput(
    decision=VerifyDecision.VERIFIED, reason="ID checked", actor="ana", role=Role.COORDINATOR
)


async def main(out: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        for name, kind, checks, wait in (
            (
                "privacy_request_erasure_hold_lifted",
                PrivacyRequestKind.ERASURE,
                [
                    CheckHoldsResult(
                        subject_ids=[A, B],
                        holds=[
                            LegalHold(
                                kind=HoldKind.DISPUTE, reference="stripe:dp_1", subject_ids=[A]
                            )
                        ],
                    ),
                    CheckHoldsResult(subject_ids=[A]),
                ],
                timedelta(days=21),
            ),
            (
                "privacy_request_access_exported",
                PrivacyRequestKind.ACCESS,
                [CheckHoldsResult(subject_ids=[A, B])],
                timedelta(0),
            ),
        ):
            world = FakeWorld()
            fake = FakePrivacy(checks=checks)
            task_queue = f"record-{uuid.uuid4()}"
            request_id = f"PR-{uuid.uuid4().hex[:8]}"
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[PrivacyRequestWorkflow],
                activities=[*world.activities(), fake.check, fake.erase, fake.export, fake.confirm],
            ):
                handle = await env.client.start_workflow(
                    PrivacyRequestWorkflow.run,
                    PrivacyRequestInput(
                        request_id=request_id,
                        kind=kind,
                        jurisdiction=Jurisdiction.EU,
                        match_fingerprint=FP,
                        subject_ids=[A],
                        contact_subject_id=CONTACT,
                        received_at=await env.get_current_time(),
                        requested_by="dpo@steward",
                    ),
                    id=privacy_request_workflow_id(request_id),
                    task_queue=task_queue,
                )
                await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
                if wait:
                    await env.sleep(wait)
                await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, VERIFIED)
                if kind is PrivacyRequestKind.ERASURE:
                    await wait_for_status(handle, PrivacyRequestStatus.ON_HOLD)
                    await env.sleep(timedelta(days=7, minutes=1))
                await handle.result()
                history = await handle.fetch_history()
            (out / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
