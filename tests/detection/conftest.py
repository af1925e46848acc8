"""Fixtures of the detector tests: a client session per test (the real servers: servers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session (Home Assistant passes its shared one)."""
    async with aiohttp.ClientSession() as client:
        yield client
