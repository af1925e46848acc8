"""The snapshot files on their own (no Home Assistant): atomic writes, retention, safe paths."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
import logging
import os
from pathlib import Path
from typing import Any

import aiofiles.os
import pytest

from custom_components.home_security_intel.store import snapshots as snapshots_module
from custom_components.home_security_intel.store.snapshots import (
    EXPORTS_DIR,
    SnapshotStore,
    UnsafePathError,
    parse_day,
    valid_camera_id,
    valid_event_id,
)
from tests.store.common import CAMERA, JPEG, OTHER, T0

EVENT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    """A snapshot folder under a temporary media folder."""
    return SnapshotStore(tmp_path / "media" / "home_security_intel")


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_save_writes_both_frames_by_day(store: SnapshotStore) -> None:
    """Original and annotated frames land in <camera>/<UTC day>/; no temporary file stays."""
    late = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    await store.async_save(CAMERA, EVENT, late, JPEG, b"annotated" + JPEG)
    assert _files(store.root) == [
        f"{CAMERA}/2026-11-30/{EVENT}.jpg",
        f"{CAMERA}/2026-11-30/{EVENT}_annotated.jpg",
    ]
    assert store.path(CAMERA, EVENT, late, annotated=True).read_bytes() == b"annotated" + JPEG
    # Without an annotated frame the original serves as both.
    await store.async_save(OTHER, EVENT, late, JPEG, None)
    assert store.path(OTHER, EVENT, late, annotated=True).read_bytes() == JPEG
    assert await store.async_usage(CAMERA) == len(JPEG) * 2 + len(b"annotated")


async def test_concurrent_writes_of_one_frame_are_atomic(store: SnapshotStore) -> None:
    """Many writers of the same event's frame at once (updates of one event): the file always
    holds one writer's whole frame, never a mix, and no temporary file is left."""
    frames = [bytes([i]) * 200_000 for i in range(1, 21)]
    path = store.path(CAMERA, EVENT, T0, annotated=False)
    await store.async_write(path, frames[0])
    reads: list[bytes] = []

    async def reader() -> None:
        for _ in range(50):
            reads.append(path.read_bytes())
            await asyncio.sleep(0)

    await asyncio.gather(reader(), *(store.async_write(path, frame) for frame in frames))
    assert path.read_bytes() in frames
    assert all(read in frames for read in reads)
    assert _files(store.root) == [f"{CAMERA}/2026-11-30/{EVENT}.jpg"]
    assert not store.is_writing(path)


async def test_concurrent_events(store: SnapshotStore) -> None:
    """Frames of many events written at once all arrive whole."""
    events = [f"{i:032x}" for i in range(40)]
    await asyncio.gather(
        *(store.async_save(CAMERA, event, T0, event.encode() * 1000, None) for event in events)
    )
    for event in events:
        assert store.path(CAMERA, event, T0, annotated=True).read_bytes() == event.encode() * 1000
    assert len(_files(store.root)) == 80


async def test_failed_write_leaves_no_temporary_file(store: SnapshotStore) -> None:
    """A rename that fails (a folder in the way) raises and removes its temporary file."""
    path = store.path(CAMERA, EVENT, T0, annotated=False)
    path.mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        await store.async_write(path, JPEG)
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert not store.is_writing(path)


