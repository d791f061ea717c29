"""A realistic day at the ops desk, sent through the signed Slack endpoint.

`steward ops simulate` (starters/ops_request_cli.py) posts Slack-format
slash commands, signed as Slack signs them (slack_sdk's SignatureVerifier
with the stack's signing secret), to `/v1/slack/commands`: volumes per type
as a desk sees them (order status questions most, then address changes,
CCTV, other...), most of them in the morning burst after the desk opens.
The day is compressed: one simulated desk hour takes `seconds_per_hour`.

Orders come from the API (the order reviews Steward knows), so status and
address questions are about real orders; a few deliberately bad requests
(an unknown order, a CCTV window past retention) show the refusals.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from workers.settings import Settings

SIGNING_SECRET_FILE = "slack-signing-secret"

# Share of each kind of request in a day (sums to 1).
MIX: dict[str, float] = {
    "status": 0.34,
    "address-change": 0.14,
    "special-delivery": 0.06,
    "qc-check": 0.06,
    "cctv": 0.10,
    "inventory": 0.07,
    "carrier-claim": 0.05,
    "other": 0.12,
    "bad": 0.06,
}
# Requests per desk hour from 09:00 to 18:00: the morning burst, a lunch dip.
HOURLY: tuple[float, ...] = (0.20, 0.18, 0.13, 0.07, 0.06, 0.11, 0.10, 0.09, 0.06)
SITES_ZONES = (("PAR1", "packing"), ("LON1", "outbound"), ("MIL1", "picking"), ("NJ1", "storage"))


def signing_secret(settings: Settings) -> str:
    """STEWARD_SLACK_SIGNING_SECRET, or the embedded stack's own, created once
    in the data dir (`make up`: the API and the simulator share it)."""
    if settings.slack_signing_secret.strip():
        return settings.slack_signing_secret.strip()
    path = Path(settings.data_dir) / SIGNING_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class DayReport:
    sent: int = 0
    opened: int = 0
    refused: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    ack_ms: list[float] = field(default_factory=list)


def plan_day(count: int, rng: random.Random) -> list[tuple[float, str]]:
    """(desk hour offset from 09:00, kind), in time order."""
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    hours = rng.choices(range(len(HOURLY)), weights=HOURLY, k=count)
    return sorted((h + rng.random(), kind) for h, kind in zip(hours, kinds, strict=True))


def command_text(kind: str, orders: list[str], rng: random.Random, now: datetime) -> str:
    order = rng.choice(orders) if orders else "UNKNOWN-1"
    priority = rng.choices(["normal", "high", "urgent", "low"], weights=[70, 18, 7, 5])[0]
    if kind == "status":
        return f"status {order}"
    if kind == "address-change":
        return (
            f'address-change {order} line1="{rng.randint(1, 99)} rue du Bac" city=Paris '
            f"postal_code=750{rng.randint(1, 20):02d} country=FR priority={priority}"
        )
    if kind == "special-delivery":
        return f"special-delivery {order} kind=signature priority={priority}"
    if kind == "qc-check":
        return f'qc-check {order} reason="stitching on the handle" priority={priority}'
    if kind == "cctv":
        site, zone = rng.choice(SITES_ZONES)
        start = now - timedelta(days=rng.randint(1, 5), hours=rng.randint(1, 8))
        end = start + timedelta(minutes=rng.choice([15, 30, 60]))
        return f"cctv {site} {zone} {start:%Y-%m-%dT%H:%MZ} {end:%Y-%m-%dT%H:%MZ} order={order}"
    if kind == "inventory":
        wms = rng.randint(0, 12)
        return (
            f"inventory PAR1 SKU-{rng.randint(100, 999)} {wms} {wms + rng.randint(1, 3)} "
            f"unit_cost={rng.choice([25_000, 80_000, 150_000])} currency=EUR orders={order}"
        )
    if kind == "carrier-claim":
        return f"carrier-claim ups 1Z{uuid.uuid4().hex[:12].upper()} lost"
    if kind == "bad":
        if rng.random() < 0.5:
            return f"status NO-SUCH-{rng.randint(1000, 9999)}"
        old = now - timedelta(days=45)
        return f"cctv PAR1 packing {old:%Y-%m-%dT%H:%MZ} {old + timedelta(hours=1):%Y-%m-%dT%H:%MZ}"
    return f'other note="customer asks about gift wrapping" priority={priority}'


def signed_command(secret: str, text: str, channel: str, user: str) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "token": "simulated",
            "team_id": "T0STEWARD",
            "team_domain": "maison",
            "channel_id": channel,
            "channel_name": "cs-ops",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/steward",
            "text": text,
            "api_app_id": "A0STEWARD",
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**9}.{uuid.uuid4().hex}",
            "response_url": "https://hooks.slack.com/commands/simulated",
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return body, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def simulate_day(
    http: httpx.AsyncClient,
    secret: str,
    *,
    requests: int,
    orders: list[str],
    seed: int = 17,
    seconds_per_hour: float = 2.0,
) -> DayReport:
    rng = random.Random(seed)
    report = DayReport()
    started = time.monotonic()
    users = [f"U0CS{n:04d}" for n in range(8)]
    for hour, kind in plan_day(requests, rng):
        wait = started + hour * seconds_per_hour - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        text = command_text(kind, orders, rng, datetime.now(UTC))
        body, headers = signed_command(secret, text, "C0CSOPS", rng.choice(users))
        sent = time.perf_counter()
        response = await http.post("/v1/slack/commands", content=body, headers=headers)
        report.ack_ms.append((time.perf_counter() - sent) * 1000)
        report.sent += 1
        report.kinds[kind] += 1
        answer = response.json().get("text", "") if response.status_code == 200 else ""
        if answer.startswith("Opened"):
            report.opened += 1
        else:
            report.refused += 1
    return report
