"""The `steward` CLI's HTTP client: every command that reads cases or decides
goes through the API with an API key, so the actor and role are the key's,
never something typed on the command line.

Where the API is (first that is set):
  1. `STEWARD_API_URL`;
  2. the `api_url` a running `steward up` wrote to `<data dir>/stack.json`;
  3. the `api_url` stored by `steward login`;
  4. the settings' `http://STEWARD_API_HOST:STEWARD_API_PORT` (127.0.0.1:8400).

Which key (first that is set):
  1. `STEWARD_API_KEY`;
  2. the credentials file `steward login` writes:
     `$XDG_CONFIG_HOME/steward/credentials` (default `~/.config/steward/credentials`),
     JSON `{"api_key": ..., "api_url": ...}`, mode 0600. A file that others can
     read is refused, as ssh refuses such a private key.

Errors come back as one `ApiError` subclass each with a message a person can
act on: the API is down, the key is missing or unknown (401), the key's role
may not do this (403, with the API's reason), not found, refused by the case
(409), invalid input (422, one `field: reason` per field).

Use (synchronous; the CLI runs one request per command):

    with ApiClient.from_environment() as api:
        state = api.post("/v1/order-reviews/FR-1/decision", {...})

`cli_errors()` turns an `ApiError` into the CLI's one red line and exit code.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

API_URL_VARIABLE = "STEWARD_API_URL"
API_KEY_VARIABLE = "STEWARD_API_KEY"
CREDENTIALS_FILE = "credentials"
# A decision waits for the workflow to take it (capture, void...): a few seconds
# normally; well under the API's own Temporal timeouts.
DEFAULT_TIMEOUT_SECONDS = 60.0


class ApiError(Exception):
    """A request that did not succeed; `str()` is the line to show."""

    exit_code = 1

    def __init__(self, message: str, *, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ApiUnreachable(ApiError):
    """Nothing answered at the API's address (or it timed out)."""


class NoApiKey(ApiError):
    """No key in the environment nor in the credentials file."""

    exit_code = 2


class CredentialsError(ApiError):
    """The credentials file exists but cannot be used (permissions, content)."""

    exit_code = 2


class NotAuthenticated(ApiError):
    """401: the key is unknown to the API."""


class Forbidden(ApiError):
    """403: the key's role may not do this; the message is the API's reason."""


class NotFound(ApiError):
    """404."""


class Refused(ApiError):
    """409: the case refused (closed, already decided, four eyes...)."""


class InvalidInput(ApiError):
    """400/413/422: what was sent is wrong; the message names each field."""

    exit_code = 2


class ServerError(ApiError):
    """5xx: the API or a server behind it failed."""


# ----------------------------------------------------------- configuration


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "steward"


def credentials_path(environ: Mapping[str, str] | None = None) -> Path:
    return config_dir(environ) / CREDENTIALS_FILE


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_url: str | None = None


