"""Shared fixtures of the usage tests (ingest side): auth headers and a clean settings cache."""

from __future__ import annotations

import base64

import pytest


def basic(token: str, *, colon: bool = True) -> str:
    """The Authorization value Segment sends: Basic base64("<token>:")."""
    raw = f"{token}:" if colon else token
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.fixture(autouse=True)
def _ingest_settings_cache_cleared():
    # The ingest path caches the integration row per process; tests change it between requests.
    from usage.ingest.auth import integration_cache_clear

    integration_cache_clear()
    yield
    integration_cache_clear()


@pytest.fixture
def token(integration) -> str:
    return integration.tenant_token


@pytest.fixture
def auth(token) -> dict[str, str]:
    """Django test-client kwargs carrying the tenant token."""
    return {"HTTP_AUTHORIZATION": basic(token)}
