"""A campaign's collaborator requests keep their words in the personal-data
store (issue 21: the workflow holds the request ids only); what reads them
back for display shows them: `steward campaigns show` (GET's CampaignView)
and the console's case page (the route merges them, tests/integration/
test_campaign.py checks GET on the real stack), `[erased]` once erased."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.campaign import CampaignSchedule, CampaignState, CampaignStatus, CampaignView
from domain.common import Role
from starters import campaign_cli
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from starters.cli import app
from starters.console import views
from tests.factories import make_order
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

NOW = datetime(2027, 6, 1, 7, 0, tzinfo=UTC)
WORDS = "A silk scarf for Hélène Dubois, 12 rue des Archives [bold]75004[/bold] Paris"


def campaign(descriptions: dict[str, tuple[str, str] | None]) -> CampaignView:
    state = CampaignState(
        campaign_id="ES-2027-06",
        name="Summer employee sale",
        status=CampaignStatus.OPEN,
        timezone="Europe/Paris",
        schedule=CampaignSchedule(
            opens_at=NOW,
            closes_at=NOW + timedelta(days=4),
            opening_reminder_at=NOW - timedelta(days=1),
            closing_reminder_at=NOW + timedelta(days=3),
        ),
        prepared_by=["alice"],
        requests={
            request_id: {  # type: ignore[misc]
                "request_id": request_id,
                "kind": "gift",
                "owner_role": "coordinator",
                "opened_by": "desk",
                "opened_at": NOW,
                "due_at": NOW + timedelta(days=5),
                "outcome": "shipped" if request_id == "GR-2" else None,
            }
            for request_id in descriptions
        },
    )
    document: dict[str, Any] = state.model_dump()
    for request_id, kept in descriptions.items():
        if kept is not None:
            document["requests"][request_id]["employee_id"] = kept[0]
            document["requests"][request_id]["description"] = kept[1]
    return CampaignView.model_validate(document)


def test_the_case_page_shows_each_request_s_words_or_erased() -> None:
    view = campaign({"GR-1": ("E0001", WORDS), "GR-2": ("E0002", "[erased]"), "GR-3": None})
    facts = views._state_facts("campaign", view)
    assert ("Request GR-1", f"gift from E0001 (open, due 2027-06-06 07:00 UTC): {WORDS}") in facts
    assert ("Request GR-2", "gift from E0002 (shipped): [erased]") in facts
    # A request the store has no words for (none merged): no line.
    assert "Request GR-3" not in dict(facts)
    # The workflow's own state (no words merged) shows none either.
    plain = CampaignState.model_validate(
        view.model_dump(exclude={"requests": {"GR-1": {"employee_id", "description"}}})
        | {"requests": {}}
    )
    assert not [label for label, _ in views._state_facts("campaign", plain) if "GR-" in label]


def test_campaigns_show_prints_the_words_get_reads_back(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[type] = []

    def get(path: str, answer: type, params: Any = None) -> Any:
        asked.append(answer)
        return campaign({"GR-1": ("E0001", WORDS)})

    monkeypatch.setattr(campaign_cli, "api_get", get)
    result = CliRunner().invoke(app, ["campaigns", "show", "ES-2027-06"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert asked == [CampaignView]
    assert "request GR-1 (gift)" in result.output
    # Printed as typed: Rich markup in the words is not interpreted.
    assert f"from E0001: {WORDS}" in result.output


@pytest.mark.parametrize(
    ("path", "key", "body"),
    [
        (
            "/v1/campaigns/ES-1/requests",
            "k-desk",
            {"request_id": "GR-1", "employee_id": "E1", "kind": "gift", "description": "A scarf"},
        ),
        ("/v1/campaigns/ES-1/orders", "k-store", make_order("ES-1-1").model_dump(mode="json")),
    ],
)
def test_a_caller_may_not_name_the_subject_the_edge_keeps_the_words_under(
    tmp_path: Path, path: str, key: str, body: dict[str, Any]
) -> None:
    """The edge sets the subject ids (the request's words, the order's
    values): one in the body is a 422 naming it, before Temporal or the
    database is reached (neither exists here)."""
    app = create_app(
        Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path, STEWARD_TASK_QUEUE="unit-tq"),
        client=cast(Any, object()),
        pool=cast(Any, object()),
        api_keys=ApiKeyStore.from_mapping(
            {"k-desk": ("desk", Role.COORDINATOR), "k-store": ("storefront", Role.SYSTEM)}
        ),
        codec=EncryptionCodec(Keyring.generate()),
    )
    if path.endswith("/orders"):  # the storefront's order: the roster gives the customer
        body = {
            "order_id": body["order_id"],
            "employee_id": "E1",
            "lines": [{"sku": "SLG-WALLET-NOIR", "quantity": 1}],
            **{k: body[k] for k in ("shipping_address", "payment", "device")},
        }
    answer = TestClient(app).post(
        path,
        json={**body, "subject_id": "subj_abcdefgh1234"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["detail"]] == ["subject_id"]


async def test_the_console_route_puts_the_words_back_as_get_does() -> None:
    """The case page's state goes through the same merge as GET (one query
    on the requests and their subjects); an erased subject reads [erased]."""
    from starters.console import routes

    asked: list[tuple[str, tuple[Any, ...]]] = []

    class Pool:
        async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
            asked.append((sql, args))
            return [
                {
                    "request_id": "GR-1",
                    "employee_id": "E0001",
                    "pd_subject_id": "subj_campaign-request-0001",
                    "pd_kind": "message",
                    "pd_master_key_id": None,
                    "pd_wrapped_key": None,
                    "pd_ciphertext": None,
                    "pd_erased_at": NOW,
                    "pd_erasure_reason": "privacy-request:PR-1",
                }
            ]

    view = campaign({"GR-1": None, "GR-2": None})
    state = CampaignState.model_validate(
        view.model_dump(exclude={"requests": {"__all__": {"employee_id", "description"}}})
    )
    shown = await routes._with_customer_words(Pool(), "campaign", state)
    assert isinstance(shown, CampaignView)
    assert (shown.requests["GR-1"].employee_id, shown.requests["GR-1"].description) == (
        "E0001",
        "[erased]",
    )
    assert shown.requests["GR-2"].description is None
    ((_, args),) = asked
    assert args == ("ES-2027-06", ["GR-1", "GR-2"])
