"""RemoteDetector against a DeepStack-shaped server and a hostile one: always the right error."""

# ruff: noqa: E501 - tables of cases read best one case per line

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import json
import traceback
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from custom_components.home_security_intel.detection.model import (
    CannotConnect,
    DetectorBusy,
    DetectorError,
    DetectorTimeout,
    InvalidAnswer,
    InvalidImage,
    InvalidKey,
    NotADetector,
)
from custom_components.home_security_intel.detection.parse import MAX_DETECTIONS
from custom_components.home_security_intel.detection.remote import (
    MAX_ANSWER_BYTES,
    RemoteDetector,
    status_error,
)

from .support import API_KEY, jpeg

FRAME = jpeg(640, 480)
type Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Peer:
    """An aiohttp server on 127.0.0.1 whose detection endpoints answer what the test says."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = self.deepstack
        self.seen: list[dict[str, Any]] = []
        app = web.Application()
        for path in ("/v1/detect", "/v1/vision/detection", "/detect"):
            app.router.add_post(path, self._handle)
        app.router.add_get("/health", self._handle)
        app.router.add_get("/elsewhere", self._elsewhere)
        self.server = TestServer(app, host="127.0.0.1")
        self.redirected = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await self.behaviour(request)

    async def _elsewhere(self, request: web.Request) -> web.StreamResponse:
        self.redirected = True
        return web.json_response({})

    async def deepstack(self, request: web.Request) -> web.Response:
        """As DeepStack answers: pixel boxes, the key in the form."""
        form = await request.post()
        image = form["image"]
        assert isinstance(image, web.FileField)
        self.seen.append(
            {
                "api_key": form.get("api_key"),
                "min_confidence": form.get("min_confidence"),
                "header_key": request.headers.get("X-API-Key"),
                "image": image.file.read(),
                "query": request.query_string,
            }
        )
        if form.get("api_key") != API_KEY:
            return web.json_response({"success": False, "error": "Incorrect api key"}, status=401)
        predictions = [
            {"label": "person", "confidence": 0.88, "x_min": 64, "y_min": 48, "x_max": 320, "y_max": 480},
            {"label": "car", "confidence": 0.51, "x_min": 600, "y_min": 400, "x_max": 900, "y_max": 700},
        ]  # fmt: skip
        return web.json_response({"success": True, "predictions": predictions, "inferenceMs": 21})


@pytest.fixture
async def peer(socket_enabled: None) -> AsyncIterator[Peer]:
    served = Peer()
    await served.server.start_server()
    try:
        yield served
    finally:
        await served.server.close()


def _answer(body: Any = None, status: int = 200, **kwargs: Any) -> Behaviour:
    async def respond(request: web.Request) -> web.StreamResponse:
        await request.read()
        if isinstance(body, bytes | str):
            return web.Response(body=body, status=status, **kwargs)
        return web.json_response(body, status=status, **kwargs)

    return respond


async def test_deepstack_server(session: aiohttp.ClientSession, peer: Peer) -> None:
    detector = RemoteDetector(session, peer.url, "deepstack", api_key=API_KEY, min_confidence=0.4)
    result = await detector.async_detect(FRAME)
    # The size comes from the JPEG header; the car's box is clipped into the frame.
    assert (result.width, result.height, result.inference_ms) == (640, 480, 21.0)
    person, car = result.detections
    assert (person.label, person.box.x_min, person.box.y_min, person.box.y_max) == (
        "person",
        0.1,
        0.1,
        1.0,
    )
    assert (car.box.x_max, car.box.y_max) == (1.0, 1.0)
    [seen] = peer.seen
    assert seen["api_key"] == API_KEY
    assert seen["header_key"] is None  # DeepStack's key travels in the form only
    assert seen["min_confidence"] == "0.4"
    assert seen["image"] == FRAME
    assert seen["query"] == ""
    info = await detector.async_check()
    assert info.name == "DeepStack / CodeProject.AI"


async def test_deepstack_wrong_key(session: aiohttp.ClientSession, peer: Peer) -> None:
    with pytest.raises(InvalidKey):
        await RemoteDetector(session, peer.url, "deepstack", api_key="w" * 32).async_detect(FRAME)


async def test_keys_travel_in_a_header_never_in_the_url(
    session: aiohttp.ClientSession, peer: Peer
) -> None:
    seen: list[tuple[str | None, str]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append((request.headers.get("X-API-Key"), str(request.rel_url)))
        return web.json_response({"detections": [], "image": {"width": 640, "height": 480}})

    peer.behaviour = record
    await RemoteDetector(session, peer.url, "hsi", api_key=API_KEY).async_detect(FRAME)
    assert seen == [(API_KEY, "/v1/detect")]


SLOW = 30.0


async def _slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(SLOW)
    return web.json_response({})


async def _reset(request: web.Request) -> web.StreamResponse:
    await request.read()
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


async def _trickle_huge(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    chunk = b" " * 65536
    for _ in range(MAX_ANSWER_BYTES // len(chunk) + 2):
        await response.write(chunk)
    return response


def _boxes(count: int, **box: float) -> dict[str, Any]:
    bounds = {"x_min": 10.0, "y_min": 10.0, "x_max": 100.0, "y_max": 100.0, **box}
    return {
        "detections": [
            {"label": "person", "confidence": (i % 1000) / 1000, "box": bounds}
            for i in range(count)
        ],
        "image": {"width": 640, "height": 480},
    }


HOSTILE: list[tuple[str, Behaviour, type[DetectorError]]] = [
    ("500", _answer({"error": "boom"}, status=500), DetectorError),
    ("502 html", _answer("<html>bad gateway</html>", status=502, content_type="text/html"), DetectorError),
    ("504", _answer({}, status=504), DetectorTimeout),
    ("html 200", _answer("<html><body>router login</body></html>", content_type="text/html"), NotADetector),
    ("404", _answer("not found", status=404, content_type="text/plain"), NotADetector),
    ("405", _answer({}, status=405), NotADetector),
    ("302", _answer(b"", status=302, headers={"Location": "/elsewhere"}), NotADetector),
    ("418", _answer({}, status=418), NotADetector),
    ("401", _answer({}, status=401), InvalidKey),
    ("403", _answer({}, status=403), InvalidKey),
    ("413", _answer({}, status=413), InvalidImage),
    ("415", _answer({}, status=415), InvalidImage),
    ("422", _answer({}, status=422), InvalidImage),
    ("400", _answer({}, status=400), InvalidImage),
    ("429", _answer({}, status=429, headers={"Retry-After": "soon"}), DetectorBusy),
    ("not json", _answer("{nope", content_type="application/json"), InvalidAnswer),
    ("wrong json", _answer({"detections": "many"}), InvalidAnswer),
    ("json list", _answer([1, 2, 3]), InvalidAnswer),
    ("nan score", _answer(b'{"detections": [{"label": "person", "confidence": NaN, "box": {"x_min": 1, "y_min": 1, "x_max": 2, "y_max": 2}}], "image": {"width": 9, "height": 9}}', content_type="application/json"), InvalidAnswer),
    ("nan box", _answer(_boxes(1, x_min=float("nan"))), InvalidAnswer),
    ("huge declared", _answer(b" " * (MAX_ANSWER_BYTES + 1), content_type="application/json"), InvalidAnswer),
    ("huge streamed", _trickle_huge, InvalidAnswer),
    ("reset", _reset, CannotConnect),
    ("slow", _slow, DetectorTimeout),
]  # fmt: skip


@pytest.mark.parametrize(
    ("behaviour", "expected"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
async def test_hostile_answers_raise_the_right_error(
    session: aiohttp.ClientSession,
    peer: Peer,
    behaviour: Behaviour,
    expected: type[DetectorError],
) -> None:
    peer.behaviour = behaviour
    detector = RemoteDetector(session, peer.url, "hsi", api_key=API_KEY, timeout=0.5)
    with pytest.raises(DetectorError) as err:
        await detector.async_detect(FRAME)
    assert type(err.value) is expected
    assert API_KEY not in "".join(traceback.format_exception(err.value))
    assert not peer.redirected  # the key never followed a redirect


async def test_server_error_message(session: aiohttp.ClientSession, peer: Peer) -> None:
    peer.behaviour = _answer({}, status=500)
    with pytest.raises(DetectorError, match=r"^server error 500$"):
        await RemoteDetector(session, peer.url, "hsi").async_detect(FRAME)


async def test_busy_keeps_retry_after(session: aiohttp.ClientSession, peer: Peer) -> None:
    peer.behaviour = _answer({}, status=503, headers={"Retry-After": "7"})
    with pytest.raises(DetectorBusy) as err:
        await RemoteDetector(session, peer.url, "rtdetr").async_detect(FRAME)
    assert err.value.retry_after == 7.0
    assert status_error(429).retry_after is None  # type: ignore[attr-defined]


async def test_boxes_outside_the_frame_and_ten_thousand_boxes(
    session: aiohttp.ClientSession, peer: Peer
) -> None:
    detector = RemoteDetector(session, peer.url, "hsi")
    peer.behaviour = _answer(_boxes(3, x_min=-500, y_min=-500, x_max=5000, y_max=5000))
    result = await detector.async_detect(FRAME)
    assert {(d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max) for d in result.detections} == {
        (0.0, 0.0, 1.0, 1.0)
    }
    peer.behaviour = _answer(_boxes(3, x_min=700, x_max=800))  # entirely right of the frame
    assert (await detector.async_detect(FRAME)).detections == ()
    peer.behaviour = _answer(_boxes(10_000))
    many = await detector.async_detect(FRAME)
    assert len(many.detections) == MAX_DETECTIONS
    assert many.detections[0].score == 0.999


async def test_check_of_something_that_is_not_a_detector(
    session: aiohttp.ClientSession, peer: Peer
) -> None:
    peer.behaviour = _answer({"hello": "world"})
    with pytest.raises(NotADetector, match="not a HSI detector"):
        await RemoteDetector(session, peer.url, "hsi").async_check()
    peer.behaviour = _answer("<html></html>", content_type="text/html")
    with pytest.raises(NotADetector):
        await RemoteDetector(session, peer.url, "rtdetr").async_check()


async def test_health_that_says_nothing_useful(session: aiohttp.ClientSession, peer: Peer) -> None:
    answers = iter([{"detections": [], "image": {"width": 64, "height": 48}}, [1, 2]])

    async def respond(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response(next(answers))

    peer.behaviour = respond
    info = await RemoteDetector(session, peer.url, "hsi").async_check()
    assert (info.name, info.version, info.queue_depth) == ("HSI detector", None, None)


async def test_health_missing(session: aiohttp.ClientSession, peer: Peer) -> None:
    async def respond(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.method == "GET":
            raise web.HTTPNotFound
        return web.json_response({"detections": [], "image_width": 64, "image_height": 48})

    peer.behaviour = respond
    info = await RemoteDetector(session, peer.url, "rtdetr").async_check()
    assert info.name == "HSI RT-DETR"


async def test_dns_failure(peer: Peer) -> None:
    class Unresolvable(aiohttp.abc.AbstractResolver):
        async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[Any]:
            raise OSError(-2, "Name or service not known")

        async def close(self) -> None:
            return None

    connector = aiohttp.TCPConnector(resolver=Unresolvable())
    async with aiohttp.ClientSession(connector=connector) as session:
        detector = RemoteDetector(session, "https://detector.example.com", "hsi")
        with pytest.raises(CannotConnect, match=r"cannot resolve detector\.example\.com"):
            await detector.async_detect(FRAME)


async def test_not_http_at_all(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises((NotADetector, CannotConnect)):
            await RemoteDetector(session, f"http://127.0.0.1:{port}", "hsi").async_detect(FRAME)
    finally:
        server.close()
        await server.wait_closed()


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="unknown detector API"):
        RemoteDetector(None, "http://127.0.0.1:1", "yolo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"http:// or https://"):
        RemoteDetector(None, "ftp://127.0.0.1:1", "hsi")  # type: ignore[arg-type]
    detector = RemoteDetector(None, "http://127.0.0.1:1", "hsi", api_key=API_KEY)  # type: ignore[arg-type]
    assert API_KEY not in repr(detector)
    assert json.dumps(status_error(507).args) == '["server error 507"]'
