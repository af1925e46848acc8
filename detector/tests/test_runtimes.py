"""`--runtime openvino|onnx`: YOLO11n (random weights from its yaml) exported once by ultralytics,
cached, reused, re-exported when the imgsz changes or the cache is broken; served like torch."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from hsi_detector.engines import EngineError, exports
from hsi_detector.engines.exports import MANIFEST, ExportKey, cached_export, valid_entry
from hsi_detector.engines.yolo import model_digest, pick_runtime, runtime_candidates
from tests.support import BUS, ZIDANE, ServerProcess, resized

JPEG = {"Content-Type": "image/jpeg"}
EXPORTING = "exporting the model to"
CACHED = "using the cached"


def _args(runtime: str, export_dir: Path, imgsz: int = 160) -> list[str]:
    return [
        "--model", "yolo11n.yaml", "--imgsz", str(imgsz), "--runtime", runtime,
        "--export-dir", str(export_dir), "--max-batch-size", "4", "--max-batch-wait-ms", "20",
        "--confidence", "0.0", "--rate-limit", "0", "--cpu-threads", "1",
    ]  # fmt: skip


def _entries(export_dir: Path) -> list[Path]:
    return sorted(p for p in export_dir.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


async def _detect(session: aiohttp.ClientSession, server: ServerProcess) -> dict[str, object]:
    async with session.post(server.url + "/v1/detect", data=BUS, headers=JPEG) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def _health(session: aiohttp.ClientSession, server: ServerProcess) -> dict[str, object]:
    async with session.get(server.url + "/health") as resp:
        return dict(await resp.json())


def _serve_once(args: list[str], workdir: Path) -> ServerProcess:
    return ServerProcess(args, workdir=workdir).start()


async def test_openvino_exports_once_then_reuses_and_matches_torch(
    export_dir: Path, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    first = _serve_once(_args("openvino", export_dir), tmp_path)
    try:
        assert EXPORTING in first.output()
        health = await _health(session, first)
        assert (health["runtime"], health["device"]) == ("openvino", "cpu")
        exported = await _detect(session, first)
    finally:
        assert first.stop() == 0, first.output()
    [entry] = _entries(export_dir)
    assert "-openvino-" in entry.name
    assert "-imgsz160-b4-" in entry.name
    stamp = (entry / MANIFEST).stat().st_mtime_ns

    second = _serve_once(_args("openvino", export_dir), tmp_path)
    try:
        assert CACHED in second.output()
        assert EXPORTING not in second.output()
        await _detect(session, second)
    finally:
        assert second.stop() == 0, second.output()
    assert _entries(export_dir) == [entry]
    assert (entry / MANIFEST).stat().st_mtime_ns == stamp  # not written again

    torch = _serve_once(_args("torch", export_dir), tmp_path)
    try:
        reference = await _detect(session, torch)
        assert (await _health(session, torch))["runtime"] == "torch"
    finally:
        assert torch.stop() == 0, torch.output()
    assert exported.keys() == reference.keys()
    assert exported["image"] == reference["image"]
    found, expected = exported["detections"], reference["detections"]
    assert isinstance(found, list)
    assert isinstance(expected, list)
    assert found, "random weights at confidence 0 find boxes"
    assert {tuple(sorted(d)) for d in found} == {tuple(sorted(d)) for d in expected}
    assert all(len(d["box"]) == len(expected[0]["box"]) for d in found)


async def test_batched_request_and_auto_runtime_reuse_the_export(
    export_dir: Path, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    # auto on a CPU machine picks OpenVINO: the export of the test above is reused.
    server = _serve_once(_args("auto", export_dir), tmp_path)
    try:
        assert CACHED in server.output()
        assert (await _health(session, server))["runtime"] == "openvino"
        form = aiohttp.FormData()
        for width in (160, 240, 320):
            form.add_field("files", resized(ZIDANE, width), filename="f.jpg",
                           content_type="image/jpeg")  # fmt: skip
        async with session.post(server.url + "/detect/batch", data=form) as resp:
            assert resp.status == 200
            body = await resp.json()
    finally:
        assert server.stop() == 0, server.output()
    assert [r["image_width"] for r in body["results"]] == [160, 240, 320]
    assert all(isinstance(r["detections"], list) for r in body["results"])


def test_changed_imgsz_exports_again(export_dir: Path, tmp_path: Path) -> None:
    before = set(_entries(export_dir))
    server = _serve_once(_args("openvino", export_dir, imgsz=192), tmp_path)
    assert server.stop() == 0, server.output()
    assert EXPORTING in server.output()
    [new] = set(_entries(export_dir)) - before
    assert "-imgsz192-" in new.name


def test_corrupt_cached_export_is_exported_again(export_dir: Path, tmp_path: Path) -> None:
    entry = next(p for p in _entries(export_dir) if "-openvino-" in p.name and "imgsz160" in p.name)
    weights = next(entry.rglob("*.bin"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: no longer what the manifest says
    server = _serve_once(_args("openvino", export_dir), tmp_path)
    assert server.stop() == 0, server.output()
    assert "incomplete or corrupt" in server.output()
    assert EXPORTING in server.output()
    assert valid_entry(entry) is not None


def test_export_that_does_not_load_is_exported_again(export_dir: Path, tmp_path: Path) -> None:
    # The manifest is rewritten to match a broken graph: only loading it can tell.
    entry = next(p for p in _entries(export_dir) if "-openvino-" in p.name and "imgsz160" in p.name)
    next(entry.rglob("*.xml")).write_text("<net>broken</net>", encoding="utf-8")
    manifest = {"key": entry.name, "files": exports._files(entry)}
    (entry / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    server = _serve_once(_args("openvino", export_dir), tmp_path)
    assert server.stop() == 0, server.output()
    assert "does not run" in server.output()
    assert "<net>broken" not in next(entry.rglob("*.xml")).read_text(encoding="utf-8")


async def test_onnx_runtime_serves(
    export_dir: Path, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = _serve_once(_args("onnx", export_dir), tmp_path)
    try:
        assert EXPORTING in server.output()
        assert (await _health(session, server))["runtime"] == "onnx"
        body = await _detect(session, server)
    finally:
        assert server.stop() == 0, server.output()
    assert isinstance(body["detections"], list)
    assert any(p.name.endswith(".onnx") for p in export_dir.rglob("*"))


def test_exported_runtime_on_cuda_is_refused(export_dir: Path, tmp_path: Path) -> None:
    code, output = ServerProcess(
        [*_args("onnx", export_dir), "--device", "cuda"], workdir=tmp_path
    ).run_to_exit()
    assert code == 1
    assert "runs on CPU" in output


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    code, output = ServerProcess(["--runtime", "tensorrt"], workdir=tmp_path).run_to_exit()
    assert code == 2
    assert "--runtime must be one of" in output


def test_export_without_a_model_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    key = ExportKey("onnx", "m", "ab" * 32, 64, 1, "1")
    with pytest.raises(RuntimeError, match="produced no model"):
        cached_export(tmp_path, key, lambda staging: (staging / "notes.txt").write_text("x"))
    assert list(tmp_path.iterdir()) == []


def test_a_concurrent_export_that_landed_first_is_used(tmp_path: Path) -> None:
    key = ExportKey("onnx", "m", "ab" * 32, 64, 1, "1")

    def export(staging: Path) -> None:
        (staging / "model.onnx").write_bytes(b"mine")
        # Another server finishes the same export while this one runs.
        cached_export(tmp_path, key, lambda other: (other / "model.onnx").write_bytes(b"theirs"))

    path, exported = cached_export(tmp_path, key, export)
    assert exported
    assert path.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == [key.folder]


def test_model_digest_hashes_the_file_or_the_architecture(tmp_path: Path) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights v1")
    # Stand-in for a loaded YOLO object: only the two attributes model_digest reads.
    built = SimpleNamespace(ckpt_path=None, model=SimpleNamespace(yaml={"nc": 80}))
    first = model_digest(built, str(weights))
    weights.write_bytes(b"weights v2")
    assert model_digest(built, str(weights)) != first  # a changed model exports again
    from_ckpt = SimpleNamespace(ckpt_path=str(weights), model=None)
    assert model_digest(from_ckpt, "best.pt") == model_digest(built, str(weights))
    other = SimpleNamespace(ckpt_path=None, model=SimpleNamespace(yaml={"nc": 2}))
    assert model_digest(built, "yolo11n.yaml") != model_digest(other, "yolo11n.yaml")


def test_a_manifest_for_another_folder_is_not_trusted(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "model.onnx").write_bytes(b"x")
    manifest = {"key": "elsewhere", "files": exports._files(entry)}
    (entry / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert valid_entry(entry) is None
    (entry / MANIFEST).write_text(json.dumps({**manifest, "key": "entry"}), encoding="utf-8")
    assert valid_entry(entry) == entry / "model.onnx"


def _without(module: str, tmp_path: Path) -> dict[str, str]:
    """An environment in which `import module` fails in the server process, as on a machine
    without that runtime installed: a package of that name that raises ImportError shadows it."""
    shadow = tmp_path / "shadow" / module
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        f"raise ImportError('{module} is not installed here (test)')\n", encoding="utf-8"
    )
    return {"PYTHONPATH": str(shadow.parent)}


async def test_auto_falls_back_to_onnx_when_openvino_is_missing(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    exports_dir = tmp_path / "exports"
    server = ServerProcess(
        _args("auto", exports_dir), env=_without("openvino", tmp_path), workdir=tmp_path
    ).start()
    try:
        assert (await _health(session, server))["runtime"] == "onnx"
        body = await _detect(session, server)
    finally:
        assert server.stop() == 0, server.output()
    output = server.output()
    assert "cannot run the model on openvino" in output
    assert "openvino is not installed here" in output
    assert "trying onnx instead" in output
    assert isinstance(body["detections"], list)
    assert [p.name for p in _entries(exports_dir)] == [
        next(p.name for p in _entries(exports_dir) if "-onnx-" in p.name)
    ]  # the failed openvino attempt left nothing behind


async def test_auto_falls_back_to_torch_when_nothing_can_be_exported(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    server = _serve_once(_args("auto", blocker / "exports"), tmp_path)  # cannot be created
    try:
        assert (await _health(session, server))["runtime"] == "torch"
        body = await _detect(session, server)
    finally:
        assert server.stop() == 0, server.output()
    output = server.output()
    assert "cannot run the model on openvino: export folder" in output
    assert "trying onnx instead" in output
    assert "cannot run the model on onnx: export folder" in output
    assert "trying torch instead" in output
    assert isinstance(body["detections"], list)


def test_an_explicit_runtime_that_is_missing_is_an_error(tmp_path: Path) -> None:
    code, output = ServerProcess(
        _args("openvino", tmp_path / "exports"), env=_without("openvino", tmp_path),
        workdir=tmp_path,
    ).run_to_exit()  # fmt: skip
    assert code == 1
    assert "cannot run the model on openvino" in output
    assert "trying" not in output


def test_pick_runtime() -> None:
    assert runtime_candidates("auto", "cpu", cuda_available=True) == (
        ("openvino", "onnx", "torch"),
        "cpu",
    )
    assert runtime_candidates("auto", "auto", cuda_available=True) == (("torch",), "cuda:0")
    assert runtime_candidates("onnx", "cpu", cuda_available=False) == (("onnx",), "cpu")
    assert pick_runtime("auto", "auto", cuda_available=True) == ("torch", "cuda:0")
    assert pick_runtime("auto", "auto", cuda_available=False) == ("openvino", "cpu")
    assert pick_runtime("onnx", "auto", cuda_available=True) == ("onnx", "cpu")
    assert pick_runtime("torch", "cpu", cuda_available=True) == ("torch", "cpu")
    with pytest.raises(EngineError, match="runs on CPU"):
        pick_runtime("openvino", "cuda:0", cuda_available=True)


async def test_int8_is_calibrated_on_the_given_frames_and_serves(
    export_dir: Path, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for width in (160, 320):
        (frames / f"{width}.jpg").write_bytes(resized(BUS, width))
    server = _serve_once([*_args("auto", export_dir), "--int8-calibration", str(frames)], tmp_path)
    try:
        assert (await _health(session, server))["runtime"] == "openvino"
        body = await _detect(session, server)
    finally:
        assert server.stop() == 0, server.output()
    assert "int8: calibrating on 2 images" in server.output()
    assert "runs on openvino int8" in server.output()
    assert isinstance(body["detections"], list)
    assert any(p.name.endswith("-int8-" + p.name.rsplit("-", 1)[-1]) for p in _entries(export_dir))


def test_int8_without_images_falls_back_to_the_next_runtime(
    export_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    server = _serve_once([*_args("auto", export_dir), "--int8-calibration", str(empty)], tmp_path)
    assert server.stop() == 0, server.output()
    assert "no JPEG/PNG/WebP image in" in server.output()
    assert "runs on onnx" in server.output()
