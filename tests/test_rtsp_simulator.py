"""The demo camera command serves RTSP beside ONVIF: GetStreamUri names its stream, which plays
the camera's pictures to the camera's credentials (what scripts/develop relies on)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from urllib.parse import urlsplit

import pytest

from custom_components.home_security_intel.onvif import OnvifCamera
from custom_components.home_security_intel.pipeline.rtsp import (
    RtspAuthError,
    RtspSettings,
    RtspSource,
)
from tests.support.onvif_sim.__main__ import _parse_args, serve


async def test_demo_command_serves_the_profiles_over_rtsp(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--port 0 puts RTSP on a free port too; the stream URI the camera reports plays."""
    monkeypatch.setenv("HSI_SIM_PASSWORD", "demo-pw")
    args = _parse_args(["--port", "0", "--scene", "demo"])
    server = asyncio.create_task(serve(args))
    ready = ""
    while "ready" not in ready:
        await asyncio.sleep(0.05)
        ready += capsys.readouterr().out
    port = int(re.search(r" port=(\d+)", ready)[1])  # type: ignore[index]
    rtsp = re.search(r"rtsp=(\S+)", ready)[1]  # type: ignore[index]
    assert urlsplit(rtsp).port not in (None, 8554)
    camera = OnvifCamera("127.0.0.1", port, "admin", "demo-pw")
    try:
        info = await camera.async_connect()
        sub = next(p for p in info.profiles if p.token == "profile_sub")
        assert sub.stream_uri is not None
        assert urlsplit(sub.stream_uri).port == urlsplit(rtsp).port
        settings = RtspSettings(retry_min=0.05)
        source = RtspSource(lambda: camera.stream_source(sub), "Demo", settings)
        wrong = RtspSource(lambda: sub.stream_uri.replace("//", "//admin:nope@"), "Demo", settings)  # type: ignore[union-attr]
        try:
            assert (await source.async_get_frame()).startswith(b"\xff\xd8")
            with pytest.raises(RtspAuthError):
                await wrong.async_get_frame()
        finally:
            await source.async_close()
            await wrong.async_close()
    finally:
        await camera.async_close()
        os.kill(os.getpid(), signal.SIGINT)
        await server
    assert "stopped" in capsys.readouterr().out
