"""`steward privacy-request file|show|verify|export` (issue 21) and the
operator's `steward personal-data rotate-key`.

The privacy-request commands go through the HTTP API (`/v1/privacy-requests`)
with the caller's API key (coordinator or manager; an auditor may `show`);
the role is the key's. `personal-data rotate-key` is an operator command like
`steward migrate`: it works on the keyring file and the database directly.
See docs/privacy_request.md and docs/personal_data.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from domain.privacy_request import (
    Jurisdiction,
    PrivacyRequestKind,
    PrivacyRequestState,
    VerifyDecision,
)
from starters.case_cli import api_get, api_post, console, fail, local_time, parse_key, run_command

privacy_request_app = typer.Typer(
    help="Privacy requests (erasure, access): file one, show it, verify the requester, export.",
    no_args_is_help=True,
)
personal_data_app = typer.Typer(
    help="The personal-data store's keys (operator commands).", no_args_is_help=True
)

RequestId = Annotated[
    str, typer.Argument(help="The request id", metavar="REQUEST_ID", callback=parse_key)
]


def state_table(state: PrivacyRequestState) -> Table:
    table = Table(title=f"Privacy request {state.request_id}", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("kind", f"{state.kind} ({state.jurisdiction})"),
        ("status", str(state.status)),
        ("received", local_time(state.received_at)),
        ("answer due", local_time(state.sla_due_at)),
        ("awaiting", f"{state.awaited_role or '—'}" + (" (escalated)" if state.escalated else "")),
        ("verified by", f"{state.verified_by or '—'} {state.verification or ''}".strip()),
        ("subjects", f"{state.subjects}: {state.erased} erased, {state.retained} invoice-only"),
        ("answered", local_time(state.answered_at) if state.answered_at else "—"),
    ]
    if state.proceeds_at is not None:
        rows.append(("continues", local_time(state.proceeds_at)))
    rows.extend(("hold", reason) for reason in state.hold_reasons)
    for name, value in rows:
        table.add_row(name, value)
    return table


class Filed(BaseModel):
    workflow_id: str
    request_id: str
    subjects: int


@privacy_request_app.command("file")
def file_request(
    request_id: RequestId,
    email: Annotated[str, typer.Option(help="The requester's email address")],
    kind: Annotated[PrivacyRequestKind, typer.Option(help="erasure or access")],
    jurisdiction: Annotated[Jurisdiction, typer.Option(help="EU, UK, US, CN or KR")],
) -> None:
    """File a request for the holder of EMAIL (a coordinator or manager key)."""
    body = {
        "request_id": request_id,
        "kind": kind.value,
        "email": email,
        "jurisdiction": jurisdiction.value,
    }
    filed = api_post("/v1/privacy-requests", body, Filed)
    console.print(
        f"filed [bold]{filed.workflow_id}[/bold]: {filed.subjects} record(s) found; "
        f"verify the requester with `steward privacy-request verify {request_id}`"
    )


@privacy_request_app.command("show")
def show(request_id: RequestId) -> None:
    """The request's state: status, SLA, counts, holds (no personal data)."""
    console.print(state_table(api_get(f"/v1/privacy-requests/{request_id}", PrivacyRequestState)))


@privacy_request_app.command("verify")
def verify(
    request_id: RequestId,
    decision: Annotated[VerifyDecision, typer.Option(help="verified or rejected")],
    reason: Annotated[str, typer.Option(help="How the identity was checked, or why not")],
) -> None:
    """Record the verification of the requester's identity (your key's role)."""
    state = api_post(
        f"/v1/privacy-requests/{request_id}/verification",
        {"decision": decision.value, "reason": reason},
        PrivacyRequestState,
    )
    console.print(state_table(state))


@privacy_request_app.command("export")
def export(
    request_id: RequestId,
    output: Annotated[
        Path, typer.Option(help="Where to write the JSON export (personal data: mode 0600)")
    ],
) -> None:
    """Download an access request's export (JSON) once it is ready."""
    body: dict[str, Any] = api_get(f"/v1/privacy-requests/{request_id}/export", dict[str, Any])
    output.touch(mode=0o600, exist_ok=True)
    output.chmod(0o600)
    output.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"wrote {len(body['subjects'])} record(s) to {output}")


@personal_data_app.command("rotate-key")
def rotate_key() -> None:
    """Add a new active master key and re-wrap every data key with it."""
    from store import personal_data
    from store.db import create_pool
    from workers.personal_keys import rotate_personal_data_key
    from workers.settings import get_settings

    settings = get_settings()

    async def main() -> tuple[str, int, dict[str, int]]:
        keyring = rotate_personal_data_key(settings)
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        try:
            rewrapped = await personal_data.rewrap_data_keys(pool)
            return keyring.active, rewrapped, await personal_data.count_by_master_key(pool)
        finally:
            await pool.close()

    try:
        active, rewrapped, counts = run_command(main())
    except personal_data.PersonalDataKeyError as err:
        fail(str(err))
    console.print(
        f"active master key {active}; {rewrapped} data key(s) re-wrapped; "
        f"live data keys by master key: {counts}. Restart the worker and the API to write "
        "with the new key (they re-wrap nothing themselves)."
    )
