"""/docs and /redoc load every asset from the API itself: they work without Internet."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from starters.api.app import create_app
from starters.auth import ApiKeyStore
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

_ASSET = re.compile(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""")


@pytest.fixture
def offline_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    def no_network(self: socket.socket, address: Any) -> None:
        raise OSError(f"no network in this test (tried {address!r})")

    # Any attempt to reach a CDN (or anything else) fails loudly.
    monkeypatch.setattr(socket.socket, "connect", no_network)
    settings = Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path)
    app = create_app(
        settings,
        client=cast(Any, None),
        pool=cast(Any, None),
        api_keys=ApiKeyStore.from_mapping({}),
        codec=EncryptionCodec(Keyring.generate()),
    )
    yield TestClient(app)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
def test_docs_page_and_its_assets_come_from_the_app(
    offline_api: TestClient, page: str, expected: set[str]
) -> None:
    html = offline_api.get(page)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    urls = set(_ASSET.findall(html.text))
    assert {url.rsplit("/", 1)[-1] for url in urls} >= expected
    # Nothing from another host: no CDN, no Google Fonts.
    external = [url for url in urls if url.startswith(("http:", "https:", "//"))]
    assert external == []
    assert "cdn.jsdelivr.net" not in html.text
    assert "fonts.googleapis.com" not in html.text
    for url in urls:
        asset = offline_api.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
            assert len(asset.content) > 100_000  # the real bundle, not a placeholder
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")
            assert ".swagger-ui" in asset.text
        elif url.endswith("openapi.json"):
            assert asset.json()["info"]["title"] == "Steward API"


def test_docs_assets_are_not_in_the_openapi_document(offline_api: TestClient) -> None:
    paths = offline_api.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
