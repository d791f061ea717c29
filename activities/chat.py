"""The chat port: where the ops desk answers requesters (their thread) and
posts escalations, and opens the intake modal of a message shortcut.

`ChatPort` is the port; `SlackChat` its production adapter on slack_sdk's
Web API client (`WebClient`: chat.postMessage, views.open, with the bot
token; run in a thread, as the SDK's async client would need aiohttp), and
`SimulatedChat` the default of `make up` and the tests, which keeps every
message and modal in PostgreSQL (store/ops_requests.py) so a test, the
simulator or a person can read the threads back.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from activities.ports import PortUnavailableError, RateLimitedError, RefusedError
from store import ops_requests as ops_store


class ChatRefusedError(RefusedError):
    """The platform refused the message for good (unknown channel, no access...)."""


class ChatPort(Protocol):
    name: str

    async def post(self, *, message_id: str, channel: str, thread_ts: str | None, text: str) -> str:
        """Post `text` (in `thread_ts`'s thread when given); the message's ts."""
        ...

    async def open_modal(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal for the user who triggered `trigger_id` (within 3 s of it)."""
        ...


class SimulatedChat:
    """A chat platform in PostgreSQL: posts are kept once per message id."""

    name = "simulated"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def post(self, *, message_id: str, channel: str, thread_ts: str | None, text: str) -> str:
        # Slack's ts shape: seconds.microseconds, unique per channel.
        ts = f"{time.time():.6f}"
        return await ops_store.sim_post(
            self.pool,
            message_id=message_id,
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            ts=f"{ts}{abs(hash(message_id)) % 1000:03d}",
        )

    async def open_modal(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        await ops_store.sim_open_view(self.pool, trigger_id=trigger_id, view=view)


# Slack's error codes that no retry can fix.
_PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "invalid_trigger_id",
        "expired_trigger_id",
        "trigger_exchanged",
        "view_too_large",
        "invalid_arguments",
    }
)


class SlackChat:
    """Slack's Web API through slack_sdk (a bot token with chat:write)."""

    name = "slack"

    def __init__(self, client: WebClient) -> None:
        self.client = client

    @classmethod
    def from_token(cls, token: str, *, base_url: str | None = None) -> SlackChat:
        if base_url:
            return cls(WebClient(token=token, base_url=base_url, timeout=10))
        return cls(WebClient(token=token, timeout=10))

    async def post(self, *, message_id: str, channel: str, thread_ts: str | None, text: str) -> str:
        try:
            response = await asyncio.to_thread(
                self.client.chat_postMessage,
                channel=channel,
                text=text,
                thread_ts=thread_ts,
                unfurl_links=False,
            )
        except SlackApiError as err:
            raise _port_error(err) from err
        return str(response["ts"])

    async def open_modal(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.client.views_open, trigger_id=trigger_id, view=view)
        except SlackApiError as err:
            raise _port_error(err) from err


def _port_error(err: SlackApiError) -> Exception:
    code = str(err.response.get("error", "unknown")) if err.response is not None else "unknown"
    status = err.response.status_code if err.response is not None else 503
    if status == 429 or code == "ratelimited":
        retry_after = int((err.response.headers or {}).get("Retry-After", "1"))
        return RateLimitedError(f"slack: {code}", timedelta(seconds=retry_after))
    if code in _PERMANENT:
        return ChatRefusedError(f"slack refused: {code}", code)
    return PortUnavailableError(f"slack: {code}", status)
