"""OnvifCamera against the real ONVIF simulator, through the real onvif-zeep-async library."""

from __future__ import annotations

from collections.abc import AsyncGenerator
import dataclasses
import logging
import socket

from aiohttp import web
import pytest

from custom_components.home_security_intel.onvif import (
    CannotConnect,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifCamera,
    OnvifError,
    SnapshotError,
)
from tests.support.onvif_sim import OnvifSimulator, SimConfig

JPEG_MAGIC = b"\xff\xd8\xff"


def camera_for(sim: OnvifSimulator, password: str | None = None, **kwargs: float) -> OnvifCamera:
    """A client for the simulator with its configured (or the given) credentials."""
    config = sim.config
    return OnvifCamera(
        sim.host,
        sim.port,
        config.username,
        config.password if password is None else password,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def camera(onvif_sim: OnvifSimulator) -> AsyncGenerator[OnvifCamera]:
    """A client for the default simulator, closed after the test."""
    client = camera_for(onvif_sim)
    yield client
    await client.async_close()


async def _expect(client: OnvifCamera, error: type[OnvifError]) -> OnvifError:
    try:
        with pytest.raises(error) as caught:
            await client.async_connect()
    finally:
        await client.async_close()
    assert client.info is None
    return caught.value


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connect_reads_identity_profiles_and_uris(
    camera: OnvifCamera, onvif_sim: OnvifSimulator
) -> None:
    info = await camera.async_connect()

    assert camera.info is info
    identity = info.identity
    assert (identity.manufacturer, identity.model, identity.firmware_version) == (
        "HSI Labs",
        "SimCam 4K",
        "1.2.3",
    )
    assert (identity.serial_number, identity.hardware_id) == ("SIM-0001", "simcam-hw1")
    assert identity.mac == "02:00:5e:10:00:01"
    assert identity.unique_id == "02:00:5e:10:00:01"
    assert [(p.token, p.name, p.encoding, p.width, p.height, p.fps) for p in info.profiles] == [
        ("profile_main", "MainStream", "H264", 1920, 1080, 15.0),
        ("profile_sub", "SubStream", "H264", 640, 360, 15.0),
    ]
    main = info.profiles[0]
    assert main.snapshot_uri == f"{onvif_sim.url}/snapshot/profile_main.jpg"
    assert main.stream_uri == "rtsp://127.0.0.1:8554/profile_main"
    assert info.refused_uris == ()
    assert info.supports_events is True
    assert abs(info.clock_skew) < 5
    assert info.configuration_url == f"http://127.0.0.1:{onvif_sim.port}/"
    assert (info.host, info.port) == ("127.0.0.1", onvif_sim.port)
    assert "GetStreamUri" in onvif_sim.requests


@pytest.mark.parametrize("fault_status", [400, 401])
async def test_wrong_password_is_invalid_auth(
    onvif_sim: OnvifSimulator, fault_status: int, caplog: pytest.LogCaptureFixture
) -> None:
    onvif_sim.auth_fault_status = fault_status
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Pa55word-XYZ"

    error = await _expect(camera_for(onvif_sim, password=wrong), InvalidAuth)

    assert "127.0.0.1" in str(error)
    assert wrong not in str(error)
    assert wrong not in caplog.text


@pytest.mark.parametrize("skew", [3600.0, -3600.0])
async def test_clock_skew_is_corrected_and_reported(
    camera: OnvifCamera, onvif_sim: OnvifSimulator, skew: float
) -> None:
    onvif_sim.clock_skew = skew

    info = await camera.async_connect()

    # Whole seconds on the wire, plus the time between the camera's answer and our clock read.
    assert abs(info.clock_skew - skew) < 5
    assert info.identity.serial_number == "SIM-0001"  # an authenticated call succeeded


async def test_skewed_clock_fails_without_correction(onvif_sim: OnvifSimulator) -> None:
    """The simulator rejects stale WS-Security timestamps, so the test above means something."""
    onvif_sim.clock_skew = 3600.0
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")

    await _expect(camera_for(onvif_sim), InvalidAuth)


@pytest.mark.parametrize("switch", ["no_profiles", "no_video_profiles"])
async def test_no_video_profile(onvif_sim: OnvifSimulator, switch: str) -> None:
    setattr(onvif_sim, switch, True)

    await _expect(camera_for(onvif_sim), NoVideoProfile)


@pytest.mark.parametrize("switch", ["malformed_xml", "not_onvif"])
async def test_not_onvif_answers(onvif_sim: OnvifSimulator, switch: str) -> None:
    setattr(onvif_sim, switch, True)

    await _expect(camera_for(onvif_sim), NotOnvif)


@pytest.mark.parametrize(
    "page",
    [
        web.Response(text="<html><body>Router admin</body></html>", content_type="text/html"),
        web.Response(text="", status=200),
        web.Response(text='{"ok": true}', content_type="application/json"),
        web.Response(text="Internal error", status=500),
    ],
    ids=["html", "empty", "json", "http-500"],
)
async def test_plain_web_server_is_not_onvif(page: web.Response) -> None:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(
            body=page.body, status=page.status, content_type=page.content_type or "text/plain"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await _expect(OnvifCamera("127.0.0.1", port, "admin", "secret-pw"), NotOnvif)
    finally:
        await runner.cleanup()


async def test_nothing_listening_is_cannot_connect() -> None:
    error = await _expect(OnvifCamera("127.0.0.1", free_port(), "admin", "pw"), CannotConnect)

    assert "127.0.0.1" in str(error)


async def test_slow_camera_is_cannot_connect(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.delay = 3.0

    await _expect(camera_for(onvif_sim, timeout=0.3), CannotConnect)


@pytest.mark.parametrize(
    ("hostile", "host"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://evil.example/x.jpg", "evil.example"),
        ("http://127.0.0.1@evil.example/x.jpg", "evil.example"),
        ("file:///etc/passwd", ""),
    ],
)
async def test_hostile_snapshot_uri_is_refused_and_never_fetched(
    camera: OnvifCamera, onvif_sim: OnvifSimulator, hostile: str, host: str
) -> None:
    onvif_sim.hostile_snapshot_uri = hostile

    info = await camera.async_connect()

    assert all(profile.snapshot_uri is None for profile in info.profiles)
    assert all(profile.stream_uri is not None for profile in info.profiles)
    refused = {(r.profile_token, r.kind, r.uri_host) for r in info.refused_uris}
    assert refused == {("profile_main", "snapshot", host), ("profile_sub", "snapshot", host)}
    assert all(r.reason for r in info.refused_uris)
    with pytest.raises(SnapshotError):
        await camera.async_get_snapshot(info.profiles[0])
    assert onvif_sim.snapshot_requests == 0


async def test_hostile_stream_uri_is_refused(
    camera: OnvifCamera, onvif_sim: OnvifSimulator
) -> None:
    onvif_sim.hostile_stream_uri = "rtsp://10.0.0.99:554/steal"

    info = await camera.async_connect()

    assert [p.stream_uri for p in info.profiles] == [None, None]
    assert {(r.kind, r.uri_host) for r in info.refused_uris} == {("stream", "10.0.0.99")}
    assert camera.stream_source(info.profiles[0]) is None


async def test_no_mac_uses_serial_number(camera: OnvifCamera, onvif_sim: OnvifSimulator) -> None:
    onvif_sim.no_mac = True

    info = await camera.async_connect()

    assert info.identity.mac is None
    assert info.identity.unique_id == "SIM-0001"


async def test_neither_mac_nor_serial_is_not_onvif() -> None:
    sim = OnvifSimulator(SimConfig(mac=None, serial=""))
    await sim.start()
    try:
        sim.no_mac = True
        await _expect(camera_for(sim), NotOnvif)
    finally:
        await sim.stop()


@pytest.mark.parametrize("auth", ["digest", "basic", "none"])
async def test_snapshot_with_each_auth_scheme(
    camera: OnvifCamera, onvif_sim: OnvifSimulator, auth: str
) -> None:
    onvif_sim.snapshot_auth = auth  # type: ignore[assignment]
    info = await camera.async_connect()

    first = await camera.async_get_snapshot(info.profiles[0])
    second = await camera.async_get_snapshot(info.profiles[1])

    assert first.startswith(JPEG_MAGIC)
    assert second.startswith(JPEG_MAGIC)
    assert first != second  # the simulator rotates its sample images
    assert onvif_sim.snapshot_requests == 2


async def test_snapshot_remembers_basic_and_recovers_when_camera_switches(
    camera: OnvifCamera, onvif_sim: OnvifSimulator
) -> None:
    onvif_sim.snapshot_auth = "basic"
    info = await camera.async_connect()
    await camera.async_get_snapshot(info.profiles[0])
    assert camera._snapshots.auth_mode == "basic"

    onvif_sim.snapshot_auth = "digest"
    assert (await camera.async_get_snapshot(info.profiles[0])).startswith(JPEG_MAGIC)
    assert camera._snapshots.auth_mode == "digest"


async def test_snapshot_with_wrong_password_is_invalid_auth(
    camera: OnvifCamera, onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    info = await camera.async_connect()
    caplog.set_level(logging.DEBUG)
    onvif_sim.config.password = "changed-on-camera"

    with pytest.raises(InvalidAuth) as caught:
        await camera.async_get_snapshot(info.profiles[0])

    assert "correct-horse-battery" not in str(caught.value)
    assert "correct-horse-battery" not in caplog.text
    assert onvif_sim.snapshot_requests == 0


async def test_oversize_snapshot_is_refused(camera: OnvifCamera, onvif_sim: OnvifSimulator) -> None:
    info = await camera.async_connect()

    with pytest.raises(SnapshotError, match="larger than 1000 bytes"):
        await camera.async_get_snapshot(info.profiles[0], max_bytes=1000)


async def test_snapshot_when_camera_goes_offline_is_cannot_connect(
    camera: OnvifCamera, onvif_sim: OnvifSimulator
) -> None:
    info = await camera.async_connect()
    await onvif_sim.stop()

    with pytest.raises(CannotConnect):
        await camera.async_get_snapshot(info.profiles[0])


async def test_stream_source_inserts_quoted_credentials() -> None:
    username, password = "ad min@x", "p@ss:w/rd%?#"
    sim = OnvifSimulator(SimConfig(username=username, password=password))
    await sim.start()
    client = camera_for(sim)
    try:
        info = await client.async_connect()
        source = client.stream_source(info.profiles[0])
    finally:
        await client.async_close()
        await sim.stop()

    assert source == "rtsp://ad%20min%40x:p%40ss%3Aw%2Frd%25%3F%23@127.0.0.1:8554/profile_main"
    assert info.profiles[0].stream_uri == "rtsp://127.0.0.1:8554/profile_main"


async def test_stream_source_without_username_is_the_plain_uri(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.preauth_operations.update(
        {"GetDeviceInformation", "GetNetworkInterfaces", "GetProfiles"}
    )
    onvif_sim.preauth_operations.update({"GetSnapshotUri", "GetStreamUri"})
    onvif_sim.snapshot_auth = "none"
    client = OnvifCamera(onvif_sim.host, onvif_sim.port, "", "")
    try:
        info = await client.async_connect()
        image = await client.async_get_snapshot(info.profiles[0])
    finally:
        await client.async_close()

    assert client.stream_source(info.profiles[0]) == "rtsp://127.0.0.1:8554/profile_main"
    assert image.startswith(JPEG_MAGIC)


async def test_credentials_never_in_logs(
    onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    onvif_sim.snapshot_auth = "basic"
    client = camera_for(onvif_sim)
    try:
        info = await client.async_connect()
        await client.async_get_snapshot(info.profiles[0])
        source = client.stream_source(info.profiles[0])
        await client.async_check_alive()
    finally:
        await client.async_close()

    assert source is not None
    assert "correct-horse-battery" in source
    assert caplog.text  # the library and the client did log
    assert "correct-horse-battery" not in caplog.text


async def test_check_alive(camera: OnvifCamera, onvif_sim: OnvifSimulator) -> None:
    await camera.async_check_alive()  # connects first
    assert camera.info is not None
    calls = len(onvif_sim.requests)

    await camera.async_check_alive()
    assert onvif_sim.requests[calls:] == ["GetDeviceInformation"]

    onvif_sim.config.password = "rotated"
    with pytest.raises(InvalidAuth):
        await camera.async_check_alive()

    await onvif_sim.stop()
    with pytest.raises(CannotConnect):
        await camera.async_check_alive()


async def test_reconnect_after_close(camera: OnvifCamera, onvif_sim: OnvifSimulator) -> None:
    first = await camera.async_connect()
    await camera.async_close()

    second = await camera.async_connect()

    assert second == dataclasses.replace(first, clock_skew=second.clock_skew)


async def test_hostname_resolution_feeds_the_uri_guard() -> None:
    client = OnvifCamera("localhost", 80, "admin", "pw")

    addresses = await client._resolve_own_addresses()

    assert "127.0.0.1" in addresses
    assert await OnvifCamera("127.0.0.1", 80, "a", "b")._resolve_own_addresses() == ()


@pytest.mark.parametrize(
    "open_operations",
    [
        {"GetDeviceInformation"},
        {"GetDeviceInformation", "GetNetworkInterfaces", "GetProfiles"},
    ],
    ids=["fails-at-interfaces", "fails-at-media-uris"],
)
async def test_auth_fault_on_later_calls_is_invalid_auth(
    onvif_sim: OnvifSimulator, open_operations: set[str]
) -> None:
    """Cameras that answer some calls without credentials still report a wrong password."""
    onvif_sim.preauth_operations.update(open_operations)

    await _expect(camera_for(onvif_sim, password="wrong"), InvalidAuth)


async def test_slow_snapshot_is_cannot_connect(onvif_sim: OnvifSimulator) -> None:
    client = camera_for(onvif_sim, timeout=0.5)
    try:
        info = await client.async_connect()
        onvif_sim.delay = 3.0
        with pytest.raises(CannotConnect, match="timed out"):
            await client.async_get_snapshot(info.profiles[0])
    finally:
        await client.async_close()


# --------------------------------------------------------------------- probe without credentials


async def _probe(client: OnvifCamera) -> None:
    try:
        await client.async_probe()
    finally:
        await client.async_close()


@pytest.mark.parametrize("password", ["", "not-the-password"])
async def test_probe_asks_only_for_the_clock(onvif_sim: OnvifSimulator, password: str) -> None:
    """One unauthenticated GetSystemDateAndTime; the (missing or wrong) credentials play no part."""
    await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", password))

    assert onvif_sim.requests == ["GetSystemDateAndTime"]


@pytest.mark.parametrize("fault_status", [400, 401])
async def test_probe_auth_fault_still_means_onvif(
    onvif_sim: OnvifSimulator, fault_status: int
) -> None:
    """A camera that wants credentials even for its clock answers with an ONVIF auth fault."""
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
    onvif_sim.auth_fault_status = fault_status
    # The same camera refuses a real connection without credentials: the fault is real.
    await _expect(OnvifCamera(onvif_sim.host, onvif_sim.port, "", ""), InvalidAuth)
    onvif_sim.requests.clear()

    await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", ""))

    assert onvif_sim.requests == ["GetSystemDateAndTime"]


@pytest.mark.parametrize("switch", ["malformed_xml", "not_onvif"])
async def test_probe_not_onvif(onvif_sim: OnvifSimulator, switch: str) -> None:
    setattr(onvif_sim, switch, True)

    with pytest.raises(NotOnvif):
        await _probe(camera_for(onvif_sim))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, "<html><body>Router admin</body></html>"),
        (200, ""),
        (500, "Internal error"),
        (
            200,
            '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
            ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>'
            "<tds:GetSystemDateAndTimeResponse/></s:Body></s:Envelope>",
        ),
    ],
    ids=["html", "empty", "http-500", "soap-without-clock"],
)
async def test_probe_plain_web_server_is_not_onvif(status: int, body: str) -> None:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type="application/soap+xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(NotOnvif):
            await _probe(OnvifCamera("127.0.0.1", port, "", ""))
    finally:
        await runner.cleanup()


async def test_probe_nothing_listening_is_cannot_connect() -> None:
    with pytest.raises(CannotConnect, match=r"127\.0\.0\.1"):
        await _probe(OnvifCamera("127.0.0.1", free_port(), "", ""))


async def test_probe_slow_camera_is_cannot_connect(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.delay = 3.0

    with pytest.raises(CannotConnect):
        await _probe(camera_for(onvif_sim, timeout=0.3))


@pytest.mark.parametrize("host", ["8897", "[::1"])
async def test_address_that_is_no_url_is_cannot_connect(host: str) -> None:
    """A host the HTTP client cannot even form a URL from is a connection problem, not "no ONVIF".

    Nothing is sent: aiohttp refuses the URL before opening a socket.
    """
    with pytest.raises(CannotConnect, match="not form a valid URL"):
        await _probe(OnvifCamera(host, 80, "", ""))
    await _expect(OnvifCamera(host, 80, "admin", "pw"), CannotConnect)


async def test_probe_leaves_a_connection_alone(
    camera: OnvifCamera, onvif_sim: OnvifSimulator
) -> None:
    """The probe uses a device of its own; the connected session keeps working."""
    await camera.async_connect()
    onvif_sim.requests.clear()

    await camera.async_probe()
    await camera.async_check_alive()

    assert onvif_sim.requests == ["GetSystemDateAndTime", "GetDeviceInformation"]
    assert camera.info is not None


@pytest.mark.parametrize(
    "base",
    ["http://169.254.169.254:80", "http://evil.example:8080", "http://localhost:1"],
)
async def test_service_addresses_elsewhere_are_pinned_to_the_camera(
    onvif_sim: OnvifSimulator, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    """XAddrs naming another host are camera-supplied URLs too: requests stay on the camera."""
    onvif_sim.hostile_service_base = base
    camera = OnvifCamera(
        onvif_sim.host, onvif_sim.port, onvif_sim.config.username, onvif_sim.config.password
    )
    try:
        info = await camera.async_connect()
    finally:
        await camera.async_close()
    # Media calls reached the simulator although its XAddrs named another host.
    assert "GetProfiles" in onvif_sim.requests
    assert [profile.token for profile in info.profiles] == [
        profile.token for profile in onvif_sim.config.profiles
    ]
    host = base.split("//", 1)[1].rsplit(":", 1)[0]
    assert f"advertises its services on {host}" in caplog.text
