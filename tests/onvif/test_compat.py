"""Camera firmware behaviours seen in the field, each in the simulator, through onvif-zeep-async.

SOAP faults that are not authentication faults, clocks behind credentials or HTTP Digest,
optional operations failing at the HTTP level, media URIs naming the camera by another of its
addresses, NVR-style profiles, and the WSDL parse shared by every service client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import threading
from types import SimpleNamespace
from typing import Any, Literal

import onvif.client as onvif_client
import pytest

from custom_components.home_security_intel.onvif import (
    CameraFault,
    ClockRefused,
    InvalidAuth,
    OnvifCamera,
    OnvifError,
)
from custom_components.home_security_intel.onvif.parsing import (
    addresses_from_interfaces,
    video_profiles,
)
from custom_components.home_security_intel.onvif.uri_guard import camera_alias_uri
from tests.onvif.test_client import camera_for
from tests.support.onvif_sim import OnvifSimulator

JPEG_MAGIC = b"\xff\xd8\xff"


async def _connect(client: OnvifCamera) -> Any:
    try:
        return await client.async_connect()
    finally:
        await client.async_close()


async def _connect_fails(client: OnvifCamera, error: type[OnvifError]) -> OnvifError:
    try:
        with pytest.raises(error) as caught:
            await client.async_connect()
    finally:
        await client.async_close()
    return caught.value


async def _probe(client: OnvifCamera, *, identify: bool = False) -> Any:
    try:
        return await client.async_probe(identify=identify)
    finally:
        await client.async_close()


# ----------------------------------------------------------------------- SOAP faults


async def test_probe_that_gets_any_soap_fault_has_reached_onvif(onvif_sim: OnvifSimulator) -> None:
    """A clock read answered with a fault that is no auth fault is still an ONVIF answer."""
    onvif_sim.soap_faults["GetSystemDateAndTime"] = "ter:ActionNotSupported"

    assert await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", "")) is None

    assert onvif_sim.requests == ["GetSystemDateAndTime"]


@pytest.mark.parametrize(
    ("operation", "step"),
    [
        ("GetDeviceInformation", "reading device information"),
        ("GetProfiles", "reading media profiles"),
    ],
)
async def test_fault_in_a_required_step_is_a_camera_fault(
    onvif_sim: OnvifSimulator, operation: str, step: str
) -> None:
    onvif_sim.soap_faults[operation] = "ter:ActionNotSupported"

    error = await _connect_fails(camera_for(onvif_sim), CameraFault)

    assert isinstance(error, CameraFault)
    # zeep hands the subcode over as a QName: its local part is what is kept.
    assert (error.step, error.fault) == (step, "ActionNotSupported")


@pytest.mark.parametrize(
    "operation", ["GetSystemDateAndTime", "GetNetworkInterfaces", "GetSnapshotUri", "GetServices"]
)
async def test_fault_in_an_optional_step_is_tolerated(
    onvif_sim: OnvifSimulator, operation: str
) -> None:
    onvif_sim.soap_faults[operation] = "ter:ActionNotSupported"

    info = await _connect(camera_for(onvif_sim))

    assert info.identity.serial_number == "SIM-0001"
    assert info.supports_events is True  # GetServices falls back to GetCapabilities
    if operation == "GetSnapshotUri":
        assert [p.snapshot_uri for p in info.profiles] == [None, None]
        assert info.profiles[0].stream_uri == "rtsp://127.0.0.1:8554/profile_main"
    if operation == "GetNetworkInterfaces":
        assert info.identity.unique_id == "SIM-0001"


# ----------------------------------------------------------------------- the clock


async def test_clock_answered_with_http_401_and_empty_body_is_retried_with_credentials(
    onvif_sim: OnvifSimulator,
) -> None:
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
    onvif_sim.auth_fault_empty = True

    info = await _connect(camera_for(onvif_sim))

    assert info.identity.serial_number == "SIM-0001"
    assert onvif_sim.requests[:2] == ["GetSystemDateAndTime", "GetSystemDateAndTime"]
    # The probe counts the 401 as an ONVIF answer.
    assert await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", "")) is None


async def test_clock_behind_http_digest_is_read_with_credentials(
    onvif_sim: OnvifSimulator,
) -> None:
    """HTTP Digest carries no timestamp: even an hour off, the clock is read and corrected."""
    onvif_sim.http_digest_operations.add("GetSystemDateAndTime")
    onvif_sim.clock_skew = 3600.0

    info = await _connect(camera_for(onvif_sim))

    assert abs(info.clock_skew - 3600.0) < 5
    assert info.identity.serial_number == "SIM-0001"
    # Without credentials there is nothing to answer the challenge with: still ONVIF.
    assert await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", "")) is None


async def test_camera_that_protects_all_of_soap_with_http_digest(
    onvif_sim: OnvifSimulator,
) -> None:
    """Every service of the camera (device, media) shares one Digest-answering session."""
    onvif_sim.http_digest_operations.update(
        {
            "GetSystemDateAndTime",
            "GetServices",
            "GetDeviceInformation",
            "GetNetworkInterfaces",
            "GetProfiles",
            "GetSnapshotUri",
            "GetStreamUri",
        }
    )

    info = await _connect(camera_for(onvif_sim))

    assert info.identity.unique_id == "02:00:5e:10:00:01"
    assert info.profiles[0].snapshot_uri is not None
    assert info.profiles[0].stream_uri is not None


async def test_clock_behind_http_digest_with_wrong_password_is_invalid_auth(
    onvif_sim: OnvifSimulator,
) -> None:
    onvif_sim.http_digest_operations.add("GetSystemDateAndTime")

    await _connect_fails(camera_for(onvif_sim, password="wrong-one"), InvalidAuth)


@pytest.mark.parametrize("empty_body", [False, True])
async def test_clock_behind_credentials_and_far_off_names_the_clock(
    onvif_sim: OnvifSimulator, empty_body: bool
) -> None:
    """The right password, refused because the camera's clock is an hour off: say so."""
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
    onvif_sim.auth_fault_empty = empty_body
    onvif_sim.clock_skew = 3600.0

    error = await _connect_fails(camera_for(onvif_sim), ClockRefused)

    assert "clock" in str(error)
    assert onvif_sim.config.password not in str(error)


