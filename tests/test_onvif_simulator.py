"""The ONVIF camera simulator, driven through the real onvif-zeep-async client and aiohttp."""

from __future__ import annotations

import argparse
import asyncio
import base64
from collections.abc import AsyncGenerator
import datetime as dt
import hashlib
import os
from pathlib import Path
import re
import secrets
import signal
from unittest.mock import patch
from xml.etree import ElementTree as ET

import aiohttp
from ifaddr._posix import get_adapters as real_get_adapters
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFError
from onvif.util import is_auth_error
import pytest
from wsdiscovery.discovery import ThreadedWSDiscovery
from wsdiscovery.qname import QName
from zeep.exceptions import Fault, TransportError

from tests.support.onvif_sim import (
    SAMPLE_IMAGES,
    OnvifSimulator,
    SimConfig,
    fixtures as sim_fixtures,
)
from tests.support.onvif_sim.__main__ import _parse_args, serve
from tests.support.onvif_sim.announce import Announcer
from tests.support.onvif_sim.events import parse_duration, parse_termination
from tests.support.onvif_sim.http_auth import DigestAuthenticator, verify_basic
from tests.support.onvif_sim.soap import MAX_BODY_BYTES
from tests.support.onvif_sim.wsse import NonceCache, verify_username_token

# The lead's tests/conftest.py will import this fixture too; binding it here keeps this module
# runnable on its own.
onvif_sim = sim_fixtures.onvif_sim

PASSWORD = "correct-horse-battery"
MOTION_TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
ALARM_TOPIC = "tns1:VideoSource/MotionAlarm"
NVT = "http://www.onvif.org/ver10/network/wsdl"


@pytest.fixture
async def camera(onvif_sim: OnvifSimulator) -> AsyncGenerator[ONVIFCamera]:
    """A real ONVIFCamera client with clock-skew adjustment, connected to the simulator."""
    cam = ONVIFCamera(onvif_sim.host, onvif_sim.port, "admin", PASSWORD, adjust_time=True)
    yield cam
    await cam.close()


async def _connect(cam: ONVIFCamera) -> None:
    await cam.update_xaddrs()  # type: ignore[no-untyped-call]


def _client(sim: OnvifSimulator, password: str = PASSWORD, **kwargs: bool) -> ONVIFCamera:
    return ONVIFCamera(sim.host, sim.port, "admin", password, **kwargs)  # type: ignore[arg-type]


def _soap_request(operation: str, namespace: str, header: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        f"<s:Header>{header}</s:Header><s:Body><{operation} xmlns={namespace!r}/></s:Body>"
        "</s:Envelope>"
    ).encode()


def _username_token(password: str, created: str, nonce: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest())
    return (
        '<Security xmlns="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken><Username>admin</Username>'
        '<Password Type="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest.decode()}</Password>'
        f"<Nonce>{base64.b64encode(nonce).decode()}</Nonce>"
        '<Created xmlns="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-wssecurity-utility-1.0.xsd">{created}</Created>'
        "</UsernameToken></Security>"
    )


async def _post(sim: OnvifSimulator, path: str, body: bytes) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.url + path, data=body) as response,
    ):
        return response.status, response.content_type, await response.text()


def _subcodes(fault: Fault) -> list[str]:
    return [code.localname for code in fault.subcodes or []]


def _items(message: object) -> tuple[str, str, str]:
    """(topic, data item name, data item value) of a pulled NotificationMessage."""
    payload = message.Message._value_1  # type: ignore[attr-defined]
    item = payload.Data.SimpleItem[0]
    return message.Topic._value_1, item.Name, item.Value  # type: ignore[attr-defined]


