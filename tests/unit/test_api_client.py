"""starters/api_client.py: where the CLI finds the API and its key, the
credentials file's permissions, and the error each answer becomes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from starters import api_client
from starters.api_client import (
    ApiClient,
    ApiUnreachable,
    Credentials,
    CredentialsError,
    Forbidden,
    InvalidInput,
    NoApiKey,
    NotAuthenticated,
    Refused,
    read_credentials,
    write_credentials,
)


@pytest.fixture(autouse=True)
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "_stack_api_url", lambda: None)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path), **extra}


def test_credentials_are_written_0600_and_read_back(tmp_path: Path) -> None:
    path = api_client.credentials_path(_env(tmp_path))
    write_credentials(path, Credentials(api_key="stw_k1", api_url="http://h:1"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials(path) == Credentials(api_key="stw_k1", api_url="http://h:1")


def test_credentials_readable_by_others_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(json.dumps({"api_key": "stw_k1"}))
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        read_credentials(path)


def test_garbage_credentials_are_refused_without_echoing_them(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("stw_secret_value")
    os.chmod(path, 0o600)
    with pytest.raises(CredentialsError) as err:
        read_credentials(path)
    assert "stw_secret_value" not in str(err.value)


def test_environment_wins_over_the_credentials_file(tmp_path: Path) -> None:
    env = _env(tmp_path, STEWARD_API_KEY="from-env", STEWARD_API_URL="http://env:9/")
    write_credentials(
        api_client.credentials_path(env), Credentials(api_key="from-file", api_url="http://f:1")
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"actor": "alice", "role": "coordinator"})

    with ApiClient.from_environment(env, transport=httpx.MockTransport(handler)) as api:
        assert api.whoami() == {"actor": "alice", "role": "coordinator"}
    assert str(seen[0].url) == "http://env:9/v1/me"
    assert seen[0].headers["authorization"] == "Bearer from-env"


def test_the_login_file_gives_key_and_url(tmp_path: Path) -> None:
    env = _env(tmp_path)
    write_credentials(
        api_client.credentials_path(env), Credentials(api_key="from-file", api_url="http://f:1")
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with ApiClient.from_environment(env, transport=httpx.MockTransport(handler)) as api:
        assert api.get("/v1/tasks", {"process": None, "limit": 5}) == []
    assert str(seen[0].url) == "http://f:1/v1/tasks?limit=5"
    assert seen[0].headers["authorization"] == "Bearer from-file"


def test_no_key_anywhere_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(NoApiKey, match="steward login"):
        ApiClient.from_environment(_env(tmp_path))


def _answer(status: int, body: Any) -> ApiClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    return ApiClient("http://api", "k", transport=transport)


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, {"detail": "unknown API key"}, NotAuthenticated, ["unknown API key", "login"]),
        (
            403,
            {"detail": "role coordinator may not do this (needs one of: finance)"},
            Forbidden,
            ["role coordinator may not do this"],
        ),
        (409, {"detail": "four eyes: fiona requested it"}, Refused, ["four eyes"]),
        (
            422,
            {"message": "invalid", "detail": [{"field": "note", "reason": "too long"}]},
            InvalidInput,
            ["note: too long"],
        ),
    ],
)
def test_each_answer_becomes_a_clear_error(
    status: int, body: Any, error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as raised:
        _answer(status, body).post("/v1/x", {"a": 1})
    for word in words:
        assert word in str(raised.value)


def test_api_down_is_named() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api = ApiClient("http://127.0.0.1:1", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(
        ApiUnreachable, match=r"cannot reach the Steward API at http://127\.0\.0\.1:1"
    ):
        api.get("/v1/tasks")


def test_posts_carry_an_idempotency_key() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        return httpx.Response(200, json={})

    api = ApiClient("http://api", "k", transport=httpx.MockTransport(handler))
    api.post("/v1/x", {}, idempotency_key="fixed")
    api.post("/v1/x", {})
    assert keys[0] == "fixed" and len(keys[1]) == 32


def test_against_the_api_whoami_and_a_refusal_in_words(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from domain.common import Role
    from starters.api.app import create_app
    from starters.auth import ApiKeyStore
    from workers.codec import EncryptionCodec, Keyring
    from workers.settings import Settings

    app = create_app(
        Settings(data_dir=tmp_path),
        # Stand-ins never used: the key is refused before any case is touched.
        client=cast(Any, object()),
        pool=cast(Any, object()),
        api_keys=ApiKeyStore.from_mapping({"k-coord": ("alice", Role.COORDINATOR)}),
        codec=EncryptionCodec(Keyring.generate()),
    )
    with TestClient(app) as http:
        transport = http._transport  # the ASGI app, in process
        with ApiClient("http://testserver", "k-coord", transport=transport) as api:
            assert api.whoami() == {"actor": "alice", "role": "coordinator"}
            with pytest.raises(Forbidden, match="role coordinator may not do this"):
                api.post("/v1/returns/RMA-1/finance-approval", {"approved": True})
        with (
            ApiClient("http://testserver", "nope", transport=transport) as api,
            pytest.raises(NotAuthenticated, match="unknown API key"),
        ):
            api.whoami()
