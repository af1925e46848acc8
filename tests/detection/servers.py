"""Real detector server processes as module-scoped fixtures (detector and config-flow tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import API_KEY, DetectorServer


def _server(tmp: Path, args: list[str], key: str | None) -> Iterator[DetectorServer]:
    server = DetectorServer(tmp, args, key).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectorServer]:
    """The real server over HTTP on loopback, with an API key."""
    yield from _server(tmp_path_factory.mktemp("keyed"), [], API_KEY)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectorServer]:
    """The real server over HTTP on loopback, without a key."""
    yield from _server(tmp_path_factory.mktemp("open"), [], None)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectorServer]:
    """The real server over HTTPS with its self-signed certificate, with an API key."""
    tmp = tmp_path_factory.mktemp("tls")
    yield from _server(tmp, ["--tls", "self-signed", "--tls-dir", str(tmp / "tls")], API_KEY)
