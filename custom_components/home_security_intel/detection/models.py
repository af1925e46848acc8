"""Model files of the local detector: which models we know, where they live, how they are fetched.

Models live in a folder the caller names (Home Assistant: `<config>/home_security_intel/models`),
one sub-folder per model. A download is streamed with a size cap into a temporary file in the same
folder and renamed into place only when complete, so a folder holds either the whole model or none
of it; a zip archive is extracted member by member with no path leaving the target folder. No
checksum is published for the TFLite archive, so a download is proven by loading it (the caller's
`LocalDetector.async_check`), and removed when that fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import logging
import os
from pathlib import Path, PurePosixPath
import shutil
import tempfile
from typing import Final, Literal, NamedTuple
import zipfile

import aiofiles
import aiofiles.os
import aiohttp
from yarl import URL

from .model import DetectorError

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_BYTES: Final = 300 * 1024 * 1024
"""Above any model we offer (yolo11n.pt 5.4 MB, the TFLite archive 4 MB, yolo11x.pt 110 MB)."""
_CHUNK = 256 * 1024
_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=30 * 60, sock_connect=30, sock_read=60)


class ModelDownloadError(DetectorError):
    """A model could not be downloaded or unpacked; the message says why (no URL credentials)."""

    reason = "download_failed"


class ModelFiles(NamedTuple):
    """What a local engine loads."""

    model: Path
    labels: Path | None


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model the flow offers by name (and downloads on first use)."""

    key: str
    """The model name in the options, and its folder under the models folder."""
    engine: Literal["tflite", "ultralytics"]
    url: str
    model_file: str
    """The file the engine loads, inside the model's folder."""
    labels_file: str | None = None
    sha256: str | None = None
    """Of the downloaded file, where one is published; otherwise loading proves it."""

    def folder(self, models_dir: Path) -> Path:
        """Where this model's files live."""
        return models_dir / self.key

    def model_path(self, models_dir: Path) -> Path:
        """The file to hand to the engine."""
        return self.folder(models_dir) / self.model_file

    def labels_path(self, models_dir: Path) -> Path | None:
        """The label map, for models that have one."""
        return self.folder(models_dir) / self.labels_file if self.labels_file else None

    def installed(self, models_dir: Path) -> bool:
        """Whether the model's files are in place (blocking: a stat or two)."""
        labels = self.labels_path(models_dir)
        return self.model_path(models_dir).is_file() and (labels is None or labels.is_file())


KNOWN_MODELS: Final[dict[str, KnownModel]] = {
    model.key: model
    for model in (
        # TensorFlow's COCO SSD MobileNet v1 (quantised, 300x300): detect.tflite + labelmap.txt.
        KnownModel(
            key="ssd_mobilenet_v1_coco_quant",
            engine="tflite",
            url="https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
            "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip",
            model_file="detect.tflite",
            labels_file="labelmap.txt",
        ),
        # Ultralytics' YOLO11, COCO (the class names are in the checkpoint), the add-on's names.
        *(
            KnownModel(
                key=f"yolo11{size}",
                engine="ultralytics",
                url=f"https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11{size}.pt",
                model_file=f"yolo11{size}.pt",
            )
            for size in "nsm"
        ),
    )
}


DEFAULT_MODELS: Final[dict[str, str]] = {
    "tflite": "ssd_mobilenet_v1_coco_quant",
    "ultralytics": "yolo11n",
}


def default_model(engine: str) -> str:
    """The model the flow proposes for an engine."""
    return DEFAULT_MODELS[engine]


def _known(engine: str, model: str) -> KnownModel | None:
    known = KNOWN_MODELS.get(model)
    return known if known is not None and known.engine == engine else None


def known_model(engine: str, model: str) -> str | None:
    """The download URL of a model we know by name, None for any other name or path."""
    known = _known(engine, model)
    return known.url if known else None


def find_model(models_dir: str | Path, engine: str, model: str) -> ModelFiles | None:
    """The files of `model` if present (blocking: run in an executor), else None.

    `model` is a known name (its folder under `models_dir`), a file name in `models_dir`, an
    absolute path, or an ultralytics architecture (`yolo11n.yaml`, built with random weights). A
    TFLite model's label map is `labelmap.txt` beside it.
    """
    base = Path(models_dir)
    known = _known(engine, model)
    if known is not None:
        path, labels = known.model_path(base), known.labels_path(base)
    elif engine == "ultralytics" and model.endswith((".yaml", ".yml")) and "/" not in model:
        return ModelFiles(Path(model), None)  # an architecture ultralytics ships: random weights
    else:
        path = Path(model) if Path(model).is_absolute() else base / model
        if not Path(model).is_absolute() and not path.resolve().is_relative_to(base.resolve()):
            return None  # "../x": a relative name stays inside the models folder
        beside = path.with_name("labelmap.txt")
        labels = beside if engine == "tflite" and beside.is_file() else None
    if not path.is_file() or (labels is not None and not labels.is_file()):
        return None
    return ModelFiles(path, labels)


