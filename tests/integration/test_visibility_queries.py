"""Every list query docs/temporal_ui.md gives runs on the embedded dev server
(the one `make up` starts) and finds the cases it says it finds; `ORDER BY`,
which the dev server refuses, is documented as such."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from tests.integration.polling import eventually
from workflows.visibility import AWAITED_ROLE, DUE_AT, MARKET, PROCESS, RISK_BAND, STATUS

DOC = Path(__file__).resolve().parents[2] / "docs" / "temporal_ui.md"

# Probe cases, by name: (workflow id prefix, process, status, risk band,
# awaited role, due at, market). They are started with these search attributes
# on a task queue no worker polls, and terminated at the end.
PROBES: dict[str, tuple[str, str, str, str | None, str | None, datetime | None, str]] = {
    "high-risk-review": (
        "order-review:",
        "order-review",
        "awaiting_review",
        "high",
        "coordinator",
        datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        "FR",
    ),
    "waiting-customer": (
        "order-review:",
        "order-review",
        "awaiting_customer",
        "low",
        None,
        None,
        "IT",
    ),
    "chargeback-fr": (
        "chargeback:stripe:",
        "chargeback",
        "awaiting_coordinator",
        None,
        "coordinator",
        datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        "FR",
    ),
    "escalated-return": (
        "return:",
        "return",
        "awaiting_finance",
        None,
        "manager",
        datetime(2026, 12, 10, 9, 0, tzinfo=UTC),
        "DE",
    ),
}

# Each query of the doc, as written there, and the probes it must list.
DOCUMENTED: dict[str, set[str]] = {
    'StewardProcess = "order-review" AND StewardStatus = "awaiting_review" '
    'AND StewardRiskBand = "high"': {"high-risk-review"},
    'StewardAwaitedRole = "manager" AND ExecutionStatus = "Running"': {"escalated-return"},
    'StewardAwaitedRole = "coordinator" AND StewardDueAt < "2026-12-03T09:00:00Z"': {
        "high-risk-review"
    },
    'StewardDueAt BETWEEN "2026-12-03T00:00:00Z" AND "2026-12-04T00:00:00Z"': {"chargeback-fr"},
    'StewardProcess = "chargeback" AND StewardMarket = "FR"': {"chargeback-fr"},
    'StewardStatus IN ("awaiting_review", "awaiting_customer")': {
        "high-risk-review",
        "waiting-customer",
    },
    'WorkflowId STARTS_WITH "chargeback:stripe:"': {"chargeback-fr"},
}


def _doc_queries() -> list[str]:
    """The lines of the first code block of the doc: the queries it gives."""
    block = re.search(r"```\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_doc_gives_exactly_the_queries_tested_here() -> None:
    assert _doc_queries() == list(DOCUMENTED)
    text = DOC.read_text(encoding="utf-8")
    assert "ORDER BY` needs an Elasticsearch visibility store" in text


@pytest_asyncio.fixture(loop_scope="session")
async def probes(client: Client) -> AsyncIterator[dict[str, str]]:
    run = uuid.uuid4().hex[:10]
    ids: dict[str, str] = {}
    handles = []
    for name, (prefix, process, status, band, role, due, market) in PROBES.items():
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(PROCESS, process),
            SearchAttributePair(MARKET, market),
            SearchAttributePair(STATUS, status),
        ]
        if band is not None:
            pairs.append(SearchAttributePair(RISK_BAND, band))
        if role is not None:
            pairs.append(SearchAttributePair(AWAITED_ROLE, role))
        if due is not None:
            pairs.append(SearchAttributePair(DUE_AT, due))
        workflow_id = f"{prefix}visprobe-{run}-{name}"
        handles.append(
            await client.start_workflow(
                "VisibilityProbe",
                id=workflow_id,
                task_queue=f"no-worker-{run}",
                search_attributes=TypedSearchAttributes(pairs),
            )
        )
        ids[workflow_id] = name
    try:
        yield ids
    finally:
        for handle in handles:
            await handle.terminate(reason="visibility query test done")


async def _listed(client: Client, query: str, ids: dict[str, str]) -> set[str]:
    return {ids[w.id] async for w in client.list_workflows(query) if w.id in ids}


@pytest.mark.parametrize("query", list(DOCUMENTED))
async def test_documented_query_lists_its_cases_on_the_dev_server(
    client: Client, probes: dict[str, str], query: str
) -> None:
    # Visibility is eventually consistent: wait until the probes are indexed.
    everything = ", ".join(f'"{probe[2]}"' for probe in PROBES.values())
    await eventually(
        lambda: _listed(client, f"StewardStatus IN ({everything})", probes),
        lambda found: found == set(PROBES),
        what="the probes in visibility",
    )
    assert await _listed(client, query, probes) == DOCUMENTED[query]


async def test_order_by_is_refused_by_the_dev_server(client: Client) -> None:
    with pytest.raises(RPCError, match="ORDER BY"):
        _ = [
            w
            async for w in client.list_workflows(
                'StewardAwaitedRole = "manager" ORDER BY StewardDueAt'
            )
        ]