async def test_identity_network_and_media(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    assert camera.xaddrs["http://www.onvif.org/ver10/media/wsdl"] == (
        f"{onvif_sim.url}/onvif/media_service"
    )
    devicemgmt = await camera.create_devicemgmt_service()
    info = await devicemgmt.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.FirmwareVersion) == (
        "HSI Labs",
        "SimCam 4K",
        "1.2.3",
    )
    assert (info.SerialNumber, info.HardwareId) == ("SIM-0001", "simcam-hw1")
    interfaces = await devicemgmt.GetNetworkInterfaces()
    assert interfaces[0].Info.HwAddress == "02:00:5e:10:00:01"
    scopes = [scope.ScopeItem for scope in await devicemgmt.GetScopes()]
    assert "onvif://www.onvif.org/name/SimCam%204K" in scopes
    assert (await devicemgmt.GetHostname()).Name == "simcam-sim-0001"
    capabilities = await camera.get_capabilities()
    assert capabilities is not None
    assert capabilities["Events"]["WSPullPointSupport"] is True

    media = await camera.create_media_service()
    profiles = await media.GetProfiles()
    assert [p.token for p in profiles] == ["profile_main", "profile_sub"]
    sizes = [
        (
            p.VideoEncoderConfiguration.Resolution.Width,
            p.VideoEncoderConfiguration.Resolution.Height,
        )
        for p in profiles
    ]
    assert sizes == [(1920, 1080), (640, 360)]
    assert profiles[0].VideoEncoderConfiguration.Encoding == "H264"
    single = await media.GetProfile({"ProfileToken": "profile_sub"})
    assert single.Name == "SubStream"
    snapshot = await media.GetSnapshotUri({"ProfileToken": "profile_main"})
    assert snapshot.Uri == f"{onvif_sim.url}/snapshot/profile_main.jpg"
    stream = await media.GetStreamUri(
        {
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": "profile_sub",
        }
    )
    assert stream.Uri == "rtsp://127.0.0.1:8554/profile_sub"
    sources = await media.GetVideoSources()
    assert (sources[0].Resolution.Width, sources[0].Resolution.Height) == (1920, 1080)
    with pytest.raises(Fault) as err:
        await media.GetSnapshotUri({"ProfileToken": "nope"})
    assert "NoProfile" in _subcodes(err.value)
    assert onvif_sim.requests[:2] == ["GetSystemDateAndTime", "GetServices"]
    assert "GetStreamUri" in onvif_sim.requests


async def test_snapshot_through_library_digest(
    camera: ONVIFCamera, onvif_sim: OnvifSimulator
) -> None:
    await _connect(camera)
    first = await camera.get_snapshot("profile_main")
    second = await camera.get_snapshot("profile_sub")
    assert first == SAMPLE_IMAGES[0].read_bytes()
    assert second == SAMPLE_IMAGES[1].read_bytes()
    assert onvif_sim.snapshot_requests == 2