def _file_name(url: str) -> str:
    name = PurePosixPath(URL(url).path).name
    if not name or name in {".", ".."}:
        raise ModelDownloadError("the download URL names no file")
    return name


def _safe_members(archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The archive's files, refusing anything that would land outside the target or is too big."""
    members: list[zipfile.ZipInfo] = []
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
            raise ModelDownloadError(f"the archive holds an unsafe path: {info.filename[:80]!r}")
        # Unix mode in the high 16 bits: a symlink entry could point anywhere.
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ModelDownloadError("the archive holds a symbolic link")
        total += info.file_size
        if total > max_bytes:
            raise ModelDownloadError("the archive unpacks to more than the size limit")
        members.append(info)
    return members


def _extract(archive_path: Path, target: Path, max_bytes: int) -> None:
    """Unpack into a fresh folder next to `target`, then put it in place (blocking)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive_path) as archive:
                for info in _safe_members(archive, max_bytes):
                    destination = staging.joinpath(*PurePosixPath(info.filename).parts)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    # ZipExtFile stops at the declared size and checks the CRC: what the
                    # header claims (summed against the cap above) is what gets written.
                    with archive.open(info) as source, destination.open("wb") as sink:
                        shutil.copyfileobj(source, sink, _CHUNK)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as err:
            raise ModelDownloadError(f"the archive is broken ({type(err).__name__})") from err
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing what was there (a stale or half-removed model)."""
    if target.exists():
        shutil.rmtree(target)
    source.rename(target)


def _partial_file(where: Path, name: str) -> Path:
    handle, raw = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=where)
    os.close(handle)
    return Path(raw)


def remove_model(folder: Path) -> None:
    """Delete a model's folder (e.g. after it failed to load); blocking."""
    shutil.rmtree(folder, ignore_errors=True)


async def _stream(
    session: aiohttp.ClientSession,
    url: str,
    partial: Path,
    progress: Callable[[float], None],
    max_bytes: int,
) -> None:
    try:
        async with session.get(url, timeout=_DOWNLOAD_TIMEOUT) as response:
            if response.status != 200:
                raise ModelDownloadError(f"the download answered HTTP {response.status}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise ModelDownloadError(f"the model is larger than {max_bytes} bytes")
            received = 0
            async with aiofiles.open(partial, "wb") as sink:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise ModelDownloadError(f"the model is larger than {max_bytes} bytes")
                    await sink.write(chunk)
                    if declared:
                        progress(min(received / declared, 1.0))
            if declared is not None and received != declared:
                raise ModelDownloadError("the download ended early")
    except TimeoutError as err:
        raise ModelDownloadError("the download timed out") from err
    except aiohttp.ClientError as err:
        raise ModelDownloadError(f"the download failed ({type(err).__name__})") from err


async def async_download(
    session: aiohttp.ClientSession,
    url: str,
    dest_dir: Path,
    progress: Callable[[float], None],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download `url` into `dest_dir`: a .zip is unpacked into it (replacing its contents), any
    other file is put there under its URL's name. Returns that file, or the folder for an archive.

    `progress` gets the fraction done (0..1) while the size is known, and 1.0 at the end.
    """
    name = _file_name(url)
    await aiofiles.os.makedirs(dest_dir.parent, exist_ok=True)
    archive = name.lower().endswith(".zip")
    # The partial file lives beside its final place, so the rename is atomic (one file system).
    where = dest_dir.parent if archive else dest_dir
    await aiofiles.os.makedirs(where, exist_ok=True)
    loop = asyncio.get_running_loop()
    partial = await loop.run_in_executor(None, _partial_file, where, name)
    try:
        await _stream(session, url, partial, progress, max_bytes)
        if archive:
            await loop.run_in_executor(None, _extract, partial, dest_dir, max_bytes)
            result = dest_dir
        else:
            result = dest_dir / name
            await aiofiles.os.replace(partial, result)
    finally:
        await loop.run_in_executor(None, lambda: partial.unlink(missing_ok=True))
    progress(1.0)
    _LOGGER.info("downloaded model %s into %s", name, dest_dir)
    return result


async def async_download_model(
    session: aiohttp.ClientSession,
    url: str,
    models_dir: str | Path,
    engine: str,
    model: str,
    progress: Callable[[float], None],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ModelFiles:
    """Download a known model into its folder under `models_dir`; its files once in place.

    `url` is normally `known_model(engine, model)` (tests serve it from 127.0.0.1).
    """
    known = _known(engine, model)
    if known is None:
        raise ModelDownloadError(f"{model} is not a model that can be downloaded")
    base = Path(models_dir)
    await async_download(session, url, known.folder(base), progress, max_bytes)
    loop = asyncio.get_running_loop()
    files = await loop.run_in_executor(None, find_model, base, engine, model)
    if files is None:
        await loop.run_in_executor(None, remove_model, known.folder(base))
        raise ModelDownloadError(f"the download does not contain {known.model_file}")
    return files
