"""The console in a real browser: the system's Chromium (Debian's `chromium`
and `chromium-driver` packages; `.ci/run` installs them, nothing is downloaded
by the tests), headless, driven by Selenium against the real stack (the API
served by uvicorn on a free port, a worker, Temporal, PostgreSQL).

- a coordinator signs in, decides a review and sees it leave the queue;
- finance approves a refund someone else requested; the requester, with her
  own finance key, is refused in words (four eyes);
- the pages at phone width;
- a fulfilment (place a hold; an address the country refuses, in words), an
  ops request (an escalation refused, then resolved), a campaign (approved by
  a manager who did not prepare it) and a privacy request (the requester
  rejected), each decided through its case page's form.

One stack (API, worker) and one browser serve every test of the module; each
test starts signed out.

Screenshots of each step are written to build/test-artifacts/console/ (or
$STEWARD_TEST_ARTIFACTS/console/).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.campaign import CatalogueEntry
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import campaign as campaign_store
from tests.integration.polling import eventually
from tests.integration.test_api import new_order_id, risky_order_json, wait_for_status
from tests.integration.test_campaign import SKUS, roster_csv
from tests.integration.test_campaign import params as campaign_params
from tests.integration.test_cli_through_api import PRICE, captured_order
from tests.integration.test_fulfilment_e2e import released_order
from tests.integration.test_privacy_request_api import finished_order
from tests.integration.test_returns_refund import return_json
from tests.integration.test_returns_refund import wait_status as wait_return
from workers import activities
from workers.settings import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no system Chromium: apt-get install -y chromium chromium-driver (.ci/run does)",
)

KEYS = {
    "br-system": ("order-management", Role.SYSTEM),
    "it-ops": ("olivia", Role.OPS),  # test_api.wait_for_status reads with it
    "rt-cs": ("cs-julie", Role.OPS),  # test_returns_refund.wait_status reads with it
    "br-alice": ("alice", Role.COORDINATOR),
    "br-nina-ops": ("nina", Role.OPS),  # nina opens the return: she requested the refund
    "br-nina-fin": ("nina", Role.FINANCE),
    "br-frank": ("frank", Role.FINANCE),
    "br-marc": ("marc", Role.MANAGER),
}
SECRET = "br-webhook-secret"
WEBHOOK = {"X-API-Key": "br-system", "X-Steward-Webhook-Secret": SECRET}
ARTIFACTS = Path(os.environ.get("STEWARD_TEST_ARTIFACTS", "build/test-artifacts")) / "console"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"browser-{uuid.uuid4()}", "webhook_secret": SECRET}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The API on a real port (the browser's), and an in-process client (the test's)."""
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50300))
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://steward.test"
            ) as http:
                yield f"http://127.0.0.1:{port}", http
        finally:
            server.should_exit = True
            await serving


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser, one blocking call at a time off the event loop (the API
    serving it runs on that loop)."""

    def __init__(self, driver: Any, base: str, name: str) -> None:
        self.driver, self.base, self.name = driver, base, name
        self.shots = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def start(self) -> Page:
        """Signed out, at desktop width: the module shares one browser."""
        await self.run(self.driver.set_window_size, 1280, 900)
        await self.open("/console/login")
        await self.run(self.driver.delete_all_cookies)
        return self

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, f"{self.base}{path}")

    async def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By

        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        return str(await self.run(lambda: element.text))

    async def fill(self, css: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.run(element.clear)
        await self.run(element.send_keys, value)

    async def choose(self, css: str, value: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.run(Select(element).select_by_value, value)

    async def tick(self, css: str) -> None:
        """Click a checkbox (no page follows)."""
        from selenium.webdriver.common.by import By

        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.run(element.click)
        assert await self.run(element.is_selected)

    async def click(self, css: str) -> None:
        """Click a link or a submit button and wait for the page it leads to:
        without the wait, the next step raced the form's redirect (under load
        a sign-in's redirect to the queue replaced the case page opened next)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        page = await self.run(self.driver.find_element, By.TAG_NAME, "html")
        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.run(element.click)
        waiting = WebDriverWait(self.driver, 60)
        await self.run(waiting.until, expected_conditions.staleness_of(page))
        await self.run(
            waiting.until,
            lambda driver: driver.execute_script("return document.readyState") == "complete",
        )

    async def shot(self, step: str) -> Path:
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{step}.png"
        assert await self.run(self.driver.save_screenshot, str(path))
        return path

    async def sign_in(self, key: str) -> None:
        await self.open("/console/login")
        await self.fill("#api_key", key)
        await self.click("#sign-in")

    async def sign_out(self) -> None:
        await self.click("form[action='/console/logout'] button")


