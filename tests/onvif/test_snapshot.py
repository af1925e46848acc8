"""Snapshot fetching against a real aiohttp server on 127.0.0.1: redirects, limits, bad bodies.

The ONVIF simulator has no redirecting or misbehaving snapshot endpoint, so this small server plays
a camera's HTTP side; the camera host is 127.0.0.1, so "off-camera" redirects go to other hosts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from aiohttp import web
import pytest

from custom_components.home_security_intel.onvif import (
    CannotConnect,
    OnvifCamera,
    SnapshotError,
    VideoProfile,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def _image(request: web.Request) -> web.StreamResponse:
    body = PNG if request.match_info["name"] == "png" else JPEG
    return web.Response(body=body, content_type="image/jpeg")


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(20):
        await response.write(JPEG)
    await response.write_eof()
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location} if location else {})


ROUTES = {
    "/redirect/same-host": lambda _: _redirect("/image/jpeg"),
    "/redirect/metadata": lambda _: _redirect("http://169.254.169.254/latest/meta-data/"),
    "/redirect/evil": lambda _: _redirect("http://evil.example/x.jpg"),
    "/redirect/none": lambda _: _redirect(""),
    "/redirect/loop": lambda _: _redirect("/redirect/loop"),
    "/html": lambda _: web.Response(text="<html>login</html>", content_type="text/html"),
    "/error": lambda _: web.Response(status=500, text="boom"),
}


@pytest.fixture
async def camera_http() -> AsyncGenerator[tuple[str, list[str]]]:
    """Base URL of the helper server and the paths it was asked for."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/image/{name}", _image)
    app.router.add_get("/chunked", _chunked)
    for path, handler in ROUTES.items():

        async def handle(request: web.Request, handler=handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
            return handler(request)

        app.router.add_get(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncGenerator[OnvifCamera]:
    camera = OnvifCamera("127.0.0.1", 80, "admin", "pw")
    yield camera
    await camera.async_close()


def profile(uri: str | None) -> VideoProfile:
    return VideoProfile("p1", "Main", "H264", 1920, 1080, 15.0, uri, None)


@pytest.mark.parametrize(("path", "magic"), [("/image/jpeg", JPEG), ("/image/png", PNG)])
async def test_jpeg_and_png(
    client: OnvifCamera, camera_http: tuple[str, list[str]], path: str, magic: bytes
) -> None:
    base, _ = camera_http
    assert await client.async_get_snapshot(profile(base + path)) == magic


async def test_redirect_on_the_camera_is_followed(
    client: OnvifCamera, camera_http: tuple[str, list[str]]
) -> None:
    base, seen = camera_http
    assert await client.async_get_snapshot(profile(base + "/redirect/same-host")) == JPEG
    assert seen == ["/redirect/same-host", "/image/jpeg"]


@pytest.mark.parametrize("path", ["/redirect/metadata", "/redirect/evil"])
async def test_redirect_off_the_camera_is_refused(
    client: OnvifCamera, camera_http: tuple[str, list[str]], path: str
) -> None:
    base, seen = camera_http
    with pytest.raises(SnapshotError, match="refused"):
        await client.async_get_snapshot(profile(base + path))
    assert seen == [path]


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("/redirect/none", "redirect without a location"),
        ("/redirect/loop", "too many snapshot redirects"),
        ("/html", "not a JPEG or PNG"),
        ("/error", "HTTP 500"),
        ("/missing", "HTTP 404"),
    ],
)
async def test_bad_answers_are_snapshot_errors(
    client: OnvifCamera, camera_http: tuple[str, list[str]], path: str, match: str
) -> None:
    base, _ = camera_http
    with pytest.raises(SnapshotError, match=match):
        await client.async_get_snapshot(profile(base + path))


async def test_size_limit_is_enforced_while_reading_a_chunked_body(
    client: OnvifCamera, camera_http: tuple[str, list[str]]
) -> None:
    base, _ = camera_http
    with pytest.raises(SnapshotError, match="larger than 10000 bytes"):
        await client.async_get_snapshot(profile(base + "/chunked"), max_bytes=10_000)
    assert len(await client.async_get_snapshot(profile(base + "/chunked"))) == 20 * len(JPEG)


async def test_hostile_uri_in_a_profile_is_never_fetched(client: OnvifCamera) -> None:
    for uri in ("http://169.254.169.254/latest/meta-data/", "http://evil.example/x.jpg", None):
        with pytest.raises(SnapshotError):
            await client.async_get_snapshot(profile(uri))


async def test_nothing_listening_is_cannot_connect(client: OnvifCamera) -> None:
    with pytest.raises(CannotConnect):
        await client.async_get_snapshot(profile("http://127.0.0.1:9/x.jpg"))
