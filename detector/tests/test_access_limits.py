"""Rate limiting and the failed-authentication throttle on a real server, told apart per client by
connecting from different loopback addresses (127.0.0.x)."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.conftest import KEY_ENV, _serve
from tests.support import API_KEY, ServerProcess


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(
        ["--engine", "tflite", "--no-warmup", "--rate-limit", "2", "--auth-fail-limit", "2"],
        tmp_path_factory.mktemp("strict"),
        KEY_ENV,
    )


def _from(address: str, key: str | None) -> aiohttp.ClientSession:
    headers = {"X-API-Key": key} if key else {}
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    return aiohttp.ClientSession(connector=connector, headers=headers)


async def test_rate_limit_answers_429_with_retry_after(strict_server: ServerProcess) -> None:
    statuses = []
    async with _from("127.0.0.5", API_KEY) as client:
        for _ in range(12):
            async with client.get(strict_server.url + "/health") as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert resp.headers["Retry-After"] == "1"
                    assert (await resp.json())["error"]["reason"] == "rate_limited"
    assert statuses[:4] == [200] * 4  # burst of 2 x rate
    assert 429 in statuses
    async with _from("127.0.0.6", API_KEY) as other, other.get(strict_server.url + "/health") as r:
        assert r.status == 200  # another client is not affected


async def test_repeated_bad_keys_are_throttled_without_locking_the_owner_out(
    strict_server: ServerProcess,
) -> None:
    async with _from("127.0.0.3", "W" + "q7" * 20) as attacker:
        for _ in range(2):
            async with attacker.get(strict_server.url + "/metrics") as resp:
                assert resp.status == 401
        async with attacker.get(strict_server.url + "/metrics") as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["reason"] == "auth_throttled"
            assert int(resp.headers["Retry-After"]) > 0
    # Home Assistant shares the address: its valid key is still served.
    async with (
        _from("127.0.0.3", API_KEY) as same_address,
        same_address.get(strict_server.url + "/metrics") as resp,
    ):
        assert resp.status == 200
        assert "hsi_auth_failures_total 3.0" in await resp.text()