async def test_a_coordinator_decides_a_review_and_it_leaves_the_queue(
    served: tuple[str, httpx.AsyncClient], browser: Any
) -> None:
    base, api = served
    order_id = new_order_id("BR")
    started = await api.post(
        "/v1/order-reviews", json=risky_order_json(order_id), headers={"X-API-Key": "br-system"}
    )
    assert started.status_code == 202, started.text
    await wait_for_status(api, order_id, "awaiting_review")

    page = await Page(browser, base, "review").start()
    await page.open("/console/")
    assert "Sign in" in await page.text("h1")  # signed out: sent to the sign-in page
    await page.sign_in("br-alice")
    assert "alice · coordinator" in await page.text("#signed-in-as")
    assert order_id in await page.text("#queue")
    await page.shot("queue")

    await page.click(f"#queue tr[data-case='{order_id}'] a")
    assert await page.text("#status") == "awaiting_review"
    await page.choose("#order-review-decision-decision", "approve")
    await page.choose("#order-review-decision-reason_code", "verified_customer")
    await page.fill("#order-review-decision-note", "called the client, confirmed")
    await page.shot("decision-form")
    await page.click("#order-review-decision button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    await page.shot("decided")
    state = await wait_for_status(api, order_id, "released")
    assert [d["actor"] for d in state["decisions"]] == ["alice"]

    await page.open("/console/")
    assert order_id not in await page.text("main")
    await page.shot("queue-after")
    await page.run(browser.set_window_size, 375, 800)  # a phone
    await page.open(f"/console/cases/order-review:{order_id}")
    assert "decision_approve" in await page.text("#audit")
    await page.shot("case-phone")


async def test_finance_approves_a_refund_someone_else_requested(
    served: tuple[str, httpx.AsyncClient], browser: Any, db_pool: asyncpg.Pool
) -> None:
    base, api = served
    order_id = await captured_order(db_pool)
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    body = return_json(rma_id, order_id)
    body["order"]["lines"][0]["unit_price_minor"] = PRICE
    opened = await api.post("/v1/returns", json=body, headers={"X-API-Key": "br-nina-ops"})
    assert opened.status_code == 202, opened.text
    tracking = (await wait_return(api, rma_id, "label_issued"))["tracking_number"]
    for number, kind in enumerate(("in_transit", "delivered_to_warehouse")):
        scan = {
            "event_id": f"scan-{number}",
            "kind": kind,
            "tracking_number": tracking,
            "occurred_at": "2026-11-24T10:00:00+00:00",
        }
        sent = await api.post(f"/v1/returns/{rma_id}/carrier-events", json=scan, headers=WEBHOOK)
        assert sent.status_code == 202, sent.text
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new", "photos": []}
    await api.post(f"/v1/returns/{rma_id}/qc-results", json=qc, headers=WEBHOOK)
    await wait_return(api, rma_id, "awaiting_finance")
    case = f"/console/cases/return:{rma_id}"

    # The requester, with her finance key: the form is there, the decision is refused.
    page = await Page(browser, base, "refund").start()
    await page.sign_in("br-nina-fin")
    assert rma_id in await page.text("#queue")
    await page.open(case)
    await page.choose("#return-finance-approval-approved", "true")
    await page.click("#return-finance-approval button[type=submit]")
    refusal = await page.text("#error")
    assert "nina requested this refund and may not approve it (four eyes)" in refusal
    await page.shot("self-approval-refused")
    assert (await wait_return(api, rma_id, "awaiting_finance"))["finance_approval"] is None
    await page.sign_out()

    await page.sign_in("br-frank")
    await page.open(case)
    assert "Refund requested by" in await page.text("main")
    await page.choose("#return-finance-approval-approved", "true")
    await page.fill("#return-finance-approval-note", "QC photos checked")
    await page.click("#return-finance-approval button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    await page.shot("approved")
    final = await wait_return(api, rma_id, "refunded")
    assert final["finance_approval"]["actor"] == "frank"


ALICE = {"X-API-Key": "br-alice"}


async def state_of(api: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await api.get(path, headers=ALICE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_coordinator_holds_a_fulfilment_and_a_bad_address_is_refused_in_words(
    served: tuple[str, httpx.AsyncClient], browser: Any, client: Client, settings: Settings
) -> None:
    base, api = served
    order_id = await released_order(client, settings)
    page = await Page(browser, base, "fulfilment").start()
    await page.sign_in("br-alice")
    await page.open(f"/console/cases/fulfilment:{order_id}")
    assert await page.text("#status") == "released"
    assert "Active holds\nnone" in await page.text("main")

    await page.fill("#fulfilment-change-address-line1", "12 rue de la Paix")
    await page.fill("#fulfilment-change-address-postal_code", "7500")  # four digits
    await page.fill("#fulfilment-change-address-city", "Paris")
    await page.fill("#fulfilment-change-address-country", "FR")
    await page.click("#fulfilment-change-address button[type=submit]")
    assert "address.postal_code" in await page.text("#error")
    await page.shot("address-refused")

    await page.choose("#fulfilment-place-hold-reason", "incorrect_address")
    await page.fill("#fulfilment-place-hold-note", "flat number missing")
    await page.click("#fulfilment-place-hold button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    state = await state_of(api, f"/v1/fulfilments/{order_id}")
    (hold,) = state["holds"]
    assert (hold["reason"], hold["placed_by"], hold["role"]) == (
        "incorrect_address",
        "alice",
        "coordinator",
    )
    assert state["address_changes"] == []  # the refused address changed nothing
    assert f"{hold['handle']} (incorrect_address) by alice" in await page.text("main")
    # The hold the coordinator placed is hers to release: the form offers it.
    assert hold["handle"] in await page.text("#fulfilment-release-hold-handle")
    await page.shot("held")
    # At phone width the page with the most forms reads without sideways scrolling.
    await page.run(browser.set_window_size, 375, 800)
    await page.open(f"/console/cases/fulfilment:{order_id}")
    overflow = await page.run(
        browser.execute_script,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    assert overflow <= 0, f"{overflow} px wider than a phone"
    await page.shot("fulfilment-phone")


async def test_a_coordinator_resolves_an_ops_request_after_a_refused_escalation(
    served: tuple[str, httpx.AsyncClient], browser: Any
) -> None:
    base, api = served
    opened = await api.post("/v1/ops-requests", json={"details": {"type": "other"}}, headers=ALICE)
    assert opened.status_code == 202, opened.text
    request_id = opened.json()["request_id"]
    path = f"/v1/ops-requests/{request_id}"
    await eventually(lambda: api.get(path, headers=ALICE), lambda r: r.status_code == 200)

    page = await Page(browser, base, "ops-request").start()
    await page.sign_in("br-alice")
    await page.open(f"/console/cases/ops-request:{request_id}")
    assert await page.text("#status") == "open"
    for name, value in (
        ("summary", "parcel stuck"),
        ("tried", "called the carrier"),
        ("blocker", "no answer"),
        ("needed_from", "senior QA"),
        ("needed_what", "a decision"),
        ("next_check_at", "2020-01-01T10:00:00+00:00"),
    ):
        await page.fill(f"#ops-request-escalate-{name}", value)
    await page.click("#ops-request-escalate button[type=submit]")
    assert "next_check_at must be in the future" in await page.text("#error")
    assert (await state_of(api, path))["escalations"] == []

    await page.choose("#ops-request-resolve-outcome", "answered")
    await page.choose("#ops-request-resolve-root_cause", "customer_request")
    await page.fill("#ops-request-resolve-note", "answered in the thread")
    await page.click("#ops-request-resolve button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    state = await eventually(
        lambda: state_of(api, path), lambda s: s["status"] == "resolved", what="resolved"
    )
    assert state["resolution"]["resolved_by"] == "alice"
    await page.open(f"/console/cases/ops-request:{request_id}")
    assert await page.text("#status") == "resolved"
    assert "answered (customer_request) by alice" in await page.text("main")
    await page.shot("resolved")


async def test_a_manager_approves_a_campaign_another_person_prepared(
    served: tuple[str, httpx.AsyncClient], browser: Any, db_pool: asyncpg.Pool
) -> None:
    base, api = served
    await campaign_store.seed_sim_stock(db_pool, dict.fromkeys(SKUS, 1000))
    await campaign_store.seed_sim_catalogue(
        db_pool,
        [
            CatalogueEntry(sku=SKUS[0], description="Tote", visuals=4, category="handbags"),
            CatalogueEntry(
                sku=SKUS[1], description="Wallet", visuals=2, category="small_leather_goods"
            ),
        ],
    )
    now = datetime.now(UTC)
    entity = f"Maison {uuid.uuid4().hex[:6]}"
    p = campaign_params(now + timedelta(days=2), now + timedelta(days=3), entity=entity)
    campaign = f"/v1/campaigns/{p.campaign_id}"
    created = await api.post("/v1/campaigns", json=p.model_dump(mode="json"), headers=ALICE)
    assert created.status_code == 201, created.text
    roster = await api.post(
        f"{campaign}/roster",
        content=roster_csv(3, entity=entity).encode(),
        headers={**ALICE, "content-type": "text/csv"},
    )
    assert roster.status_code == 200, roster.text
    assert (await api.post(f"{campaign}/submit", headers=ALICE)).status_code == 200
    await eventually(
        lambda: state_of(api, campaign),
        lambda s: s["status"] == "awaiting_approval",
        what="validated",
    )

    page = await Page(browser, base, "campaign").start()
    await page.sign_in("br-marc")
    await page.open(f"/console/cases/campaign:{p.campaign_id}")
    assert await page.text("#status") == "awaiting_approval"
    assert "Prepared by\nalice" in await page.text("main")
    await page.choose("#campaign-approval-approve", "true")
    await page.tick("#campaign-approval-acknowledge_warnings")
    await page.fill("#campaign-approval-reason", "prices checked with finance")
    await page.shot("approval-form")
    await page.click("#campaign-approval button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    state = await eventually(
        lambda: state_of(api, campaign), lambda s: s["status"] == "scheduled", what="scheduled"
    )
    assert state["approved_by"] == "marc"
    # A collaborator's gift request, filed at the desk: the manager ships it from the page.
    request_id = f"GR-{uuid.uuid4().hex[:8]}"
    gift = {"request_id": request_id, "employee_id": "E0001", "kind": "gift",
            "description": "a wallet for a colleague's farewell"}  # fmt: skip
    filed = await api.post(f"{campaign}/requests", json=gift, headers=ALICE)
    assert filed.status_code == 201, filed.text
    await page.open(f"/console/cases/campaign:{p.campaign_id}")
    assert await page.text("#status") == "scheduled"
    assert "Close early or extend" in await page.text("#campaign-window-h")
    await page.shot("scheduled")
    await page.choose("#campaign-request-resolution-request_id", request_id)
    await page.choose("#campaign-request-resolution-outcome", "shipped")
    await page.click("#campaign-request-resolution button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    resolved = (await state_of(api, campaign))["requests"][request_id]
    assert (resolved["outcome"], resolved["resolved_by"]) == ("shipped", "marc")


async def test_a_coordinator_rejects_a_privacy_request_s_requester(
    served: tuple[str, httpx.AsyncClient], browser: Any, db_pool: asyncpg.Pool
) -> None:
    base, api = served
    email = f"camille.{uuid.uuid4().hex[:6]}@example.fr"
    await finished_order(db_pool, email)
    request_id = f"PR-{uuid.uuid4().hex[:8]}"
    body = {"request_id": request_id, "kind": "access", "email": email, "jurisdiction": "EU"}
    filed = await api.post("/v1/privacy-requests", json=body, headers=ALICE)
    assert filed.status_code == 202, filed.text
    path = f"/v1/privacy-requests/{request_id}"
    await eventually(
        lambda: state_of(api, path),
        lambda s: s["status"] == "awaiting_verification",
        what="awaiting verification",
    )

    page = await Page(browser, base, "privacy-request").start()
    await page.sign_in("br-alice")
    await page.open(f"/console/cases/privacy-request:{request_id}")
    assert await page.text("#status") == "awaiting_verification"
    assert email not in await page.text("main")  # no requester's address on the page
    await page.choose("#privacy-request-verification-decision", "rejected")
    await page.fill("#privacy-request-verification-reason", "the ID does not match")
    await page.click("#privacy-request-verification button[type=submit]")
    assert await page.text("#done") == "Decision recorded."
    state = await eventually(
        lambda: state_of(api, path), lambda s: s["status"] == "rejected", what="rejected"
    )
    assert (state["verification"], state["verified_by"]) == ("rejected", "alice")
    await page.open(f"/console/cases/privacy-request:{request_id}")
    assert "rejected by alice" in await page.text("main")
    await page.shot("rejected")
