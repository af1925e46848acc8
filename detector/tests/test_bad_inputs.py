"""Bad inputs against the real server: each gets a clear 4xx in the endpoint's shape, and the server
keeps serving afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from PIL import Image
import pytest

from tests.support import BUS, ServerProcess, encode, jpeg_claiming, png_claiming

JPEG = {"Content-Type": "image/jpeg"}
GIF = encode(Image.new("RGB", (4, 4)), "GIF")

CASES = [
    # (id, path, body, headers, status, reason)
    ("zero_bytes", "/v1/detect", b"", JPEG, 400, "empty"),
    ("truncated_jpeg", "/v1/detect", BUS[: len(BUS) // 3], JPEG, 422, "corrupt"),
    ("text_as_jpeg", "/v1/detect", b"hello, this is not an image", JPEG, 415, "unsupported_format"),
    ("gif", "/v1/detect", GIF, {"Content-Type": "image/gif"}, 415, "unsupported_format"),
    ("wrong_content_type", "/v1/detect", BUS, {"Content-Type": "text/plain"}, 415,
     "unsupported_content_type"),
    ("png_20000x20000", "/v1/detect", png_claiming(20000, 20000), {"Content-Type": "image/png"},
     413, "too_many_pixels"),
    ("jpeg_20000x20000", "/v1/detect", jpeg_claiming(20000, 20000), JPEG, 413, "too_many_pixels"),
    ("bad_confidence", "/v1/detect?confidence=2", BUS, JPEG, 400, "bad_option"),
    ("not_a_number", "/v1/detect?confidence=abc", BUS, JPEG, 400, "bad_option"),
    ("unknown_class", "/v1/detect?classes=dragon", BUS, JPEG, 400, "bad_option"),
]  # fmt: skip


async def _still_serving(server: ServerProcess, client: aiohttp.ClientSession) -> None:
    async with client.post(server.url + "/v1/detect", data=BUS, headers=JPEG) as resp:
        assert resp.status == 200
        assert (await resp.json())["image"]["width"] == 810


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_native_input(
    tflite_server: ServerProcess,
    client: aiohttp.ClientSession,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    async with client.post(tflite_server.url + path, data=body, headers=headers) as resp:
        assert resp.status == status
        error = (await resp.json())["error"]
    assert error["code"] == status
    assert error["reason"] == reason
    assert "Traceback" not in error["message"]
    assert "/work" not in error["message"]  # no file system paths
    await _still_serving(tflite_server, client)


async def test_fifty_megabyte_body_is_refused(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    big = b"\xff\xd8\xff" + bytes(50 * 1024 * 1024)
    async with client.post(tflite_server.url + "/v1/detect", data=big, headers=JPEG) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["reason"] == "body_too_large"
    await _still_serving(tflite_server, client)


async def test_oversized_chunked_multipart_is_refused_while_reading(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield bytes(1024 * 1024)

    form = aiohttp.FormData()
    form.add_field("image", chunks(), filename="big.jpg", content_type="image/jpeg")
    async with client.post(tflite_server.url + "/v1/detect", data=form) as resp:
        assert resp.status == 413
    await _still_serving(tflite_server, client)


async def test_missing_and_wrong_keys(
    tflite_server: ServerProcess, anonymous: aiohttp.ClientSession, client: aiohttp.ClientSession
) -> None:
    async with anonymous.post(tflite_server.url + "/v1/detect", data=BUS, headers=JPEG) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["reason"] == "unauthorized"
    wrong = JPEG | {"X-API-Key": "Zy" * 20}
    async with anonymous.post(tflite_server.url + "/detect", data=BUS, headers=wrong) as resp:
        assert resp.status == 401
        assert await resp.json() == {"detail": "a valid API key is required"}
    await _still_serving(tflite_server, client)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"image_base64": "%%% not base64 %%%"}', 400),
        (b'{"image_base64": 12}', 400),
        (b'{"image_base64": "aGVsbG8="}', 415),
    ],
    ids=["garbage_json", "json_array", "bad_base64", "not_a_string", "base64_of_text"],
)
async def test_bad_rtdetr_json(
    tflite_server: ServerProcess, client: aiohttp.ClientSession, body: bytes, status: int
) -> None:
    headers = {"Content-Type": "application/json"}
    async with client.post(tflite_server.url + "/detect", data=body, headers=headers) as resp:
        assert resp.status == status
        assert "detail" in await resp.json()
    await _still_serving(tflite_server, client)


async def test_form_without_image_and_bad_deepstack_image(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("confidence", "0.5")
    form.add_field("other", b"x", filename="x.bin")
    async with client.post(tflite_server.url + "/v1/detect", data=form) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["reason"] == "no_image"
    form = aiohttp.FormData()
    form.add_field("image", b"GIF89a....", filename="x.gif", content_type="image/gif")
    async with client.post(tflite_server.url + "/v1/vision/detection", data=form) as resp:
        assert resp.status == 415
        body = await resp.json()
    assert body["success"] is False
    assert body["code"] == 415
    form = aiohttp.FormData()
    form.add_field("image", BUS, filename="a.jpg", content_type="image/jpeg")
    form.add_field("image", BUS[:500], filename="b.jpg", content_type="image/jpeg")
    async with client.post(tflite_server.url + "/v1/detect/batch", data=form) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["message"].startswith("image 2:")


async def test_unknown_path_and_wrong_method_are_json(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    async with client.get(tflite_server.url + "/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == 404
    async with client.get(tflite_server.url + "/v1/detect") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
    async with client.post(
        tflite_server.url + "/v1/detect",
        data=b"\x00",
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    ) as resp:
        assert resp.status == 400


async def test_rejections_are_counted(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    async with client.get(tflite_server.url + "/metrics") as resp:
        text = await resp.text()
    assert 'hsi_rejected_inputs_total{reason="too_many_pixels"}' in text
    assert 'hsi_rejected_inputs_total{reason="corrupt"}' in text
