"""Steward's HTTP API (FastAPI): `create_app(settings, client=None, pool=None)`."""

from starters.api.app import create_app

__all__ = ["create_app"]