def read_credentials(path: Path) -> Credentials | None:
    """The stored credentials; None when there is no file. Refuses a file that
    group or others may read or write (CredentialsError)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 600 {path}` or `steward login` again"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        key = str(raw["api_key"]).strip()
        url = raw.get("api_url")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise CredentialsError(
            f"{path} is not a Steward credentials file; run `steward login` again"
        ) from None
    if not key:
        raise CredentialsError(f"{path} holds no API key; run `steward login` again")
    return Credentials(api_key=key, api_url=str(url) if url else None)


def write_credentials(path: Path, credentials: Credentials) -> Path:
    """Store the key for later commands: created 0600 from the start (never
    world-readable, even for a moment), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content: dict[str, str] = {"api_key": credentials.api_key}
    if credentials.api_url:
        content["api_url"] = credentials.api_url
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(content, fh)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def remove_credentials(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _stack_api_url() -> str | None:
    """The API of the `steward up` running under the data dir, if any."""
    from starters.stack_file import read_stack_file
    from workers.settings import Settings

    try:
        settings = Settings()
    except ValueError:
        return None
    stack = read_stack_file(settings.data_dir)
    return stack.api_url if stack is not None else None


def _settings_api_url() -> str:
    from workers.settings import Settings

    try:
        return Settings().api_base_url
    except ValueError:
        return "http://127.0.0.1:8400"


def resolve_api_url(
    environ: Mapping[str, str] | None = None, credentials: Credentials | None = None
) -> str:
    env = os.environ if environ is None else environ
    url = (
        env.get(API_URL_VARIABLE, "").strip()
        or _stack_api_url()
        or (credentials.api_url if credentials else None)
        or _settings_api_url()
    )
    return url.rstrip("/")


def resolve_api_key(
    environ: Mapping[str, str] | None = None, credentials: Credentials | None = None
) -> str:
    env = os.environ if environ is None else environ
    key = env.get(API_KEY_VARIABLE, "").strip() or (credentials.api_key if credentials else "")
    if not key:
        raise NoApiKey(
            f"no API key: run `steward login` (stores it in {credentials_path(env)}) "
            f"or set {API_KEY_VARIABLE}"
        )
    return key


# ------------------------------------------------------------------ client


def _detail_text(detail: Any) -> str:
    """The API's `detail`: a message, or one {field, reason} per invalid field."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping) and "field" in item:
                parts.append(f"{item['field']}: {item.get('reason', 'invalid')}")
            elif isinstance(item, Mapping) and "loc" in item:
                loc = ".".join(str(p) for p in item["loc"])
                parts.append(f"{loc}: {item.get('msg', 'invalid')}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def error_for(response: httpx.Response, *, api_url: str) -> ApiError:
    """The ApiError for a non-2xx answer, with the API's reason."""
    code = response.status_code
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else body
    except ValueError:
        detail = response.text.strip()[:300] or response.reason_phrase
    text = _detail_text(detail) if detail not in (None, "") else response.reason_phrase
    if code == 401:
        return NotAuthenticated(
            f"the API at {api_url} refused the key ({text}); "
            f"run `steward login` or set {API_KEY_VARIABLE}",
            status=code,
            detail=detail,
        )
    if code == 403:
        return Forbidden(f"not allowed: {text}", status=code, detail=detail)
    if code == 404:
        return NotFound(text, status=code, detail=detail)
    if code == 409:
        return Refused(f"refused: {text}", status=code, detail=detail)
    if code in (400, 413, 422):
        return InvalidInput(f"invalid request: {text}", status=code, detail=detail)
    if code >= 500:
        return ServerError(f"the API failed ({code}): {text}", status=code, detail=detail)
    return ApiError(f"the API answered {code}: {text}", status=code, detail=detail)


class ApiClient:
    """A Steward API session with one key (sync httpx)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "steward-cli"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> ApiClient:
        """URL and key as the module docstring says; NoApiKey/CredentialsError
        before any request when there is no usable key."""
        env = os.environ if environ is None else environ
        credentials = None
        if not env.get(API_KEY_VARIABLE, "").strip():
            credentials = read_credentials(credentials_path(env))
        return cls(
            resolve_api_url(env, credentials),
            resolve_api_key(env, credentials),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one), or an ApiError."""
        headers = {}
        if method.upper() in ("POST", "DELETE"):
            # A decision sent twice (a retry by a proxy, a double Enter) applies once.
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, path, json=json_body, params=clean_params, headers=headers
            )
        except httpx.TimeoutException:
            raise ApiUnreachable(
                f"the API at {self.base_url} did not answer in time; the request may still "
                "apply: check the case before trying again"
            ) from None
        except httpx.TransportError as err:
            raise ApiUnreachable(
                f"cannot reach the Steward API at {self.base_url} ({type(err).__name__}); "
                f"is `steward up` running? (set {API_URL_VARIABLE} for another address)"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        raise error_for(response, api_url=self.base_url)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json_body=body, idempotency_key=idempotency_key)

    def whoami(self) -> dict[str, Any]:
        """{"actor": ..., "role": ...} of this key (GET /v1/me)."""
        answer: dict[str, Any] = self.get("/v1/me")
        return answer


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn an ApiError into the CLI's one red line and its exit code."""
    try:
        yield
    except ApiError as err:
        from starters.case_cli import fail

        fail(str(err), code=err.exit_code)


def cli_client() -> ApiClient:
    """An ApiClient from the environment, or the CLI's error line and exit."""
    with cli_errors():
        return ApiClient.from_environment()
    raise AssertionError("unreachable")  # pragma: no cover - fail() exits


__all__ = [
    "ApiClient",
    "ApiError",
    "ApiUnreachable",
    "Credentials",
    "CredentialsError",
    "Forbidden",
    "InvalidInput",
    "NoApiKey",
    "NotAuthenticated",
    "NotFound",
    "Refused",
    "ServerError",
    "cli_client",
    "cli_errors",
    "credentials_path",
    "read_credentials",
    "remove_credentials",
    "write_credentials",
]
