"""A hostile LAN against a real server: each class of attack from the issue, one test each.

Raw sockets (asyncio streams) send what aiohttp's client would not: half-sent requests, bodies
shorter than declared, `Expect: 100-continue`, header bytes that are not UTF-8, malformed requests.
Each test connects from its own loopback address (127.0.0.x), so per-client limits do not mix.
The server runs with short time limits (1 s) so that a cut-off shows within seconds; the tests
only wait with generous timeouts, they assert no timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import re

import aiohttp
import pytest

from tests.conftest import KEY_ENV, _serve
from tests.support import (
    API_KEY,
    BUS,
    ServerProcess,
    exchange,
    head_and_body,
    metric,
    open_from,
    png_claiming,
    read_all,
    status_of,
)

LIMIT_ARGS = [
    "--engine", "tflite", "--no-warmup", "--rate-limit", "0", "--auth-fail-limit", "3",
    "--header-timeout", "1", "--body-timeout", "1", "--keepalive-timeout", "2",
    "--max-connections-per-client", "8", "--max-body-mb", "4",
]  # fmt: skip
KEY_HEADER = f"X-API-Key: {API_KEY}\r\n".encode()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(LIMIT_ARGS, tmp_path_factory.mktemp("hostile"), KEY_ENV)


def _from(address: str, key: str | None = API_KEY) -> aiohttp.ClientSession:
    headers = {"X-API-Key": key} if key else {}
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    return aiohttp.ClientSession(connector=connector, headers=headers)


async def _served(server: ServerProcess, address: str = "127.0.0.2") -> None:
    async with _from(address) as client, client.get(server.url + "/health") as resp:
        assert resp.status == 200
        assert "engine" in await resp.json()


async def _metrics(server: ServerProcess) -> str:
    async with _from("127.0.0.2") as client, client.get(server.url + "/metrics") as resp:
        return await resp.text()


def _post_head(path: str, length: int, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: detector\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {length}\r\n"
    ).encode() + extra


# ---------------------------------------------------------------- resources before authentication


async def test_slow_headers_are_cut_off_while_a_keyed_client_is_served(
    hostile_server: ServerProcess,
) -> None:
    slow = [await open_from(hostile_server, "127.0.0.21") for _ in range(4)]
    for _reader, writer in slow:
        writer.write(b"POST /v1/detect HTTP/1.1\r\nHost: detector\r\nX-Slow: ")  # never finished
        await writer.drain()
    await _served(hostile_server)
    for reader, writer in slow:
        answer = await read_all(reader)  # the server ends it: 408 and close
        writer.close()
        assert status_of(answer) == 408
        assert b"header_timeout" in answer
    await _served(hostile_server)


async def test_idle_connections_are_closed(hostile_server: ServerProcess) -> None:
    # A connection that never sends a byte is closed after the header time limit ...
    reader, writer = await open_from(hostile_server, "127.0.0.22")
    assert status_of(await read_all(reader)) == 408
    writer.close()
    # ... and an idle keep-alive connection after its last answer, after the keep-alive limit.
    reader, writer = await open_from(hostile_server, "127.0.0.22")
    writer.write(b"GET /health HTTP/1.1\r\nHost: detector\r\n\r\n")
    await writer.drain()
    answer = await read_all(reader)
    writer.close()
    assert status_of(answer) == 200
    assert answer.count(b"HTTP/1.1") == 1  # closed without a second answer


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Long time limits: held connections stay until the test lets them go (a loaded machine must
    not end them before the cap is reached)."""
    args = [*LIMIT_ARGS, "--header-timeout", "120", "--keepalive-timeout", "120"]
    yield from _serve(args, tmp_path_factory.mktemp("patient"), KEY_ENV)


async def test_connections_per_client_address_are_capped(patient_server: ServerProcess) -> None:
    hostile_server = patient_server
    held = [await open_from(hostile_server, "127.0.0.23") for _ in range(8)]
    for _reader, writer in held:
        writer.write(b"GET /health HTTP/1.1\r\n")  # half-sent: each stays open for a while
        await writer.drain()
    reader, writer = await open_from(hostile_server, "127.0.0.23")  # one too many: refused at once
    answer = await read_all(reader)
    writer.close()
    assert status_of(answer) == 503
    assert b"too_many_connections" in answer
    await _served(hostile_server, "127.0.0.24")  # another address is not affected
    for _reader, writer in held:
        writer.close()
    answer = b""
    for _ in range(50):  # the count drops as the server sees the connections close
        try:
            answer = await exchange(
                hostile_server,
                "127.0.0.23",
                b"GET /health HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
            )
        except ConnectionResetError:  # still refused: the request was unread when it closed
            answer = b""
        if status_of(answer) == 200:
            break
        await asyncio.sleep(0.1)
    assert status_of(answer) == 200


async def test_body_shorter_than_declared_ends_with_408(hostile_server: ServerProcess) -> None:
    request = _post_head("/v1/detect", 100_000, KEY_HEADER) + b"\r\n" + BUS[:1000]
    answer = await exchange(hostile_server, "127.0.0.25", request)
    assert status_of(answer) == 408
    assert b"body_timeout" in head_and_body(answer)[1]
    await _served(hostile_server)