async def test_wrong_password_on_an_open_clock_is_not_a_clock_problem(
    onvif_sim: OnvifSimulator,
) -> None:
    error = await _connect_fails(camera_for(onvif_sim, password="wrong-one"), InvalidAuth)

    assert not isinstance(error, ClockRefused)


# ------------------------------------------------------------- optional operations, HTTP level

type Failure = Literal["500", "empty", "timeout"]


@pytest.mark.parametrize("failure", ["500", "empty", "timeout"])
@pytest.mark.parametrize(
    "operation", ["GetNetworkInterfaces", "GetSnapshotUri", "GetStreamUri", "GetServices"]
)
async def test_optional_operation_failing_at_http_level_does_not_abort_connect(
    onvif_sim: OnvifSimulator, operation: str, failure: Failure
) -> None:
    onvif_sim.http_failures[operation] = failure
    onvif_sim.hang_seconds = 10.0

    info = await _connect(camera_for(onvif_sim, timeout=0.5))

    assert info.identity.serial_number == "SIM-0001"
    assert len(info.profiles) == 2
    assert info.supports_events is True
    match operation:
        case "GetNetworkInterfaces":
            assert info.identity.unique_id == "SIM-0001"
        case "GetSnapshotUri":
            assert [p.snapshot_uri for p in info.profiles] == [None, None]
            assert info.profiles[1].stream_uri == "rtsp://127.0.0.1:8554/profile_sub"
        case "GetStreamUri":
            assert [p.stream_uri for p in info.profiles] == [None, None]
            assert info.profiles[0].snapshot_uri is not None
        case _:
            assert "GetCapabilities" in onvif_sim.requests
    if operation.endswith("Uri") and failure != "empty":
        # Failed below SOAP once: not asked again for the second profile.
        assert onvif_sim.requests.count(operation) == 1


# ------------------------------------------------------------- media URIs naming the camera


def _snapshot_uri(sim: OnvifSimulator, host: str) -> str:
    return f"http://{host}:{sim.port}/snapshot/profile_main.jpg"


