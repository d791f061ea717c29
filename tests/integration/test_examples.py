"""Every command of examples/README.md, run as written against the API on a
real port (uvicorn), a worker, the Temporal dev server and PostgreSQL: the keys
exported from the keys file by the documented one-liner, the Stripe example
signed by the documented one-liner, each curl answering the status written
after it. Also: every example body validates, and the files are the OpenAPI
document's examples."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from temporalio.worker import Worker

import workflows
from activities.campaign import seed_demo_sale_world
from starters.api.app import create_app
from starters.api.openapi_examples import EXAMPLES, EXAMPLES_DIR
from starters.client import connect
from starters.stack import seed_dev_api_keys
from store.db import create_pool
from store.migrate import apply_migrations
from tests.integration.conftest import free_port
from workers import activities
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres
from workers.settings import Settings

ROOT = EXAMPLES_DIR.parent
README = EXAMPLES_DIR / "README.md"
STRIPE_SECRET = "whsec_demo_3f9a"
ADYEN_KEY = "44656D6F2D6F6E6C792D6B65792D666F722D7468652D6578616D706C65732D21"
# A command answering 409 (or 404 for a case still starting) before its
# expected 2xx is waiting for the case to get there: tried again, this long.
SETTLE_SECONDS = 30.0

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _setup_lines() -> list[str]:
    return [line for line in _blocks()[1].splitlines() if line.strip()]


def _requests(block: str | None = None) -> list[tuple[str, int]]:
    requests = []
    for line in (_blocks()[2] if block is None else block).splitlines():
        if not line.startswith("curl "):
            continue
        command, _, status = line.rpartition("  # ")
        requests.append((command.strip(), int(status)))
    return requests


def _front_door() -> tuple[list[str], list[tuple[str, int]]]:
    """The README's first requests: the key export line, then curl lines."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "api-keys.txt" in b]
    setup = [line for line in block.splitlines() if line.startswith("eval ")]
    return setup, _requests(block)


def test_the_readme_documents_every_example_file() -> None:
    text = " ".join(command for command, _ in _requests())
    used = set(re.findall(r"@examples/([\w.-]+)", text))
    assert used == {p.name for p in EXAMPLES_DIR.glob("*.json")}


def test_example_files_are_the_openapi_examples_and_validate() -> None:
    for name, model, body in EXAMPLES:
        on_disk = json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))
        assert on_disk == body, f"examples/{name}: run python -m starters.api.openapi_examples"
        model.model_validate(on_disk)


@pytest_asyncio.fixture(loop_scope="session")
async def stack(integration_dir: Path, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A stack of its own, as a fresh clone's `make up` has: an empty database
    and Temporal (the session's servers hold other tests' cases, some with the
    examples' ids), a worker and the API on a real port, the dev keys file."""
    root = integration_dir / f"examples-{uuid.uuid4().hex[:8]}"
    postgres = EmbeddedPostgres(root / "postgres", free_port(), fast=True)
    temporal = TemporalDevServer(
        root / "temporal", free_port(), ui_port=0, codec_endpoint=None, headless=True
    )
    await asyncio.gather(asyncio.to_thread(postgres.start), temporal.start())
    settings = Settings(
        _env_file=None,
        TEMPORAL_ADDRESS=temporal.target,
        DATABASE_URL=postgres.dsn,
        STEWARD_DATA_DIR=tmp_path,
        STEWARD_API_PORT=free_port(),
        STEWARD_STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        STEWARD_ADYEN_HMAC_KEY=ADYEN_KEY,
    )
    pool = await create_pool(settings.database_dsn)
    try:
        await apply_migrations(pool)
        client = await connect(settings)
        seed_dev_api_keys(settings.data_dir)  # what `make up` does
        await seed_demo_sale_world(pool)  # and this (the campaign example validates)
        app = create_app(settings, client=client, pool=pool)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=settings.api_port, log_config=None)
        )
        server.install_signal_handlers = False  # type: ignore[attr-defined]
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=workflows.ALL_WORKFLOWS,
            activities=activities.build_activities(pool, settings),
        ):
            serving = asyncio.create_task(server.serve())
            while not server.started:
                assert not serving.done(), "the API did not start"
                await asyncio.sleep(0.02)
            try:
                yield f"127.0.0.1:{settings.api_port}", settings.data_dir
            finally:
                server.should_exit = True
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
    finally:
        await pool.close()
        await temporal.stop()
        await asyncio.to_thread(postgres.stop)


async def _bash(script: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"{script}\n{err.decode()}"
    return out.decode()


async def test_every_example_request_answers_its_documented_status(
    stack: tuple[str, Path], tmp_path: Path
) -> None:
    address, data_dir = stack
    env = {"PATH": os.environ["PATH"], "STEWARD_DATA_DIR": str(data_dir)}
    setup = "\n".join(_setup_lines())
    exported = await _bash(f"{setup}\nenv\necho SIG=$SIG", env)
    keys = dict(line.split("=", 1) for line in exported.splitlines() if "=" in line)
    for role in ("SYSTEM", "COORDINATOR", "MANAGER", "FINANCE", "OPS", "AUDITOR"):
        assert keys.get(f"{role}_KEY", "").startswith("stw_"), role
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", keys["SIG"])

    front_setup, front_requests = _front_door()
    assert front_setup and front_setup[0] in setup, "the README exports the keys as examples/ does"
    assert len(front_requests) >= 2
    loop = asyncio.get_running_loop()
    for command, expected in [*front_requests, *_requests()]:
        body = tmp_path / "body"
        run = f"{setup}\n{command.replace('localhost:8400', address)} -o {body} -w '%{{http_code}}'"
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            answered = int(await _bash(run, env))
            waiting = expected < 300 and answered in (404, 409)
            if answered == expected or not waiting or loop.time() > deadline:
                break
            await asyncio.sleep(0.5)
        response: Any = body.read_text(encoding="utf-8") if body.exists() else ""
        assert answered == expected, f"{command}\n-> {answered} {response}"
