"""Every endpoint of a real server process running the packaged TFLite SSD MobileNet on photos."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from tests.support import API_KEY, BUS, ZIDANE, ServerProcess, metric


def _labels(detections: list[dict[str, object]], key: str = "label") -> set[object]:
    return {d[key] for d in detections}


async def test_health_is_minimal_without_key_and_detailed_with_it(
    tflite_server: ServerProcess, client: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    async with anonymous.get(tflite_server.url + "/health") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}
    async with client.get(tflite_server.url + "/health") as resp:
        body = await resp.json()
    assert body["engine"] == "tflite"
    assert body["model"] == "detect.tflite"
    assert body["device"] == "cpu"
    assert body["queue_depth"] == 0
    assert body["max_batch_size"] == 1  # auto on CPU


async def test_native_raw_body_finds_people_and_the_bus(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    async with client.post(
        tflite_server.url + "/v1/detect", data=BUS, headers={"Content-Type": "image/jpeg"}
    ) as resp:
        assert resp.status == 200
        headers = resp.headers
        body = await resp.json()
    assert {"person", "bus"} <= _labels(body["detections"])
    assert body["image"] == {"width": 810, "height": 1080}
    assert set(body["timings_ms"]) == {"queue", "decode", "inference", "total"}
    assert body["model"] == "detect.tflite"
    for det in body["detections"]:
        box, norm = det["box"], det["box_normalized"]
        assert 0 <= box["x_min"] < box["x_max"] <= 810
        assert 0 <= box["y_min"] < box["y_max"] <= 1080
        assert norm["x_max"] == pytest.approx(box["x_max"] / 810, abs=1e-3)
        assert det["confidence"] >= 0.25
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["Server"] == "hsi-detector"


async def test_native_multipart_with_class_filter_and_confidence(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("image", ZIDANE, filename="z.jpg", content_type="image/jpeg")
    form.add_field("classes", "person")
    form.add_field("confidence", "0.5")
    async with client.post(tflite_server.url + "/v1/detect", data=form) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["image"] == {"width": 1280, "height": 720}
    assert _labels(body["detections"]) == {"person"}
    assert all(d["confidence"] >= 0.5 for d in body["detections"])
    async with client.post(
        tflite_server.url + "/v1/detect?classes=bus",
        data=BUS,
        headers={"Content-Type": "image/jpeg"},
    ) as resp:
        only_bus = await resp.json()
    assert _labels(only_bus["detections"]) == {"bus"}


async def test_native_batch_answers_in_order(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    for name, data in (("bus", BUS), ("zidane", ZIDANE), ("bus2", BUS)):
        form.add_field("image", data, filename=f"{name}.jpg", content_type="image/jpeg")
    async with client.post(tflite_server.url + "/v1/detect/batch", data=form) as resp:
        assert resp.status == 200
        results = (await resp.json())["results"]
    assert [r["image"]["width"] for r in results] == [810, 1280, 810]
    assert "bus" in _labels(results[0]["detections"])
    assert results[0]["detections"] == results[2]["detections"]


async def test_deepstack_with_form_key(
    tflite_server: ServerProcess, anonymous: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("image", BUS, filename="bus.jpg", content_type="image/jpeg")
    form.add_field("min_confidence", "0.4")
    form.add_field("api_key", API_KEY)
    async with anonymous.post(tflite_server.url + "/v1/vision/detection", data=form) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["success"] is True
    assert body["code"] == 200
    assert body["count"] == len(body["predictions"]) > 0
    assert {"person", "bus"} <= _labels(body["predictions"])
    assert all(isinstance(p["x_min"], int) for p in body["predictions"])
    assert all(p["confidence"] >= 0.4 for p in body["predictions"])


async def test_deepstack_wrong_form_key_is_refused_in_deepstack_shape(
    tflite_server: ServerProcess, anonymous: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("image", BUS, filename="bus.jpg", content_type="image/jpeg")
    form.add_field("api_key", "x" * 40)
    async with anonymous.post(tflite_server.url + "/v1/vision/detection", data=form) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body == {"success": False, "error": "a valid API key is required", "code": 401}


async def test_rtdetr_multipart_json_and_batch(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", BUS, filename="bus.jpg", content_type="image/jpeg")
    async with client.post(tflite_server.url + "/detect", data=form) as resp:
        assert resp.status == 200
        single = await resp.json()
    assert single["image_width"] == 810
    assert single["image_height"] == 1080
    assert "bus" in _labels(single["detections"], "class")
    bbox = single["detections"][0]["bbox"]
    assert set(bbox) == {"x", "y", "width", "height"}
    assert bbox["width"] > 0
    assert bbox["height"] > 0

    payload = {"image_base64": "data:image/jpeg;base64," + base64.b64encode(ZIDANE).decode()}
    async with client.post(tflite_server.url + "/detect", json=payload) as resp:
        assert resp.status == 200
        from_json = await resp.json()
    assert from_json["image_width"] == 1280
    assert "person" in _labels(from_json["detections"], "class")

    form = aiohttp.FormData()
    for data in (ZIDANE, BUS):
        form.add_field("files", data, filename="f.jpg", content_type="image/jpeg")
    async with client.post(tflite_server.url + "/detect/batch", data=form) as resp:
        assert resp.status == 200
        batch = await resp.json()
    assert [r["image_width"] for r in batch["results"]] == [1280, 810]
    assert batch["total_inference_time_ms"] > 0


async def test_metrics_need_the_key_and_count_requests(
    tflite_server: ServerProcess, client: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    async with anonymous.get(tflite_server.url + "/metrics") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    async with client.get(tflite_server.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert metric(text, 'hsi_requests_total{endpoint="/v1/detect",status="200"}') >= 1
    assert metric(text, "hsi_auth_failures_total") >= 1
    assert "hsi_batch_size_bucket" in text
    assert "hsi_queue_depth 0" in text


async def test_bearer_header_is_accepted(
    tflite_server: ServerProcess, anonymous: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "image/jpeg"}
    async with anonymous.post(tflite_server.url + "/v1/detect", data=BUS, headers=headers) as resp:
        assert resp.status == 200


async def test_keys_never_reach_the_log(tflite_server: ServerProcess) -> None:
    assert API_KEY not in tflite_server.output()
