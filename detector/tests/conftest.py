"""Shared fixtures: module-scoped detector processes (a start costs seconds: tests share them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support import API_KEY, ServerProcess

# The key travels in the environment, as the README recommends: a flag would show in `ps`.
KEY_ENV = {"HSI_API_KEY": API_KEY}


def _serve(
    args: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(args, env=env or {}, workdir=workdir).start()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def tflite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The packaged SSD MobileNet, a key required, limits loose enough for the load test."""
    yield from _serve(
        [
            "--engine", "tflite", "--rate-limit", "0",
            "--auth-fail-limit", "1000", "--max-queue", "1024", "--log-level", "debug",
        ],
        tmp_path_factory.mktemp("tflite"),
        KEY_ENV,
    )  # fmt: skip


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client sending the key."""
    async with aiohttp.ClientSession(headers={"X-API-Key": API_KEY}) as session:
        yield session


@pytest.fixture(scope="module")
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client without a key."""
    async with aiohttp.ClientSession() as session:
        yield session
