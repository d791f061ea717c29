"""API keys: who is calling the HTTP API, and in which role.

A key maps to one actor and one role ("key:actor:role"). Keys come from
`settings.api_keys` (comma separated) and from `data_dir/api-keys.txt` (one per
line, `#` comments), which the embedded stack seeds with dev keys. The actor
and role of every decision come from the key, never from the request body, so
the audit trail names the person the key was issued to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

import structlog
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from domain.common import Role
from workers.settings import Settings

API_KEYS_FILE = "api-keys.txt"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    actor: str
    role: Role


class ApiKeyError(ValueError):
    """A malformed key definition; the message never contains the key itself."""


def _digest(key: str) -> str:
    # Keys are held and compared as hashes: no key material in memory dumps of
    # the mapping, and a dict lookup on a hash leaks nothing useful by timing.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_api_keys(entries: Iterable[str], source: str) -> dict[str, Principal]:
    """Parse "key:actor:role" entries into {sha256(key): Principal}.

    Blank entries and `#` comments are skipped. The actor may itself contain
    colons (e.g. "svc:oms"); the key is before the first colon and the role
    after the last one.
    """
    parsed: dict[str, Principal] = {}
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key, sep, rest = entry.partition(":")
        actor, sep2, role_text = rest.rpartition(":")
        where = f"{source} entry {number}"
        if not sep or not sep2 or not key.strip() or not actor.strip():
            raise ApiKeyError(f"{where}: expected 'key:actor:role'")
        try:
            role = Role(role_text.strip())
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise ApiKeyError(
                f"{where}: unknown role {role_text.strip()!r} (valid: {valid})"
            ) from None
        parsed[_digest(key.strip())] = Principal(actor=actor.strip(), role=role)
    return parsed


class ApiKeyStore:
    """Keys from settings plus the keys file, re-read when the file changes.

    The embedded stack may write the keys file after the API started, and an
    operator may add a key without restarting the API; a stat per request is
    cheap next to a Temporal round trip.
    """

    def __init__(self, settings_keys: str, keys_file: Path | None) -> None:
        self._static = parse_api_keys(settings_keys.split(","), "STEWARD_API_KEYS")
        self._file = keys_file
        self._file_stamp: tuple[int, int] | None = None
        self._from_file: dict[str, Principal] = {}
        self._reload_file(initial=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeyStore:
        return cls(settings.api_keys, settings.data_dir / API_KEYS_FILE)

    @classmethod
    def from_mapping(cls, keys: Mapping[str, tuple[str, Role]]) -> ApiKeyStore:
        """For tests and embedding: {key: (actor, role)}."""
        text = ",".join(f"{key}:{actor}:{role.value}" for key, (actor, role) in keys.items())
        return cls(text, None)

    def _reload_file(self, *, initial: bool = False) -> None:
        if self._file is None:
            return
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            self._file_stamp, self._from_file = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._file_stamp:
            return
        try:
            text = self._file.read_text(encoding="utf-8")
            self._from_file = parse_api_keys(text.splitlines(), str(self._file))
        except ApiKeyError:
            if initial:
                raise
            # A half-edited file must not lock everybody out: keep the last good keys.
            log.exception("api_keys_reload_failed", path=str(self._file))
        self._file_stamp = stamp

    def lookup(self, key: str) -> Principal | None:
        self._reload_file()
        digest = _digest(key)
        return self._from_file.get(digest) or self._static.get(digest)

    def __len__(self) -> int:
        return len(self._static) + len(self._from_file)


# auto_error=False: we answer 401 ourselves, with one message for both headers.
# Declared as security schemes so /docs offers an "Authorize" button.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: <api key>`"
)


def _key_store(request: Request) -> ApiKeyStore:
    store: ApiKeyStore = request.app.state.api_keys
    return store


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def presented_key(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return api_key or None


async def optional_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal | None:
    """The caller if a key was presented; 401 for a key we do not know."""
    key = presented_key(bearer, api_key)
    if key is None:
        return None
    principal = _key_store(request).lookup(key)
    if principal is None:
        raise _unauthorized("unknown API key")
    # Every log line written while serving this request names the actor.
    structlog.contextvars.bind_contextvars(actor=principal.actor, role=principal.role.value)
    return principal


async def authenticate(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller; 401 without a key (no anonymous access to Steward's data)."""
    if principal is None:
        raise _unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    return principal


def require_roles(*roles: Role) -> Callable[..., object]:
    """A dependency that lets only `roles` through (403 otherwise)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    async def dependency(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value} may not do this (needs one of: {names})",
            )
        return principal

    _REQUIRED_ROLES[dependency] = allowed
    return dependency


# The roles each require_roles() dependency lets through: the console applies
# decisions by calling the API's route functions, and checks the same roles.
_REQUIRED_ROLES: dict[Callable[..., object], frozenset[Role]] = {}


def roles_of(principal_type: Any) -> frozenset[Role]:
    """The roles an `Annotated[Principal, Depends(require_roles(...))]` route
    parameter type lets through (every role for plain authentication)."""
    for meta in get_args(principal_type)[1:]:
        dependency = getattr(meta, "dependency", None)
        if dependency is authenticate:
            return frozenset(Role)
        if dependency in _REQUIRED_ROLES:
            return _REQUIRED_ROLES[dependency]
    raise ValueError(f"{principal_type!r} is not a principal dependency")


def in_networks(host: str | None, networks: str) -> bool:
    """True when `host` is an IP inside one of the comma-separated CIDRs."""
    if host is None or not networks.strip():
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in networks.split(","):
        if cidr.strip() and address in ipaddress.ip_network(cidr.strip(), strict=False):
            return True
    return False


def is_loopback(host: str | None) -> bool:
    """True for a peer on this machine (the embedded stack binds to 127.0.0.1)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