@pytest.mark.parametrize(
    ("reported", "uri_host"),
    [
        (None, "0.0.0.0"),
        (["192.168.1.64"], "192.168.1.64"),  # its LAN address, reached by another name
        (["10.0.0.5", "192.168.1.64"], "192.168.1.64"),  # multi-homed
    ],
    ids=["unspecified", "lan-address", "multi-homed"],
)
async def test_media_uris_naming_the_camera_otherwise_are_rewritten(
    onvif_sim: OnvifSimulator, reported: list[str] | None, uri_host: str
) -> None:
    onvif_sim.reported_addresses = reported
    onvif_sim.hostile_snapshot_uri = _snapshot_uri(onvif_sim, uri_host)
    onvif_sim.hostile_stream_uri = f"rtsp://admin:pw@{uri_host}:554/ch0"
    client = camera_for(onvif_sim)
    try:
        info = await client.async_connect()
        main = info.profiles[0]
        assert main.snapshot_uri == _snapshot_uri(onvif_sim, "127.0.0.1")
        assert main.stream_uri == "rtsp://127.0.0.1:554/ch0"
        assert info.refused_uris == ()
        assert (await client.async_get_snapshot(main)).startswith(JPEG_MAGIC)
    finally:
        await client.async_close()


async def test_media_uris_naming_another_host_stay_refused(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.reported_addresses = ["192.168.1.64"]
    onvif_sim.hostile_snapshot_uri = _snapshot_uri(onvif_sim, "192.168.1.99")

    info = await _connect(camera_for(onvif_sim))

    assert info.profiles[0].snapshot_uri is None
    assert {(r.kind, r.uri_host) for r in info.refused_uris} == {("snapshot", "192.168.1.99")}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://0.0.0.0/a.jpg", "http://cam.lan/a.jpg"),
        ("rtsp://[::]:554/x", "rtsp://cam.lan:554/x"),
        ("rtsp://u:p@10.0.0.5:8554/x", "rtsp://u:p@cam.lan:8554/x"),
        ("http://10.0.0.6/a.jpg", "http://10.0.0.6/a.jpg"),
        ("http://cam.lan/a.jpg", "http://cam.lan/a.jpg"),
        ("http://a@b@0.0.0.0/x", "http://a@b@0.0.0.0/x"),  # ambiguous: left to the guard
        ("http://0.0.0.0:99999/x", "http://0.0.0.0:99999/x"),  # bad port: left to the guard
        ("http://[::1/x", "http://[::1/x"),
    ],
)
def test_camera_alias_uri(uri: str, expected: str) -> None:
    assert camera_alias_uri(uri, "cam.lan", ["10.0.0.5"]) == expected


def test_camera_alias_uri_brackets_an_ipv6_camera() -> None:
    assert camera_alias_uri("http://0.0.0.0:81/a", "fd00::5", []) == "http://[fd00::5]:81/a"


# ----------------------------------------------------------------------- NVR profiles


async def test_nvr_profiles_without_encoder_are_kept_with_the_source_size(
    onvif_sim: OnvifSimulator,
) -> None:
    onvif_sim.nvr_profiles = True

    info = await _connect(camera_for(onvif_sim))

    assert [(p.token, p.encoding, p.width, p.height, p.fps) for p in info.profiles] == [
        ("profile_main", "", 1920, 1080, None),
        ("profile_sub", "", 1920, 1080, None),
    ]
    assert info.profiles[1].stream_uri == "rtsp://127.0.0.1:8554/profile_sub"


# ------------------------------------------------------------ identity without credentials


async def test_probe_identifies_a_camera_that_answers_without_credentials(
    onvif_sim: OnvifSimulator,
) -> None:
    onvif_sim.preauth_operations.update({"GetDeviceInformation", "GetNetworkInterfaces"})

    identity = await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", ""), identify=True)

    assert identity is not None
    assert (identity.mac, identity.serial_number) == ("02:00:5e:10:00:01", "SIM-0001")


