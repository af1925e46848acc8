"""The snapshot frame source hands out what its fetcher returns, once per call."""

from __future__ import annotations

import pytest

from custom_components.home_security_intel.pipeline.frames import FrameSource, SnapshotSource


async def test_snapshot_source_fetches_a_fresh_frame_per_call() -> None:
    frames = iter([b"\xff\xd8one", b"\xff\xd8two"])
    calls = 0

    async def fetch() -> bytes:
        nonlocal calls
        calls += 1
        return next(frames)

    source: FrameSource = SnapshotSource(fetch)
    assert source.name == "snapshot"
    assert await source.async_get_frame() == b"\xff\xd8one"
    assert await source.async_get_frame() == b"\xff\xd8two"
    assert calls == 2


async def test_snapshot_source_passes_the_fetchers_error_on() -> None:
    async def fetch() -> bytes:
        raise OSError("camera away")

    with pytest.raises(OSError, match="camera away"):
        await SnapshotSource(fetch).async_get_frame()
