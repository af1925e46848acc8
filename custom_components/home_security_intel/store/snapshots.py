"""Evidence files: each security event's best frame, original and annotated, as JPEG files.

Layout under Home Assistant's media directory (not the config directory):
``<media>/home_security_intel/<camera_id>/<YYYY-MM-DD>/<event_id>.jpg`` and
``<event_id>_annotated.jpg``, the day being the event's start in UTC (fixed forever, whatever
the time zone setting does later). Files are written through aiofiles into a temporary file in
the same folder and renamed over the final name, so a reader sees the old frame or the new one,
never half of one. Paths being written are tracked: cleanup skips them.

Home Assistant-free (the caller passes the folder); path building validates every part, so no
identifier can point outside the folder.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
import contextlib
from datetime import UTC, date, datetime
import logging
import os
from pathlib import Path
import re
import shutil
import threading
from typing import Final
import uuid

import aiofiles
import aiofiles.os

_LOGGER = logging.getLogger(__name__)

CAMERA_ID_RE: Final = re.compile(r"^[0-9A-Za-z]{1,64}$")
EVENT_ID_RE: Final = re.compile(r"^[0-9a-f]{32}$")
DAY_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXPORTS_DIR: Final = "exports"
_TMP_PREFIX: Final = ".tmp-"


class UnsafePathError(ValueError):
    """An identifier that does not name a file inside the snapshot folder."""


def valid_camera_id(camera_id: str) -> bool:
    """A config entry id (letters and digits only)."""
    return bool(CAMERA_ID_RE.match(camera_id)) and camera_id != EXPORTS_DIR


def valid_event_id(event_id: str) -> bool:
    """An event id: 32 lowercase hex digits."""
    return bool(EVENT_ID_RE.match(event_id))


def parse_day(text: str) -> date | None:
    """A YYYY-MM-DD day, or None."""
    if not DAY_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def event_day(start: datetime) -> date:
    """The folder day of an event (UTC)."""
    return start.astimezone(UTC).date()


class SnapshotStore:
    """The snapshot folder of every camera."""

    def __init__(self, root: Path) -> None:
        """`root` is <media>/home_security_intel; created on the first write."""
        self.root = root
        self._writing: Counter[Path] = Counter()
        """Final paths with a write in progress (and how many writers)."""
        # Writes register on the event loop, cleanup checks from an executor thread.
        self._lock = threading.Lock()

    def path(self, camera_id: str, event_id: str, start: datetime, *, annotated: bool) -> Path:
        """Where an event's frame lives; UnsafePathError for identifiers that are not ours."""
        if not valid_camera_id(camera_id) or not valid_event_id(event_id):
            raise UnsafePathError(f"not a snapshot: {camera_id!r}/{event_id!r}")
        name = f"{event_id}_annotated.jpg" if annotated else f"{event_id}.jpg"
        return self.root / camera_id / event_day(start).isoformat() / name

    def is_writing(self, path: Path) -> bool:
        """Whether a write to this final path is in progress."""
        with self._lock:
            return path in self._writing

    def _is_busy(self, folder: Path) -> bool:
        """Whether a write into this folder is in progress (it owns its temporary file)."""
        with self._lock:
            return any(path.parent == folder for path in self._writing)

    def safe_existing(self, path: Path) -> Path | None:
        """`path` when it is a regular file (not a link) inside the folder; None otherwise.

        Blocking (stat and realpath): call it in an executor.
        """
        # is_symlink and is_file answer False rather than raise; resolve (not strict) does not
        # raise either.
        if path.is_symlink():
            _LOGGER.warning("Refused snapshot %s: it is a symbolic link", path)
            return None
        if not path.is_file():
            return None
        resolved = path.resolve()
        root = self.root.resolve()
        if (
            not path.is_relative_to(self.root)
            or not resolved.is_relative_to(root)
            or resolved != root / path.relative_to(self.root)
        ):
            # A folder on the way is a link (or the path was never below the folder).
            _LOGGER.warning("Refused snapshot %s: it resolves outside %s", path, self.root)
            return None
        return resolved

    async def async_write(self, path: Path, data: bytes) -> None:
        """Write `data` to `path` atomically (temporary file in the same folder, then rename)."""
        with self._lock:
            self._writing[path] += 1
        tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
        try:
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            async with aiofiles.open(tmp, "wb") as file:
                await file.write(data)
                await file.flush()
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            # Leave no temporary file behind, whatever went wrong (cancellation included).
            await asyncio.shield(_async_unlink(tmp))
            raise
        finally:
            with self._lock:
                self._writing[path] -= 1
                if not self._writing[path]:
                    del self._writing[path]

    async def async_save(
        self,
        camera_id: str,
        event_id: str,
        start: datetime,
        original: bytes,
        annotated: bytes | None,
    ) -> None:
        """Save an event's best frame (and its annotated copy, the original when None)."""
        await asyncio.gather(
            self.async_write(self.path(camera_id, event_id, start, annotated=False), original),
            self.async_write(
                self.path(camera_id, event_id, start, annotated=True), annotated or original
            ),
        )

    async def async_delete_events(self, events: Iterable[tuple[str, str, datetime]]) -> int:
        """Delete the frames of these (camera id, event id, start); returns files removed."""
        paths = [
            self.path(camera, event, start, annotated=annotated)
            for camera, event, start in events
            for annotated in (False, True)
        ]
        return await asyncio.get_running_loop().run_in_executor(None, self._delete_paths, paths)

    def _delete_paths(self, paths: list[Path]) -> int:
        removed = 0
        for path in paths:
            if self.is_writing(path):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            self._remove_if_idle(path.parent)  # the day
            self._remove_if_idle(path.parent.parent)  # the camera
        return removed

    def _remove_if_idle(self, folder: Path) -> None:
        # Under the lock: a write registers before creating its folder, so no folder is
        # removed between a writer's makedirs and its open.
        with self._lock:
            if any(folder in path.parents for path in self._writing):
                return
            _remove_if_empty(folder)

    async def async_cleanup(self, before: date, camera_id: str | None = None) -> int:
        """Delete every file in day folders older than `before` (of one camera, or all): files
        whose rows are gone, or that a crash left behind; never a file being written. Returns
        the number of files removed."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self._cleanup, before, camera_id
        )

    def _cleanup(self, before: date, camera_id: str | None) -> int:
        removed = 0
        for camera_dir in _subdirs(self.root):
            if not valid_camera_id(camera_dir.name) or camera_id not in (None, camera_dir.name):
                continue
            for day_dir in _subdirs(camera_dir):
                day = parse_day(day_dir.name)
                if day is None or day >= before:
                    continue
                for entry in list(os.scandir(day_dir)):
                    if self._is_busy(day_dir):
                        break  # a write into this folder is in progress: leave it whole
                    if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        Path(entry.path).unlink(missing_ok=True)
                        removed += 1
                self._remove_if_idle(day_dir)
            self._remove_if_idle(camera_dir)
        return removed

    async def async_cleanup_exports(self, camera_id: str, before: datetime) -> int:
        """Delete a camera's export archives written before `before`; returns how many."""
        if not valid_camera_id(camera_id):
            raise UnsafePathError(f"not a camera: {camera_id!r}")
        folder = self.root / EXPORTS_DIR / camera_id
        cutoff = before.timestamp()

        def cleanup() -> int:
            removed = 0
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                return 0
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
            _remove_if_empty(folder)
            return removed

        return await asyncio.get_running_loop().run_in_executor(None, cleanup)

    async def async_delete_camera(self, camera_id: str) -> None:
        """Delete a camera's whole folder and its exports (its entry was removed)."""
        if not valid_camera_id(camera_id):
            raise UnsafePathError(f"not a camera: {camera_id!r}")
        folders = (self.root / camera_id, self.root / EXPORTS_DIR / camera_id)

        def remove() -> None:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)

        await asyncio.get_running_loop().run_in_executor(None, remove)

    async def async_usage(self, camera_id: str) -> int:
        """Bytes the camera's snapshots take on disk."""
        if not valid_camera_id(camera_id):
            raise UnsafePathError(f"not a camera: {camera_id!r}")
        return await asyncio.get_running_loop().run_in_executor(
            None, _tree_size, self.root / camera_id
        )


async def _async_unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or already gone): that is fine
        folder.rmdir()


def _tree_size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(dirpath) / name).lstat().st_size
            except FileNotFoundError:
                continue
    return total
