"""The ultralytics engine (YOLO11n from its yaml: random weights, no download) as a real process:
concurrent requests share forward passes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.conftest import _serve
from tests.support import BUS, ZIDANE, ServerProcess, metric, resized

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def yolo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Loopback without a key (allowed), small imgsz to keep CPU time low."""
    yield from _serve(
        [
            "--engine", "ultralytics", "--runtime", "torch", "--model", "yolo11n.yaml",
            "--imgsz", "320", "--max-batch-wait-ms", "20", "--max-batch-size", "8",
            "--rate-limit", "0", "--confidence", "0.0",
        ],
        tmp_path_factory.mktemp("yolo"),
    )  # fmt: skip


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


async def test_health_reports_ultralytics_on_cpu(
    yolo_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    async with session.get(yolo_server.url + "/health") as resp:
        body = await resp.json()
    assert body["engine"] == "ultralytics"
    assert body["model"] == "yolo11n.yaml"
    assert body["device"] == "cpu"
    assert body["max_batch_size"] == 8  # a number given is kept (auto would be 1 on CPU)


async def test_concurrent_requests_are_batched(
    yolo_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    images = [resized(BUS if i % 2 else ZIDANE, 200 + 10 * i) for i in range(16)]

    async def one(data: bytes) -> dict[str, object]:
        async with session.post(yolo_server.url + "/v1/detect", data=data, headers=JPEG) as resp:
            assert resp.status == 200
            return dict(await resp.json())

    answers = await asyncio.gather(*(one(d) for d in images))
    assert [a["image"]["width"] for a in answers] == [200 + 10 * i for i in range(16)]  # type: ignore[index]
    async with session.get(yolo_server.url + "/metrics") as resp:
        text = await resp.text()
    batches = metric(text, "hsi_batch_size_count")
    singles = metric(text, 'hsi_batch_size_bucket{le="1"}')
    images_run = metric(text, "hsi_images_total")
    assert images_run >= 16
    assert batches - singles >= 1  # at least one forward pass held more than one image
    assert batches < images_run


async def test_batch_endpoints_share_a_forward_pass(
    yolo_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    async with session.get(yolo_server.url + "/metrics") as resp:
        before = metric(await resp.text(), "hsi_batch_size_count")
    form = aiohttp.FormData()
    for width in (160, 240, 320, 400):
        form.add_field("files", resized(BUS, width), filename="f.jpg", content_type="image/jpeg")
    async with session.post(yolo_server.url + "/detect/batch", data=form) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert [r["image_width"] for r in body["results"]] == [160, 240, 320, 400]
    async with session.get(yolo_server.url + "/metrics") as resp:
        after = metric(await resp.text(), "hsi_batch_size_count")
    assert after - before < 4  # four images, fewer forward passes


async def test_class_filter_uses_the_model_names(
    yolo_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    # Random weights from the yaml carry class names "0".."79": COCO names are unknown there.
    async with session.post(
        yolo_server.url + "/v1/detect?classes=person", data=BUS, headers=JPEG
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["reason"] == "bad_option"
    async with session.post(
        yolo_server.url + "/v1/detect?classes=0,1&confidence=0", data=BUS, headers=JPEG
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert {d["label"] for d in body["detections"]} <= {"0", "1"}
    assert all(d["class_id"] in {0, 1} for d in body["detections"])