async def test_probe_identity_without_interfaces_is_the_serial(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.preauth_operations.add("GetDeviceInformation")

    identity = await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", ""), identify=True)

    assert identity is not None
    assert (identity.mac, identity.serial_number) == (None, "SIM-0001")


async def test_probe_has_no_identity_when_the_camera_wants_credentials(
    onvif_sim: OnvifSimulator,
) -> None:
    assert await _probe(OnvifCamera(onvif_sim.host, onvif_sim.port, "", ""), identify=True) is None
    assert onvif_sim.requests == ["GetSystemDateAndTime", "GetDeviceInformation"]


# ----------------------------------------------------------------------- WSDL parsing


async def test_each_wsdl_is_parsed_once_off_the_loop_for_every_service_client(
    onvif_sim: OnvifSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten cameras starting at once, then events services: one parse per WSDL, never on the loop.

    The library's cache starts empty for this test, and its parser is wrapped (still run) to
    record which file it parsed on which thread.
    """
    monkeypatch.setattr(onvif_client, "_DOCUMENT_CACHE", {})
    parses: list[tuple[str, int]] = []
    original: Callable[..., Any] = onvif_client.DocumentWithDeferredLoad.original_load

    def recording(document: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        parses.append((url.rsplit("/", 1)[-1], threading.get_ident()))
        return original(document, url, *args, **kwargs)

    monkeypatch.setattr(onvif_client.DocumentWithDeferredLoad, "original_load", recording)
    loop_thread = threading.get_ident()
    clients = [camera_for(onvif_sim) for _ in range(10)]
    try:
        infos = await asyncio.gather(*(client.async_connect() for client in clients))
        assert all(info.identity.serial_number == "SIM-0001" for info in infos)
        # The events client (another workstream) builds its services through the same library.
        devices = [client._device for client in clients[:3]]
        await asyncio.gather(*(device.create_events_service() for device in devices if device))
    finally:
        for client in clients:
            await client.async_close()

    names = [name for name, _ in parses]
    assert sorted(names) == sorted(set(names))
    assert {"devicemgmt.wsdl", "media.wsdl", "events.wsdl"} <= set(names)
    assert all(thread != loop_thread for _, thread in parses)


# ----------------------------------------------------------------------- parsing, in detail


def test_addresses_from_interfaces() -> None:
    """Manual, DHCP and link-local addresses of enabled interfaces, IPv4 and IPv6, deduplicated."""
    ns = SimpleNamespace
    interfaces = [
        ns(
            Enabled=True,
            IPv4=ns(
                Config=ns(
                    Manual=[ns(Address="192.168.1.64"), ns(Address="not-an-ip")],
                    FromDHCP=ns(Address="10.0.0.5"),
                    LinkLocal=None,
                )
            ),
            IPv6=ns(Config=ns(FromRA=[ns(Address="fd00::5")], Manual=[])),
        ),
        ns(Enabled=False, IPv4=ns(Config=ns(Manual=[ns(Address="172.16.0.1")]))),
        ns(Enabled=True, IPv4=None),
        ns(Enabled=True, IPv4=ns(Config=ns(Manual=[ns(Address="192.168.1.64")]))),
    ]

    assert addresses_from_interfaces(interfaces) == ("10.0.0.5", "192.168.1.64", "fd00::5")
    assert addresses_from_interfaces(None) == ()


def test_video_profiles_tolerate_odd_sizes() -> None:
    ns = SimpleNamespace
    profiles = [
        # An encoder without a usable resolution: the source's bounds stand in.
        ns(
            token="a",
            Name="A",
            VideoEncoderConfiguration=ns(Encoding="H264", Resolution=ns(Width="x", Height=None)),
            VideoSourceConfiguration=ns(Bounds=ns(width=1280, height=720)),
        ),
        # Neither: 0 x 0, which the labels leave out.
        ns(token="b", Name=None, VideoEncoderConfiguration=None, VideoSourceConfiguration=ns()),
        # Audio only: no video profile.
        ns(token="c", Name="C", VideoEncoderConfiguration=None, VideoSourceConfiguration=None),
    ]

    assert video_profiles(profiles) == [
        ("a", "A", "H264", 1280, 720, None),
        ("b", "b", "", 0, 0, None),
    ]
