"""A bounded soak: hundreds of slow and half-sent unauthenticated connections for a few seconds, all
on loopback, while a keyed client keeps being served; afterwards the server's memory and open
descriptors are back at their baseline (read from /proc, Linux only).

Sizes: 8 client addresses x 50 connections, in four kinds (idle, slow headers, a declared body that
never arrives without a key, a DeepStack form stalled before its key). The server's limits are 1 s,
so every connection is cut off within seconds; the test waits with generous timeouts only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import sys
import time

import aiohttp
import pytest

from tests.conftest import KEY_ENV, _serve
from tests.support import API_KEY, BUS, ServerProcess, open_from, read_all

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ADDRESSES = [f"127.0.0.{n}" for n in range(100, 108)]
PER_ADDRESS = 50
ATTACK_SECONDS = 3.0
SETTLE_TIMEOUT = 30.0
RSS_SLACK = (
    32 * 1024 * 1024
)  # the allocator keeps some freed memory; a leak of 400 bodies would not fit
FD_SLACK = 2

KINDS = [
    b"",  # connects, sends nothing
    # headers never finished
    b"POST /v1/detect HTTP/1.1\r\nHost: detector\r\nContent-Type: image/jpeg\r\n",
    (  # a body declared, never sent, and no key
        b"POST /v1/detect HTTP/1.1\r\nHost: detector\r\nContent-Type: image/jpeg\r\n"
        b"Content-Length: 1000000\r\n\r\n" + b"\xff\xd8\xff" + bytes(4000)
    ),
    (  # a DeepStack form whose api_key never comes
        b"POST /v1/vision/detection HTTP/1.1\r\nHost: detector\r\n"
        b"Content-Type: multipart/form-data; boundary=b0und\r\nContent-Length: 1000000\r\n\r\n"
        b'--b0und\r\nContent-Disposition: form-data; name="min_confidence"\r\n\r\n0.4\r\n'
        b'--b0und\r\nContent-Disposition: form-data; name="api_'
    ),
]


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(
        [
            "--engine", "tflite", "--no-warmup", "--rate-limit", "0", "--auth-fail-limit", "0",
            "--header-timeout", "1", "--body-timeout", "1", "--keepalive-timeout", "1",
            "--max-connections-per-client", "64",
        ],
        tmp_path_factory.mktemp("soak"),
        KEY_ENV,
    )  # fmt: skip


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


async def _hostile(server: ServerProcess, address: str, payload: bytes) -> bytes:
    """One connection that sends its payload and then waits for the server to end it."""
    reader, writer = await open_from(server, address)
    try:
        if payload:
            writer.write(payload)
            await writer.drain()
        return await read_all(reader)
    except ConnectionError:
        return b"reset"
    finally:
        writer.close()


async def test_soak_of_slow_unauthenticated_connections(soak_server: ServerProcess) -> None:
    assert soak_server.proc is not None
    pid = soak_server.proc.pid
    url = soak_server.url + "/v1/detect"
    headers = {"X-API-Key": API_KEY, "Content-Type": "image/jpeg"}
    async with aiohttp.ClientSession(headers=headers) as owner:
        for _ in range(3):  # warm: the first requests allocate what every later one reuses
            async with owner.post(url, data=BUS) as resp:
                assert resp.status == 200
        await asyncio.sleep(1.5)  # the warm-up's keep-alive connection is gone too
        base_rss, base_fds = _rss(pid), _fds(pid)

        served: list[int] = []
        stop = asyncio.Event()

        async def keyed_camera() -> None:
            while not stop.is_set():
                async with owner.post(url, data=BUS) as resp:
                    served.append(resp.status)
                await asyncio.sleep(0.1)

        camera = asyncio.create_task(keyed_camera())
        peak_rss, peak_fds = base_rss, base_fds
        attacks: list[asyncio.Task[bytes]] = []
        start = time.monotonic()
        for index in range(PER_ADDRESS):
            for address in ADDRESSES:
                kind = KINDS[(index + ADDRESSES.index(address)) % len(KINDS)]
                attacks.append(asyncio.create_task(_hostile(soak_server, address, kind)))
            await asyncio.sleep(ATTACK_SECONDS / PER_ADDRESS)
            peak_rss, peak_fds = max(peak_rss, _rss(pid)), max(peak_fds, _fds(pid))
        async with asyncio.timeout(SETTLE_TIMEOUT):
            answers = await asyncio.gather(*attacks)  # every one is ended by the server
        attack_wall = time.monotonic() - start
        stop.set()
        await camera

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline and _fds(pid) > base_fds + FD_SLACK:  # noqa: ASYNC110
        await asyncio.sleep(0.2)  # polling another process's /proc: no event to wait on
    after_rss, after_fds = _rss(pid), _fds(pid)
    statuses = sorted({a.split(b" ", 2)[1].decode() if a.startswith(b"HTTP") else "none"
                       for a in answers})  # fmt: skip
    print(
        f"\nsoak: {len(attacks)} hostile connections over {attack_wall:.1f} s, "
        f"{len(served)} keyed requests served; RSS {base_rss / 2**20:.1f} MiB -> peak "
        f"{peak_rss / 2**20:.1f} -> after {after_rss / 2**20:.1f} MiB; open descriptors "
        f"{base_fds} -> peak {peak_fds} -> after {after_fds}; answers {statuses}"
    )
    assert served
    assert set(served) == {200}
    assert peak_fds > base_fds + 50  # the attack did hold connections open for a while
    assert after_fds <= base_fds + FD_SLACK
    assert after_rss <= base_rss + RSS_SLACK
    log = soak_server.output()
    assert "Traceback" not in log
    assert len(log.splitlines()) < 400  # one short line per client and minute, not per connection
