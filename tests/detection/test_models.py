"""Model files: names, lookup, and downloads from a local server (zipped fhempy model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import io
from pathlib import Path
import stat
import zipfile

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from custom_components.home_security_intel.detection.local import LocalDetector
from custom_components.home_security_intel.detection.models import (
    KNOWN_MODELS,
    ModelDownloadError,
    async_download,
    async_download_model,
    default_model,
    find_model,
    known_model,
)

from .support import BUS, LOCAL_MODEL

TFLITE = "ssd_mobilenet_v1_coco_quant"


def _zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_zip() -> bytes:
    """The TensorFlow archive's layout, made of the fhempy model."""
    assert LOCAL_MODEL is not None
    return _zip(
        {
            "detect.tflite": LOCAL_MODEL.read_bytes(),
            "labelmap.txt": (LOCAL_MODEL.parent / "labelmap.txt").read_bytes(),
        }
    )


class Files:
    """Serves bytes by path on 127.0.0.1."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.chunked: set[str] = set()
        app = web.Application()
        app.router.add_get("/{name}", self._get)
        self.server = TestServer(app, host="127.0.0.1")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/{name}"

    async def _get(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound
        if name in self.chunked:
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(self.files[name])
            return response
        return web.Response(body=self.files[name])


@pytest.fixture
async def files(socket_enabled: None) -> AsyncIterator[Files]:
    served = Files()
    await served.server.start_server()
    try:
        yield served
    finally:
        await served.server.close()


def test_names() -> None:
    assert default_model("tflite") == TFLITE
    assert default_model("ultralytics") == "yolo11n"
    assert known_model("tflite", TFLITE) == KNOWN_MODELS[TFLITE].url
    assert KNOWN_MODELS[TFLITE].url.endswith("coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip")
    assert known_model("ultralytics", "yolo11n") == (
        "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt"
    )
    assert known_model("ultralytics", TFLITE) is None
    assert known_model("tflite", "mine.tflite") is None


def test_find_model(tmp_path: Path) -> None:
    assert find_model(tmp_path, "tflite", TFLITE) is None
    (tmp_path / "mine.tflite").write_bytes(b"x")
    assert find_model(str(tmp_path), "tflite", "mine.tflite") == (tmp_path / "mine.tflite", None)
    (tmp_path / "labelmap.txt").write_text("person\n")
    found = find_model(tmp_path, "tflite", str(tmp_path / "mine.tflite"))
    assert found is not None
    assert found.labels == tmp_path / "labelmap.txt"
    (tmp_path / "sub").mkdir()
    assert find_model(tmp_path / "sub", "tflite", "../mine.tflite") is None
    assert find_model(tmp_path, "ultralytics", "yolo11n.yaml") == (Path("yolo11n.yaml"), None)
    assert find_model(tmp_path, "ultralytics", "yolo11n") is None


async def test_download_the_tflite_archive_and_run_it(
    files: Files, model_zip: bytes, tmp_path: Path
) -> None:
    files.files["model.zip"] = model_zip
    seen: list[float] = []
    async with aiohttp.ClientSession() as session:
        found = await async_download_model(
            session, files.url("model.zip"), str(tmp_path), "tflite", TFLITE, seen.append
        )
    assert found == find_model(tmp_path, "tflite", TFLITE)
    assert found.model == tmp_path / TFLITE / "detect.tflite"
    assert seen[-1] == 1.0
    assert all(0 <= p <= 1 for p in seen)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["detect.tflite", "labelmap.txt", TFLITE]
    detector = LocalDetector("tflite", found.model, found.labels)
    try:
        result = await detector.async_detect(BUS)
    finally:
        await detector.async_close()
    assert "bus" in {d.label for d in result.detections}


async def test_a_single_file_download_replaces_the_old_one(files: Files, tmp_path: Path) -> None:
    files.files["yolo11n.pt"] = b"new weights"
    files.chunked.add("yolo11n.pt")  # no Content-Length: progress only at the end
    target = tmp_path / "yolo11n"
    target.mkdir()
    (tmp_path / "ssd_mobilenet_v1_coco_quant").mkdir()  # a stale folder is replaced by a download
    (target / "yolo11n.pt").write_bytes(b"old")
    seen: list[float] = []
    async with aiohttp.ClientSession() as session:
        found = await async_download_model(
            session, files.url("yolo11n.pt"), tmp_path, "ultralytics", "yolo11n", seen.append
        )
    assert found.model.read_bytes() == b"new weights"
    assert seen == [1.0]
    assert [p.name for p in target.iterdir()] == ["yolo11n.pt"]  # no partial file left


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (_zip({"../evil.txt": b"x"}), "unsafe path"),
        (_zip({"/etc/evil": b"x"}), "unsafe path"),
        (_zip({"detect.tflite": b"x"}, symlink="link"), "symbolic link"),
        (_zip({"big.bin": b"\0" * 5000}), "size limit"),
        (b"PK\x03\x04 not really a zip", "broken"),
        (_zip({"other.txt": b"x"}), "does not contain detect.tflite"),
    ],
)
async def test_unsafe_or_wrong_archives_are_refused(
    files: Files, tmp_path: Path, archive: bytes, message: str
) -> None:
    files.files["model.zip"] = archive
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelDownloadError, match=message):
            await async_download_model(
                session,
                files.url("model.zip"),
                tmp_path,
                "tflite",
                TFLITE,
                lambda _: None,
                max_bytes=4096,
            )
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / TFLITE).exists()
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


async def test_download_failures(files: Files, tmp_path: Path) -> None:
    files.files["big.pt"] = b"x" * 5000
    files.files["chunked.pt"] = b"x" * 5000
    files.chunked.add("chunked.pt")
    async with aiohttp.ClientSession() as session:
        for url, message in (
            (files.url("absent.pt"), "HTTP 404"),
            (files.url("big.pt"), "larger than"),
            (files.url("chunked.pt"), "larger than"),
            ("http://127.0.0.1:9/x.pt", "download failed"),
            (files.url(""), "names no file"),
        ):
            with pytest.raises(ModelDownloadError, match=message):
                await async_download(session, url, tmp_path / "m", lambda _: None, max_bytes=4096)
        with pytest.raises(ModelDownloadError, match="not a model"):
            await async_download_model(
                session, files.url("big.pt"), tmp_path, "tflite", "mine", lambda _: None
            )
    assert not list((tmp_path / "m").iterdir())