async def test_pullpoint_receives_motion(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    events = await camera.create_events_service()
    properties = await events.GetEventProperties()
    assert properties.FixedTopicSet is True
    lost: list[bool] = []
    manager = await camera.create_pullpoint_manager(
        dt.timedelta(seconds=60), lambda: lost.append(True)
    )
    pullpoint = manager.get_service()
    onvif_sim.set_motion(True)
    result = await pullpoint.PullMessages({"MessageLimit": 10, "Timeout": dt.timedelta(seconds=5)})
    assert [_items(m) for m in result.NotificationMessage] == [
        (MOTION_TOPIC, "IsMotion", "true"),
        (ALARM_TOPIC, "State", "true"),
    ]
    assert result.NotificationMessage[0].Message._value_1.PropertyOperation == "Changed"
    assert result.TerminationTime > result.CurrentTime

    await manager.set_synchronization_point()
    result = await pullpoint.PullMessages({"MessageLimit": 1, "Timeout": dt.timedelta(seconds=1)})
    assert [_items(m) for m in result.NotificationMessage] == [(MOTION_TOPIC, "IsMotion", "true")]
    assert result.NotificationMessage[0].Message._value_1.PropertyOperation == "Initialized"

    subscription = await camera.create_subscription_service("PullPointSubscription")
    renewed = await subscription.Renew("PT120S")
    assert renewed.TerminationTime - renewed.CurrentTime == dt.timedelta(seconds=120)
    await manager.shutdown()
    assert onvif_sim.requests[-1] == "Unsubscribe"
    with pytest.raises(Fault) as err:
        await pullpoint.PullMessages({"MessageLimit": 1, "Timeout": dt.timedelta(seconds=1)})
    assert "ResourceUnknownFault" in _subcodes(err.value)
    assert lost == []


async def test_pull_long_polls_until_motion(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    events = await camera.create_events_service()
    created = await events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"})
    camera.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = (
        created.SubscriptionReference.Address._value_1
    )
    pullpoint = await camera.create_pullpoint_service()
    empty = await pullpoint.PullMessages({"MessageLimit": 5, "Timeout": dt.timedelta(0)})
    assert empty.NotificationMessage == []
    poll = asyncio.create_task(
        pullpoint.PullMessages({"MessageLimit": 5, "Timeout": dt.timedelta(seconds=30)})
    )
    while onvif_sim.requests.count("PullMessages") < 2:  # noqa: ASYNC110 - server-side state
        await asyncio.sleep(0.01)
    onvif_sim.set_motion(False)
    result = await poll
    assert _items(result.NotificationMessage[0]) == (MOTION_TOPIC, "IsMotion", "false")
    subscription = await camera.create_subscription_service("PullPointSubscription")
    await subscription.Unsubscribe()


async def test_wrong_password_is_not_authorized(onvif_sim: OnvifSimulator) -> None:
    cam = _client(onvif_sim, "wrong", adjust_time=True)
    try:
        await _connect(cam)  # GetServices is PRE_AUTH, as on real cameras
        devicemgmt = await cam.create_devicemgmt_service()
        with pytest.raises(Fault) as err:
            await devicemgmt.GetDeviceInformation()
        assert is_auth_error(err.value)
        assert "NotAuthorized" in _subcodes(err.value)
        onvif_sim.auth_fault_status = 401
        with pytest.raises(Fault) as err:
            await devicemgmt.GetDeviceInformation()
        assert is_auth_error(err.value)
        # GetSnapshotUri itself is refused, so the library has no URI to fetch.
        assert await cam.get_snapshot("profile_main") is None
    finally:
        await cam.close()


async def test_password_change_at_runtime(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    devicemgmt = await camera.create_devicemgmt_service()
    await devicemgmt.GetDeviceInformation()
    onvif_sim.config.password = "rotated"
    with pytest.raises(Fault):
        await devicemgmt.GetDeviceInformation()


async def test_clock_skew_needs_library_adjustment(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.clock_skew = -3 * 3600
    naive = _client(onvif_sim)
    adjusting = _client(onvif_sim, adjust_time=True)
    try:
        await _connect(naive)
        with pytest.raises(Fault) as err:
            await (await naive.create_devicemgmt_service()).GetDeviceInformation()
        assert is_auth_error(err.value)
        await _connect(adjusting)
        diff: dt.timedelta | None = adjusting.dt_diff  # the library annotates it as None
        assert diff is not None
        assert abs(diff.total_seconds() + 3 * 3600) < 5
        info = await (await adjusting.create_devicemgmt_service()).GetDeviceInformation()
        assert info.SerialNumber == "SIM-0001"
        clock = await (await adjusting.create_devicemgmt_service()).GetSystemDateAndTime()
        assert clock.UTCDateTime.Date.Year >= 2000
    finally:
        await naive.close()
        await adjusting.close()


async def test_replayed_nonce_and_stale_created_are_refused(onvif_sim: OnvifSimulator) -> None:
    created = onvif_sim.camera_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    token = _username_token(PASSWORD, created, secrets.token_bytes(16))
    body = _soap_request("GetDeviceInformation", "http://www.onvif.org/ver10/device/wsdl", token)
    first = await _post(onvif_sim, "/onvif/device_service", body)
    replay = await _post(onvif_sim, "/onvif/device_service", body)
    assert first[0] == 200
    assert "SIM-0001" in first[2]
    assert replay[0] == 400
    assert "ter:NotAuthorized" in replay[2]
    old = (onvif_sim.camera_now() - dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = _username_token(PASSWORD, old, secrets.token_bytes(16))
    body = _soap_request("GetDeviceInformation", "http://www.onvif.org/ver10/device/wsdl", stale)
    assert (await _post(onvif_sim, "/onvif/device_service", body))[0] == 400
    text_password = token.replace("#PasswordDigest", "#PasswordText")
    body = _soap_request("GetScopes", "http://www.onvif.org/ver10/device/wsdl", text_password)
    assert (await _post(onvif_sim, "/onvif/device_service", body))[0] == 400


async def test_hostile_xml_and_unknown_operations(
    camera: ONVIFCamera, onvif_sim: OnvifSimulator
) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&b;</s:Body>'
        b"</s:Envelope>"
    )
    for body in (
        bomb,
        b"<not-xml",
        b"<Envelope/>",
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>',
    ):
        status, content_type, text = await _post(onvif_sim, "/onvif/device_service", body)
        assert (status, content_type) == (400, "application/soap+xml")
        assert "ter:WellFormed" in text
    status, _, _ = await _post(onvif_sim, "/onvif/device_service", b"x" * (MAX_BODY_BYTES + 1))
    assert status in {400, 413}
    assert onvif_sim.requests == []

    await _connect(camera)
    devicemgmt = await camera.create_devicemgmt_service()
    with pytest.raises(Fault) as err:
        await devicemgmt.GetUsers()
    assert "ActionNotSupported" in _subcodes(err.value)


async def test_malformed_answers(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    devicemgmt = await camera.create_devicemgmt_service()
    onvif_sim.malformed_xml = True
    with pytest.raises(TransportError) as err:
        await devicemgmt.GetDeviceInformation()
    assert "invalid XML" in str(err.value)
    assert onvif_sim.requests[-1] == "GetDeviceInformation"


async def test_hostile_uris_returned_verbatim(
    camera: ONVIFCamera, onvif_sim: OnvifSimulator
) -> None:
    onvif_sim.hostile_snapshot_uri = "http://169.254.169.254/latest/meta-data/?a=1&b=<x>"
    onvif_sim.hostile_stream_uri = "rtsp://user:pw@evil.example:554/../../etc/passwd"
    await _connect(camera)
    media = await camera.create_media_service()
    snapshot = await media.GetSnapshotUri({"ProfileToken": "profile_main"})
    assert snapshot.Uri == onvif_sim.hostile_snapshot_uri
    stream = await media.GetStreamUri(
        {
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": "profile_main",
        }
    )
    assert stream.Uri == onvif_sim.hostile_stream_uri


async def test_profile_faults(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    media = await camera.create_media_service()
    onvif_sim.nvr_profiles = True
    profiles = await media.GetProfiles()
    assert [p.VideoEncoderConfiguration for p in profiles] == [None, None]
    assert profiles[0].VideoSourceConfiguration.SourceToken == "video_source_0"
    onvif_sim.no_video_profiles = True
    profiles = await media.GetProfiles()
    assert [(p.VideoEncoderConfiguration, p.VideoSourceConfiguration) for p in profiles] == [
        (None, None),
        (None, None),
    ]
    onvif_sim.no_profiles = True
    assert await media.GetProfiles() == []
    with pytest.raises(Fault):
        await media.GetProfile({"ProfileToken": "profile_main"})


async def test_missing_mac(camera: ONVIFCamera, onvif_sim: OnvifSimulator) -> None:
    await _connect(camera)
    devicemgmt = await camera.create_devicemgmt_service()
    onvif_sim.no_mac = True
    with pytest.raises(Fault):
        await devicemgmt.GetNetworkInterfaces()
    onvif_sim.no_mac = False
    onvif_sim.config.mac = None
    assert await devicemgmt.GetNetworkInterfaces() == []


async def test_not_onvif_offline_and_slow(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.not_onvif = True
    status, content_type, text = await _post(onvif_sim, "/onvif/device_service", b"<x/>")
    assert (status, content_type) == (404, "text/html")
    assert "Not Found" in text
    cam = _client(onvif_sim, adjust_time=True)
    try:
        with pytest.raises((Fault, TransportError, ONVIFError)):
            await _connect(cam)
        onvif_sim.not_onvif = False
        onvif_sim.offline = True
        with pytest.raises(aiohttp.ClientError):
            await _post(onvif_sim, "/onvif/device_service", b"<x/>")
        with pytest.raises((aiohttp.ClientError, ONVIFError)):
            await _connect(cam)
    finally:
        await cam.close()
    onvif_sim.offline = False
    onvif_sim.delay = 30.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session:
        with pytest.raises(TimeoutError):
            await session.get(onvif_sim.url + "/snapshot/profile_main.jpg")


async def test_snapshot_http_auth_modes(onvif_sim: OnvifSimulator) -> None:
    url = onvif_sim.url + "/snapshot/profile_main.jpg"
    good = aiohttp.DigestAuthMiddleware("admin", PASSWORD)
    bad = aiohttp.DigestAuthMiddleware("admin", "wrong")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith('Digest realm="SimCam"')
        async with session.get(url, middlewares=(good,)) as response:
            assert (response.status, response.content_type) == (200, "image/jpeg")
            assert await response.read() == SAMPLE_IMAGES[0].read_bytes()
        async with session.get(url, middlewares=(bad,)) as response:
            assert response.status == 401
        async with session.get(onvif_sim.url + "/snapshot/nope.jpg") as response:
            assert response.status == 404
        async with session.get(onvif_sim.url + "/snapshot/profile_main.png") as response:
            assert response.status == 404

        onvif_sim.snapshot_auth = "basic"
        async with session.get(
            url, headers={"Authorization": aiohttp.encode_basic_auth("admin", PASSWORD)}
        ) as response:
            assert response.status == 200
        async with session.get(
            url, headers={"Authorization": aiohttp.encode_basic_auth("admin", "nope")}
        ) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Basic realm="SimCam"'

        onvif_sim.snapshot_auth = "none"
        async with session.get(url) as response:
            assert response.status == 200
        onvif_sim.config.images = []
        async with session.get(url) as response:
            assert response.status == 503
    assert onvif_sim.snapshot_requests == 3


def _digest_header(challenge: str, nc: str, password: str = PASSWORD, uri: str = "/a") -> str:
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert nonce is not None
    ha1 = hashlib.md5(f"admin:SimCam:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"GET:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce[1]}:{nc}:abc:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="admin", realm="SimCam", nonce="{nonce[1]}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="abc", response="{response}", algorithm=MD5'
    )


def test_digest_nonce_counting_and_basic_parsing() -> None:
    auth = DigestAuthenticator()
    challenge = auth.challenge()
    check = {"method": "GET", "uri": "/a", "username": "admin", "password": PASSWORD}
    assert auth.verify(_digest_header(challenge, "00000001"), **check) == (True, False)
    assert auth.verify(_digest_header(challenge, "00000001"), **check) == (False, False)
    assert auth.verify(_digest_header(challenge, "00000002"), **check) == (True, False)
    assert auth.verify(_digest_header(challenge, "zz"), **check) == (False, False)
    assert auth.verify(_digest_header(challenge, "00000003", uri="/b"), **check) == (False, False)
    unknown = challenge.replace('nonce="', 'nonce="x')
    assert auth.verify(_digest_header(unknown, "00000001"), **check) == (False, True)
    assert auth.verify("Basic abc", **check) == (False, False)
    assert auth.verify(None, **check) == (False, False)
    assert "stale=true" in auth.challenge(stale=True)
    assert not verify_basic("Basic !!!", username="admin", password=PASSWORD)
    assert not verify_basic("Digest x", username="admin", password=PASSWORD)
    assert not verify_basic(None, username="admin", password=PASSWORD)


def test_duration_and_termination_parsing() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_duration("PT1M30S") == dt.timedelta(seconds=90)
    assert parse_duration("P1DT1H") == dt.timedelta(days=1, hours=1)
    assert parse_duration("PT") is None
    assert parse_duration("soon") is None
    assert parse_termination(None, now) == now + dt.timedelta(seconds=60)
    assert parse_termination("2026-01-01T00:05:00Z", now) == now + dt.timedelta(minutes=5)
    assert parse_termination("2026-01-01T00:05:00", now) == now + dt.timedelta(minutes=5)
    assert parse_termination("later", now) is None


async def test_subscription_faults(onvif_sim: OnvifSimulator) -> None:
    cam = _client(onvif_sim, adjust_time=True)
    try:
        await _connect(cam)
        events = await cam.create_events_service()
        with pytest.raises(Fault):
            await events.CreatePullPointSubscription({"InitialTerminationTime": "PT0S"})
        created = await events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"})
        cam.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = (
            created.SubscriptionReference.Address._value_1
        )
        subscription = await cam.create_subscription_service("PullPointSubscription")
        with pytest.raises(Fault):
            await subscription.Renew("yesterday")
        onvif_sim.clock_skew = 120.0  # the subscription expires on the camera's clock
        cam.dt_diff = dt.timedelta(seconds=120)  # type: ignore[assignment]
        for service in list(cam.services.values()):
            await service.close()  # type: ignore[no-untyped-call]
        cam.services.clear()
        subscription = await cam.create_subscription_service("PullPointSubscription")
        with pytest.raises(Fault) as err:
            await subscription.Renew("PT60S")
        assert "ResourceUnknownFault" in _subcodes(err.value)
    finally:
        await cam.close()


async def test_demo_command_serves_until_interrupted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The password comes from the environment (a command line is visible to every local user).
    monkeypatch.setenv("HSI_SIM_PASSWORD", "demo-pw")
    args = _parse_args(["--port", "0", "--motion-every", "0.05"])
    server = asyncio.create_task(serve(args))
    ready = ""
    while "ready" not in ready:
        await asyncio.sleep(0.01)
        ready += capsys.readouterr().out
    port = int(re.search(r"port=(\d+)", ready)[1])  # type: ignore[index]
    assert "username=admin" in ready
    assert "demo-pw" not in ready  # the ready line goes to log files
    cam = ONVIFCamera("127.0.0.1", port, "admin", "demo-pw", adjust_time=True)
    try:
        await _connect(cam)
        info = await (await cam.create_devicemgmt_service()).GetDeviceInformation()
        assert info.Model == "SimCam 4K"
    finally:
        await cam.close()
    os.kill(os.getpid(), signal.SIGINT)
    await server
    assert "stopped" in capsys.readouterr().out


@pytest.mark.usefixtures("socket_enabled")
async def test_announce_is_discoverable(onvif_sim: OnvifSimulator) -> None:
    """Real WS-Discovery over multicast UDP (needs the socket_enabled escape hatch)."""
    announcer = Announcer(onvif_sim)
    # Home Assistant's test plugin replaces ifaddr.get_adapters with a fake 10.10.10.10 adapter for
    # the whole session; WS-Discovery must see the machine's real interfaces to multicast.
    with patch("ifaddr.get_adapters", real_get_adapters):
        await asyncio.to_thread(announcer.start)
        probe = ThreadedWSDiscovery()  # type: ignore[no-untyped-call]
        try:
            await asyncio.to_thread(probe.start)
            nvt = QName(NVT, "NetworkVideoTransmitter", "dn")  # type: ignore[no-untyped-call]
            found = await asyncio.to_thread(probe.searchServices, types=[nvt], timeout=1.5)
        finally:
            await asyncio.to_thread(probe.stop)
            await asyncio.to_thread(announcer.stop)
    xaddrs = [x for service in found for x in service.getXAddrs()]
    assert f"{onvif_sim.url}/onvif/device_service" in xaddrs


def test_defaults_and_wildcard_xaddr() -> None:
    sim = OnvifSimulator()
    assert sim.config == SimConfig()
    assert [p.token for p in sim.config.profiles] == ["profile_main", "profile_sub"]
    assert all(Path(p).is_file() for p in sim.config.images)
    sim.host, sim.port = "0.0.0.0", 8899
    assert Announcer(sim).xaddr == "http://{ip}:8899/onvif/device_service"
    sim.host = "::1"
    assert sim.url == "http://[::1]:8899"
    assert isinstance(_parse_args([]), argparse.Namespace)


def test_username_token_edge_cases() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    check = {"username": "admin", "password": PASSWORD, "camera_now": now}
    created = "2026-01-01T12:00:01Z"

    def header(token: str) -> ET.Element:
        return ET.fromstring(f'<h xmlns:x="urn:x">{token}</h>')

    good = _username_token(PASSWORD, created, b"n" * 16)
    assert verify_username_token(None, nonces=NonceCache(), **check) is False  # type: ignore[arg-type]
    assert verify_username_token(header(""), nonces=NonceCache(), **check) is False  # type: ignore[arg-type]
    no_nonce = re.sub(r"<Nonce>[^<]*</Nonce>", "", good)
    assert verify_username_token(header(no_nonce), nonces=NonceCache(), **check) is False  # type: ignore[arg-type]
    bad_time = good.replace(created, "noon")
    assert verify_username_token(header(bad_time), nonces=NonceCache(), **check) is False  # type: ignore[arg-type]
    bad_nonce = re.sub(r"<Nonce>[^<]*</Nonce>", "<Nonce>!!</Nonce>", good)
    assert verify_username_token(header(bad_nonce), nonces=NonceCache(), **check) is False  # type: ignore[arg-type]
    naive = _username_token(PASSWORD, "2026-01-01T12:00:01", b"m" * 16)
    assert verify_username_token(header(naive), nonces=NonceCache(), **check) is True  # type: ignore[arg-type]
    nonces = NonceCache()
    assert nonces.check_and_remember(b"a", now)
    assert not nonces.check_and_remember(b"a", now)
    assert nonces.check_and_remember(b"a", now + dt.timedelta(hours=1))  # forgotten by then
