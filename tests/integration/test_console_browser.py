"""The console in a real browser: the system's Chromium (Debian's `chromium`
and `chromium-driver` packages; `.ci/run` installs them, nothing is downloaded
by the tests), headless, driven by Selenium against the real stack (the API
served by uvicorn on a free port, a worker, Temporal, PostgreSQL).

- a coordinator signs in, decides a review and sees it leave the queue;
- finance approves a refund someone else requested; the requester, with her
  own finance key, is refused in words (four eyes);
- the pages at phone width.

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
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from tests.integration.test_api import new_order_id, risky_order_json, wait_for_status
from tests.integration.test_cli_through_api import PRICE, captured_order
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
}
SECRET = "br-webhook-secret"
WEBHOOK = {"X-API-Key": "br-system", "X-Steward-Webhook-Secret": SECRET}
ARTIFACTS = Path(os.environ.get("STEWARD_TEST_ARTIFACTS", "build/test-artifacts")) / "console"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"browser-{uuid.uuid4()}", "webhook_secret": SECRET}
    )


@pytest_asyncio.fixture(loop_scope="session")
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


@pytest.fixture
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

    page = Page(browser, base, "review")
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
    page = Page(browser, base, "refund")
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
