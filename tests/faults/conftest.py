"""Fixtures of the fault tests: the ingest ones of tests/usage, the push's Segment sink of
tests/warehouse_sync, and a TCP proxy the test owns.
"""

from __future__ import annotations

import pytest

from tests.faults.proxy import FaultProxy
from tests.usage.conftest import _ingest_settings_cache_cleared, auth, token  # noqa: F401
from tests.warehouse_sync.conftest import sink  # noqa: F401


@pytest.fixture
def proxy_to():
    """``proxy_to(host, port)``: a FaultProxy in front of a server, closed after the test."""
    started: list[FaultProxy] = []

    def make(host: str, port: int) -> FaultProxy:
        proxy = FaultProxy(upstream=(host, port))
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.close()