class _PausedRename:
    """Holds aiofiles' rename until released: a write stays in progress for as long as the test
    needs (the file I/O itself is real; only its timing is held)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        real = aiofiles.os.replace

        async def replace(src: Any, dst: Any) -> None:
            self.started.set()
            await self.release.wait()
            await real(src, dst)

        monkeypatch.setattr(snapshots_module.aiofiles.os, "replace", replace)


async def test_cleanup_never_removes_a_file_being_written(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cleanup and deletion skip a folder with a write in progress (its temporary file and its
    final file); once the write is done, the next cleanup removes it."""
    old = T0 - timedelta(days=30)
    path = store.path(CAMERA, EVENT, old, annotated=False)
    await store.async_write(path, b"previous")
    await store.async_write(store.path(CAMERA, EVENT, old, annotated=True), b"annotated")
    neighbour = store.path(CAMERA, "f" * 32, old, annotated=False)
    await store.async_write(neighbour, b"neighbour")
    paused = _PausedRename(monkeypatch)
    write = asyncio.create_task(store.async_write(path, JPEG))
    await paused.started.wait()
    assert store.is_writing(path)
    temporary = [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert len(temporary) == 1
    assert await store.async_cleanup(date(2100, 1, 1)) == 0
    # Deleting the event removes the frame nobody writes, not the one being written.
    assert await store.async_delete_events([(CAMERA, EVENT, old)]) == 1
    assert temporary[0].exists()
    assert path.read_bytes() == b"previous"
    assert neighbour.exists()  # its folder is busy too
    paused.release.set()
    await write
    assert path.read_bytes() == JPEG
    assert not store.is_writing(path)
    assert await store.async_cleanup(date(2100, 1, 1)) == 2
    assert _files(store.root) == []
    assert not (store.root / CAMERA).exists()


async def test_cleanup_by_day(store: SnapshotStore) -> None:
    """Day folders older than the cutoff go; newer ones, the exports and foreign folders stay."""
    for day in (T0 - timedelta(days=20), T0 - timedelta(days=2), T0):
        await store.async_save(CAMERA, EVENT, day, JPEG, JPEG)
        await store.async_save(OTHER, EVENT, day, JPEG, JPEG)
    (store.root / EXPORTS_DIR / CAMERA).mkdir(parents=True)
    (store.root / EXPORTS_DIR / CAMERA / "events_1.zip").write_bytes(b"zip")
    old_day = store.path(CAMERA, EVENT, T0 - timedelta(days=20), annotated=True).parent
    (old_day / "unexpected folder").mkdir()
    (store.root / CAMERA / "notes").mkdir()
    (store.root / CAMERA / "notes" / "keep.txt").write_text("mine")
    (store.root / "not a camera").mkdir()
    (store.root / "not a camera" / "keep.txt").write_text("mine")
    cutoff = (T0 - timedelta(days=14)).date()
    assert await store.async_cleanup(cutoff, CAMERA) == 2
    assert await store.async_cleanup(cutoff) == 2
    assert (old_day / "unexpected folder").is_dir()  # files only: a folder is not ours to drop
    days = {p.parent.name for p in store.root.rglob("*.jpg")}
    assert days == {"2026-11-28", "2026-11-30"}
    assert (store.root / EXPORTS_DIR / CAMERA / "events_1.zip").exists()
    assert (store.root / CAMERA / "notes" / "keep.txt").exists()
    assert (store.root / "not a camera" / "keep.txt").exists()


async def test_delete_events_and_camera(store: SnapshotStore) -> None:
    """Deleting events removes their two files and empty folders; deleting a camera removes
    its folder and nothing else."""
    await store.async_save(CAMERA, EVENT, T0, JPEG, JPEG)
    await store.async_save(OTHER, EVENT, T0, JPEG, JPEG)
    assert await store.async_delete_events([(CAMERA, EVENT, T0), (CAMERA, "e" * 32, T0)]) == 2
    assert not (store.root / CAMERA).exists()
    await store.async_save(CAMERA, EVENT, T0, JPEG, JPEG)
    await store.async_delete_camera(CAMERA)
    assert not (store.root / CAMERA).exists()
    assert len(_files(store.root / OTHER)) == 2
    assert await store.async_usage(CAMERA) == 0
    await store.async_delete_camera(CAMERA)  # nothing left: still fine


@pytest.mark.parametrize(
    ("camera", "event"),
    [
        ("..", EVENT),
        (CAMERA, ".."),
        (f"{CAMERA}/..", EVENT),
        ("/etc", EVENT),
        (CAMERA, "/etc/passwd"),
        (CAMERA, f"{EVENT[:-1]}\x00"),
        ("a%2F..", EVENT),
        (CAMERA, EVENT.upper()),
        (CAMERA, EVENT + "0"),
        ("", EVENT),
        (EXPORTS_DIR, EVENT),
    ],
)
async def test_paths_refuse_foreign_identifiers(
    store: SnapshotStore, camera: str, event: str
) -> None:
    """No identifier builds a path outside the folder (every one is validated first)."""
    with pytest.raises(UnsafePathError):
        store.path(camera, event, T0, annotated=True)
    if event == EVENT:
        with pytest.raises(UnsafePathError):
            await store.async_usage(camera)
        with pytest.raises(UnsafePathError):
            await store.async_delete_camera(camera)


def test_validators() -> None:
    """The identifier rules the media source relies on."""
    assert valid_camera_id(CAMERA)
    assert not valid_camera_id("x" * 65)
    assert valid_event_id(EVENT)
    assert parse_day("2026-02-28") == date(2026, 2, 28)
    assert parse_day("2026-02-30") is None
    assert parse_day("2026-2-3") is None


async def test_safe_existing_refuses_links_and_outsiders(
    store: SnapshotStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A frame that is a symbolic link, or lies below a linked folder, is refused and logged."""
    await store.async_save(CAMERA, EVENT, T0, JPEG, JPEG)
    path = store.path(CAMERA, EVENT, T0, annotated=True)
    assert store.safe_existing(path) == path.resolve()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"secret")
    path.unlink()
    path.symlink_to(secret)
    with caplog.at_level(logging.WARNING):
        assert store.safe_existing(path) is None
    assert "symbolic link" in caplog.text
    # A linked day folder: the file itself is regular, its real path is elsewhere.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{EVENT}.jpg").write_bytes(b"secret")
    day = path.parent
    for child in day.iterdir():
        child.unlink()
    day.rmdir()
    day.symlink_to(outside, target_is_directory=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert store.safe_existing(store.path(CAMERA, EVENT, T0, annotated=False)) is None
    assert "resolves outside" in caplog.text
    assert store.safe_existing(tmp_path / "secret.jpg") is None
    assert store.safe_existing(store.path(OTHER, EVENT, T0, annotated=False)) is None
    # Cleanup does not follow the linked folder either.
    assert await store.async_cleanup(date(2100, 1, 1)) == 0
    assert (outside / f"{EVENT}.jpg").exists()


async def test_usage_skips_files_that_vanish(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file removed while the size is summed counts nothing (no error)."""
    await store.async_save(CAMERA, EVENT, T0, JPEG, JPEG)
    real_walk = os.walk

    def walk(top: Any) -> Any:
        for dirpath, dirs, files in real_walk(top):
            yield dirpath, dirs, [*files, "vanished.jpg"]

    monkeypatch.setattr(snapshots_module.os, "walk", walk)
    assert await store.async_usage(CAMERA) == 2 * len(JPEG)


async def test_cleanup_exports(store: SnapshotStore) -> None:
    """Old export archives go, newer ones stay; a camera without exports is fine; foreign
    identifiers are refused."""
    assert await store.async_cleanup_exports(CAMERA, T0) == 0
    folder = store.root / EXPORTS_DIR / CAMERA
    folder.mkdir(parents=True)
    (folder / "events_1.zip").write_bytes(b"zip")
    assert await store.async_cleanup_exports(CAMERA, T0) == 0  # written now, after T0
    assert await store.async_cleanup_exports(CAMERA, datetime.now(UTC) + timedelta(hours=1)) == 1
    assert not folder.exists()
    with pytest.raises(UnsafePathError):
        await store.async_cleanup_exports("..", T0)
