"""The fake provider server and an HTTP client for the upstream integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from meterline.adapters.upstreams import make_http_client
from meterline.adapters.upstreams.http_client import UpstreamHttp
from meterline.testing.fake_upstream import FakeUpstream, running_fake_upstream


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHttp]:
    client = make_http_client(connect_timeout=2, read_timeout=10)
    try:
        yield client
    finally:
        await client.aclose()
