"""Pytest fixture yielding a started ONVIF camera simulator; import it from a conftest."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest_asyncio

from .server import OnvifSimulator


@pytest_asyncio.fixture
async def onvif_sim(socket_enabled: None) -> AsyncGenerator[OnvifSimulator]:
    """A simulated camera on a free 127.0.0.1 port with default identity and credentials.

    Home Assistant's test plugin forbids creating sockets; pytest-socket's socket_enabled lifts
    that for this test while its allow-list still keeps connections on 127.0.0.1.
    """
    simulator = OnvifSimulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()
