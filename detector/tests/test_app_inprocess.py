"""The aiohttp application in-process on 127.0.0.1 (aiohttp's TestServer: real socket, real client),
for what a process test cannot provoke: an unexpected failure in a handler must become a bare 500.

The engine is test_units' scripted one, whose class list raises here (no real engine fails so)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp.test_utils import TestServer
from PIL import Image
import pytest

from hsi_detector.app import AppState, create_app
from hsi_detector.batcher import MicroBatcher
from hsi_detector.config import Settings
from hsi_detector.keys import KeyStore
from hsi_detector.limits import AuthFailureLimiter, RateLimiter
from hsi_detector.metrics import Metrics
from hsi_detector.service import DetectionService
from tests.support import encode
from tests.test_units import ScriptedEngine


class BrokenNamesEngine(ScriptedEngine):
    @property
    def class_names(self) -> tuple[str, ...]:
        raise LookupError("/secret/path/model.pt is gone")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    engine = BrokenNamesEngine()
    settings = Settings()
    metrics = Metrics()
    batcher = MicroBatcher(engine, 4, 0.0, 16, on_batch=metrics.batch)
    state = AppState(
        DetectionService(settings, engine, batcher, metrics),
        KeyStore(()),
        metrics,
        RateLimiter(0),
        AuthFailureLimiter(0),
    )
    batcher.start()
    test_server = TestServer(create_app(state), host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()
        batcher.stop()


async def test_unexpected_failure_is_a_bare_500(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    async with aiohttp.ClientSession() as session:
        url = str(server.make_url("/v1/detect"))
        headers = {"Content-Type": "image/png"}
        async with session.post(url + "?classes=person", data=png, headers=headers) as resp:
            assert resp.status == 500
            body = await resp.json()
        assert body == {"error": {"code": 500, "reason": "internal", "message": "internal error"}}
        assert "unexpected LookupError on /v1/detect" in caplog.text
        assert "/secret/path" not in caplog.text
        form = aiohttp.FormData()
        for _ in range(2):
            form.add_field("image", png, filename="a.png", content_type="image/png")
        async with session.post(url, data=form) as resp:
            assert resp.status == 400
            assert "exactly one image" in (await resp.json())["error"]["message"]
        async with session.post(url, data=png, headers=headers) as resp:
            assert resp.status == 200
            assert len((await resp.json())["detections"]) == 2