async def test_expect_continue_gets_no_100_when_refused(hostile_server: ServerProcess) -> None:
    expect = b"Expect: 100-continue\r\n"
    oversized = _post_head("/v1/detect", 50 * 1024 * 1024, KEY_HEADER + expect) + b"\r\n"
    answer = await exchange(hostile_server, "127.0.0.26", oversized)
    assert status_of(answer) == 413
    assert b"100 Continue" not in answer
    keyless = _post_head("/v1/detect", len(BUS), expect) + b"\r\n"
    answer = await exchange(hostile_server, "127.0.0.26", keyless)
    assert status_of(answer) == 401
    assert b"100 Continue" not in answer
    # A request the server wants: 100 first, then the body, then the answer.
    reader, writer = await open_from(hostile_server, "127.0.0.26")
    writer.write(_post_head("/v1/detect", len(BUS), KEY_HEADER + expect + b"Connection: close\r\n"))
    writer.write(b"\r\n")
    await writer.drain()
    async with asyncio.timeout(20):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
    writer.write(BUS)
    await writer.drain()
    answer = await read_all(reader)
    writer.close()
    assert status_of(answer) == 200


def _multipart(parts: list[tuple[str, bytes, str | None]], boundary: str = "b0und") -> bytes:
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def _form_request(path: str, body: bytes, extra: bytes = b"", boundary: str = "b0und") -> bytes:
    return (
        (
            f"POST {path} HTTP/1.1\r\nHost: detector\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + body
    )


async def test_deepstack_form_key_is_checked_before_much_is_read(
    hostile_server: ServerProcess,
) -> None:
    path = "/v1/vision/detection"
    key_first = _multipart([("api_key", API_KEY.encode(), None), ("image", BUS, "a.jpg")])
    answer = await exchange(hostile_server, "127.0.0.27", _form_request(path, key_first))
    assert status_of(answer) == 200
    # An image of 3 MB before the key: more than is read without a key (2 MiB).
    big = BUS + bytes(3 * 1024 * 1024)
    image_first = _multipart([("image", big, "a.jpg"), ("api_key", API_KEY.encode(), None)])
    answer = await exchange(hostile_server, "127.0.0.28", _form_request(path, image_first))
    assert status_of(answer) == 401
    # A preamble (text before the first boundary) counts against the body limit (4 MiB here).
    preamble = b"x" * 1000 + b"\r\n"
    chunked = (
        f"POST {path} HTTP/1.1\r\nHost: detector\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=b0und\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = preamble * 64
    # 4.3 MB and never a boundary; then the client waits (unsent data would make the close a reset).
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 66
    answer = await exchange(hostile_server, "127.0.0.29", chunked + body)
    assert status_of(answer) == 413
    await _served(hostile_server)


# ---------------------------------------------------------------- answers


async def test_hostile_inputs_get_4xx_never_500(hostile_server: ServerProcess) -> None:
    jpeg = b"Content-Type: image/png\r\n"
    gigapixel = png_claiming(65535, 65535)  # 4.3 gigapixels: over PIL's own bomb limit too
    request = (
        _post_head("/v1/detect", len(gigapixel), KEY_HEADER + jpeg).replace(
            b"Content-Type: image/jpeg\r\n", b""
        )
        + b"Connection: close\r\n\r\n"
        + gigapixel
    )
    answer = await exchange(hostile_server, "127.0.0.30", request)
    assert status_of(answer) == 413
    assert b"too_many_pixels" in answer
    # A multipart part header longer than the parser's field limit.
    body = (
        b'--b0und\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"X-Padding: " + b"p" * 20000 + b"\r\n\r\n" + BUS + b"\r\n--b0und--\r\n"
    )
    answer = await exchange(
        hostile_server, "127.0.0.30", _form_request("/v1/detect", body, KEY_HEADER)
    )
    assert status_of(answer) == 400
    assert b"bad_form" in answer
    # A file under a wrong field name says so (it is not "too long").
    body = _multipart([("file", BUS, "a.jpg")])
    answer = await exchange(
        hostile_server, "127.0.0.30", _form_request("/v1/detect", body, KEY_HEADER)
    )
    assert status_of(answer) == 400
    assert b"no image in the request (form field image); got file field 'file'" in answer
    await _served(hostile_server)


async def test_key_that_is_not_utf8_is_a_failed_attempt(hostile_server: ServerProcess) -> None:
    before = metric(await _metrics(hostile_server), "hsi_auth_failures_total")
    request = (
        b"GET /metrics HTTP/1.1\r\nHost: d\r\nConnection: close\r\nX-API-Key: \xff\xfe"
        + (b"k" * 40)
        + b"\r\n\r\n"
    )
    answer = await exchange(hostile_server, "127.0.0.31", request)
    assert status_of(answer) == 401
    assert metric(await _metrics(hostile_server), "hsi_auth_failures_total") == before + 1


async def test_keys_are_never_taken_from_the_url(hostile_server: ServerProcess) -> None:
    form = aiohttp.FormData()
    form.add_field("image", BUS, filename="a.jpg", content_type="image/jpeg")
    async with (
        _from("127.0.0.32", key=None) as anonymous,
        anonymous.post(
            hostile_server.url + f"/v1/vision/detection?api_key={API_KEY}", data=form
        ) as resp,
    ):
        assert resp.status == 401
        assert "never in the URL" in (await resp.json())["error"]
    async with (
        _from("127.0.0.32", key=None) as anonymous,
        anonymous.get(hostile_server.url + f"/metrics?api_key={API_KEY}") as resp,
    ):
        assert resp.status == 401


async def test_framework_errors_are_short_ours_and_do_not_echo(
    hostile_server: ServerProcess,
) -> None:
    marker = "EchoMarker" + API_KEY
    bad = f"GET /health HTTP/1.1\r\nHost: d\r\nX-API-Key: {API_KEY}\x01{marker}\r\n\r\n".encode()
    answer = await exchange(hostile_server, "127.0.0.33", bad)
    head, body = head_and_body(answer)
    assert status_of(answer) == 400
    assert re.search(r"(?im)^Server: hsi-detector\r?$", head), head
    assert "aiohttp" not in head
    assert "Python" not in head
    assert b"EchoMarker" not in body
    assert API_KEY.encode() not in body
    assert b'"bad_request"' in body
    log = hostile_server.output()
    assert "Traceback" not in log
    assert API_KEY not in log
    assert "EchoMarker" not in log
    assert re.search(r"HTTP 400 \(\w+\) from 127\.0\.0\.33", log), log[-2000:]


async def test_framework_error_log_is_rate_limited_per_client(
    hostile_server: ServerProcess,
) -> None:
    for _ in range(40):
        await exchange(hostile_server, "127.0.0.34", b"\x16\x03\x01 not http at all\r\n\r\n")
    lines = [line for line in hostile_server.output().splitlines() if "127.0.0.34" in line]
    assert 1 <= len(lines) <= 5
    await _served(hostile_server)


async def test_refusals_are_counted_by_reason(hostile_server: ServerProcess) -> None:
    async with (
        _from("127.0.0.35", key=None) as anonymous,
        anonymous.get(hostile_server.url + "/metrics") as resp,
    ):
        assert resp.status == 401
    async with _from("127.0.0.35") as client:
        async with client.post(
            hostile_server.url + "/v1/detect", data=b"x", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 415
        async with client.post(
            hostile_server.url + "/detect",
            data=b'{"image_base64": "%%%"}',
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400
        async with client.post(
            hostile_server.url + "/v1/detect", data=bytes(5 * 1024 * 1024),
            headers={"Content-Type": "image/jpeg"},
        ) as resp:  # fmt: skip
            assert resp.status == 413
    await exchange(hostile_server, "127.0.0.35", b"GET / HTTP/1.1\r\n")  # header time limit
    text = await _metrics(hostile_server)
    for reason in (
        "unauthorized", "unsupported_content_type", "bad_base64", "body_too_large",
        "header_timeout",
    ):  # fmt: skip
        assert metric(text, f'hsi_refusals_total{{reason="{reason}"}}') >= 1, reason


# ---------------------------------------------------------------- throttling without lockout


async def test_failed_attempts_are_throttled_but_a_valid_key_is_always_served(
    hostile_server: ServerProcess,
) -> None:
    statuses = []
    async with _from("127.0.0.36", "W" + "q7" * 20) as guesser:
        for _ in range(5):
            async with guesser.get(hostile_server.url + "/metrics") as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert 0 < int(resp.headers["Retry-After"]) <= 300
                    assert (await resp.json())["error"]["reason"] == "auth_throttled"
    assert statuses == [401, 401, 401, 429, 429]
    async with _from("127.0.0.36") as owner, owner.get(hostile_server.url + "/metrics") as resp:
        assert resp.status == 200  # same address, valid key: served
    assert "authentication failed from 127.0.0.36" in hostile_server.output()


@pytest.fixture(scope="module")
def tls_hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("tls_hostile")
    args = [*LIMIT_ARGS, "--tls", "self-signed", "--tls-dir", str(tmp / "tls")]
    yield from _serve(args, tmp, KEY_ENV)


async def test_tls_handshakes_that_never_finish_are_cut_off(
    tls_hostile_server: ServerProcess,
) -> None:
    # A client that connects and never starts (or finishes) its TLS handshake is not counted by
    # the per-client cap until the handshake is done, so the handshake itself is time-limited
    # (the header limit, 1 s here; asyncio's default would hold it for 60 s, past READ_TIMEOUT).
    reader, writer = await open_from(tls_hostile_server, "127.0.0.30")
    assert await read_all(reader) == b""
    writer.close()
    reader, writer = await open_from(tls_hostile_server, "127.0.0.30")
    writer.write(b"\x16\x03\x01\x00\xc8\x01")  # the start of a ClientHello, never finished
    await writer.drain()
    assert await read_all(reader) == b""
    writer.close()
