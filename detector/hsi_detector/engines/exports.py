"""Export cache of the ultralytics engine: a model exported once per runtime, reused later.

An entry is a folder named by what changes the export (model file hash, imgsz, batch, ultralytics
version), written in a staging folder and renamed into place, with a manifest of its files' SHA-256
written last: a folder without a manifest (interrupted export) or whose files no longer match it
(corrupt, truncated) is removed and exported again.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
import logging
from pathlib import Path
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger("hsi_detector")
MANIFEST = "hsi_export.json"
EXPORTED_RUNTIMES = ("openvino", "onnx")


@dataclass(frozen=True, slots=True)
class ExportKey:
    """Everything that makes one export differ from another."""

    runtime: str
    model_stem: str
    model_digest: str
    imgsz: int
    batch: int
    ultralytics_version: str
    precision: str = "fp32"
    """fp32, or int8-<digest of the calibration images> (OpenVINO int8, `engines.int8`)."""

    @property
    def folder(self) -> str:
        """The entry's folder name: readable, and different whenever the export would differ."""
        quantized = "" if self.precision == "fp32" else f"-{self.precision}"
        return (
            f"{self.model_stem}-{self.runtime}-{self.model_digest[:16]}"
            f"-imgsz{self.imgsz}-b{self.batch}-ul{self.ultralytics_version}{quantized}"
        )


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks (models reach hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _artifact(folder: Path) -> Path | None:
    """What `YOLO(path)` loads: the OpenVINO model folder or the .onnx file."""
    found = sorted(folder.glob("*_openvino_model")) or sorted(folder.glob("*.onnx"))
    return found[0] if found else None


def valid_entry(folder: Path) -> Path | None:
    """The loadable export in `folder` if its manifest names it and every file matches it."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != folder.name:
        return None
    if manifest.get("files") != _files(folder):
        return None
    return _artifact(folder)


def _remove(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


def _run_export(export: Callable[[Path], Any], staging: Path, key: ExportKey) -> None:
    export(staging)
    if _artifact(staging) is None:
        raise RuntimeError(f"the {key.runtime} export produced no model")


def cached_export(root: Path, key: ExportKey, export: Callable[[Path], Any]) -> tuple[Path, bool]:
    """The export for `key` under `root`; `export(staging_folder)` runs only when missing or broken.

    Returns the path to load and whether an export ran now.
    """
    entry = root / key.folder
    found = valid_entry(entry)
    if found is not None:
        _LOGGER.info("using the cached %s export %s", key.runtime, entry)
        return found, False
    if entry.exists():
        _LOGGER.warning("the cached %s export %s is incomplete or corrupt: exporting again",
                        key.runtime, entry)  # fmt: skip
        _remove(entry)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key.folder}.", suffix=".tmp", dir=root))
    _LOGGER.info("exporting the model to %s once (cached in %s); this takes a while", key.runtime,
                 entry)  # fmt: skip
    started = time.monotonic()
    try:
        _run_export(export, staging, key)
        manifest = {"key": key.folder, "files": _files(staging)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            staging.rename(entry)
        except OSError:
            # Another server started at the same moment and put its export in place first.
            if valid_entry(entry) is None:
                raise
            _remove(staging)
    except BaseException:
        _remove(staging)
        raise
    artifact = valid_entry(entry)
    if artifact is None:  # pragma: no cover - only if the folder changes under us right now
        raise RuntimeError(f"the {key.runtime} export in {entry} cannot be read back")
    _LOGGER.info("exported the model to %s in %.0f s, verified (SHA-256 manifest)", key.runtime,
                 time.monotonic() - started)  # fmt: skip
    return artifact, True


def invalidate(root: Path, key: ExportKey) -> None:
    """Drop an entry that verified but would not load, so the next attempt exports afresh."""
    _remove(root / key.folder)
