"""End to end: ``scripts/develop`` runs a real Home Assistant that onboards the demo camera.

Drives the same REST API the frontend uses: onboarding, the config flow (the detector server that
develop starts, then the camera: scan, manual address, wrong then right password), the camera
entity and its image, and then detection for real: the demo scene's person turns the person
occupancy sensor on, fires one detection event and triggers an automation, and leaving turns it
off; then the frame source is switched to RTSP in the options and the next visit is detected
from the camera's RTSP substream. Slow (Home Assistant starts for real and the scene plays in
real time), so there is one test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import pytest

from custom_components.home_security_intel.const import DOMAIN
from tests.support.onvif_sim.scene import demo_steps

ROOT = Path(__file__).parents[1]
PASSWORD = "develop-e2e-password"  # the demo camera's, made up for this test
START_TIMEOUT = 600.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HomeAssistantApi:
    """A tiny client of Home Assistant's REST API, as the frontend uses it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(self, method: str, path: str, data: Any = None, *, form: bool = False) -> Any:
        headers = {}
        body = None
        if data is not None:
            if form:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(data).encode()
                headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, body, headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            if response.headers.get("Content-Type", "").startswith("image/"):
                return raw
            return json.loads(raw or b"null")


@pytest.fixture
def develop(socket_enabled: None, tmp_path: Path) -> Iterator[HomeAssistantApi]:
    """scripts/develop on free ports in a temporary folder; stopped with its whole process group."""
    folder = tmp_path
    ha_port, camera_port, detector_port = _free_port(), _free_port(), _free_port()
    rtsp_port = _free_port()
    env = {
        **os.environ,
        "HSI_DEVELOP_DIR": str(folder),
        "HSI_HA_PORT": str(ha_port),
        "HSI_CAMERA_PORT": str(camera_port),
        "HSI_CAMERA_RTSP_PORT": str(rtsp_port),
        "HSI_DETECTOR_PORT": str(detector_port),
        "HSI_CAMERA_PASSWORD": PASSWORD,
    }
    log = (folder / "develop.log").open("w")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "develop")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = HomeAssistantApi(f"http://127.0.0.1:{ha_port}")
    api.camera_port = camera_port  # type: ignore[attr-defined]
    api.detector_url = f"http://127.0.0.1:{detector_port}"  # type: ignore[attr-defined]
    api.log = folder / "config" / "home-assistant.log"  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (folder / "develop.log").read_text()[-4000:]
            with contextlib.suppress(OSError, urllib.error.URLError):
                api.call("GET", "/api/onboarding")
                break
            assert time.monotonic() < deadline, "Home Assistant did not start"
            time.sleep(1)
        yield api
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _onboard(api: HomeAssistantApi) -> None:
    client_id = api.base + "/"
    user = api.call(
        "POST",
        "/api/onboarding/users",
        {
            "client_id": client_id,
            "name": "Developer",
            "username": "developer",
            "password": "developer-password",
            "language": "en",
        },
    )
    token = api.call(
        "POST",
        "/auth/token",
        {"grant_type": "authorization_code", "code": user["auth_code"], "client_id": client_id},
        form=True,
    )
    api.token = token["access_token"]


def _state(api: HomeAssistantApi, entity_id: str) -> dict[str, Any]:
    state: dict[str, Any] = api.call("GET", f"/api/states/{entity_id}")
    return state


def _wait_for(api: HomeAssistantApi, entity_id: str, wanted: str, timeout: float) -> None:
    """Poll an entity until it has the wanted state (the scene plays in real time)."""
    deadline = time.monotonic() + timeout
    state = None
    while state != wanted:
        try:
            state = _state(api, entity_id)["state"]
        except urllib.error.HTTPError as err:  # not there yet (an automation being reloaded)
            if err.code != 404:
                raise
        if state == wanted:
            break
        assert time.monotonic() < deadline, f"{entity_id} stayed {state}, wanted {wanted}"
        time.sleep(0.5)


def _add_detector(api: HomeAssistantApi) -> None:
    """Add integration -> a detector server: the form suggests the URL; develop's has no key."""
    flow = api.call("POST", "/api/config/config_entries/flow", {"handler": "home_security_intel"})
    assert (flow["type"], flow["menu_options"]) == ("menu", ["camera", "detector", "local_model"])
    flow_path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    flow = api.call("POST", flow_path, {"next_step_id": "detector"})
    assert flow["step_id"] == "detector"
    url = api.detector_url  # type: ignore[attr-defined]
    flow = api.call("POST", flow_path, {"url": url, "api": "hsi"})
    assert flow["type"] == "create_entry", flow
    assert flow["result"]["state"] == "loaded"


def _ws(api: HomeAssistantApi, *messages: dict[str, Any]) -> list[Any]:
    """Send messages over Home Assistant's WebSocket API (as the frontend does); the results."""

    async def run() -> list[Any]:
        url = api.base.replace("http://", "ws://") + "/api/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": api.token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            results = []
            for number, message in enumerate(messages, start=1):
                await ws.send_json({"id": number, **message})
                answer = await ws.receive_json()
                assert answer["success"], answer
                results.append(answer["result"])
            return results

    return asyncio.run(run())


def _check_rate(api: HomeAssistantApi, entry_id: str, *, motion: bool) -> None:
    """The camera's motion sensor, and the detection rate its diagnostics report (5/s with
    motion, the 1/s idle rate without)."""
    _wait_for(api, "binary_sensor.simcam_4k_motion", "on" if motion else "off", 60)
    diagnostics = api.call("GET", f"/api/diagnostics/config_entry/{entry_id}")["data"]
    rate = diagnostics["events"]["detection_rate"]
    assert rate == {"motion": motion, "target_fps": 5.0 if motion else 1.0}, rate


def _check_security_alert(api: HomeAssistantApi) -> None:
    """The visit is a high-risk alert with its snapshot in the media panel and on the calendar,
    and the blueprint's notification was sent."""
    deadline = time.monotonic() + 60
    while _state(api, "binary_sensor.simcam_4k_alert_active")["state"] != "on":
        assert time.monotonic() < deadline, "no alert"
        time.sleep(0.5)
    risk = _state(api, "sensor.simcam_4k_risk_level")
    assert risk["state"] in ("high", "critical")
    assert "person at night" in risk["attributes"]["reasons"]
    security = _state(api, "event.simcam_4k_security_event")["attributes"]
    event_id = security["event_id"]
    assert security["severity"] == "alert"
    # The snapshot, in the media panel: cameras -> days -> events -> frames.
    (root,) = _ws(
        api, {"type": "media_source/browse_media", "media_content_id": f"media-source://{DOMAIN}"}
    )
    (camera,) = root["children"]
    (days,) = _ws(
        api, {"type": "media_source/browse_media", "media_content_id": camera["media_content_id"]}
    )
    (events,) = _ws(
        api,
        {
            "type": "media_source/browse_media",
            "media_content_id": days["children"][0]["media_content_id"],
        },
    )
    (shown,) = [e for e in events["children"] if event_id in e["media_content_id"]]
    (frames_,) = _ws(
        api, {"type": "media_source/browse_media", "media_content_id": shown["media_content_id"]}
    )
    annotated = next(f for f in frames_["children"] if f["media_content_id"].endswith("/annotated"))
    (resolved,) = _ws(
        api,
        {"type": "media_source/resolve_media", "media_content_id": annotated["media_content_id"]},
    )
    picture = api.call("GET", resolved["url"])
    assert picture[:3] == b"\xff\xd8\xff"
    # On the calendar.
    now = time.time()
    window = urllib.parse.urlencode(
        {
            "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 3600)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + 3600)),
        }
    )
    listed = api.call("GET", f"/api/calendars/calendar.simcam_4k_security_events?{window}")
    assert any(item.get("uid") == event_id for item in listed), listed
    # The blueprint's notification, once for the event (its tag is the notification id).
    deadline = time.monotonic() + 30
    while True:
        (notifications,) = _ws(api, {"type": "persistent_notification/get"})
        ours = [n for n in notifications if n["notification_id"] == f"hsi-{event_id}"]
        if ours:
            break
        assert time.monotonic() < deadline, notifications
        time.sleep(0.5)
    assert ours[0]["title"] == security["title"]


def test_develop_onboards_the_demo_camera(develop: HomeAssistantApi) -> None:
    """From "Add integration" to a camera whose person detection drives an automation."""
    api = develop
    _onboard(api)
    # Automations attach their triggers only once Home Assistant has finished starting.
    deadline = time.monotonic() + START_TIMEOUT
    while api.call("GET", "/api/config")["state"] != "RUNNING":
        assert time.monotonic() < deadline, "Home Assistant did not finish starting"
        time.sleep(1)
    _add_detector(api)
    # A person-detected automation, made the way the automation editor saves one; before the
    # camera, so that the person's arrival is a change it sees whichever part of the scene plays.
    api.call(
        "POST",
        "/api/config/automation/config/person_at_the_door",
        {
            "id": "person_at_the_door",
            "alias": "Person at the door",
            "triggers": [
                {"trigger": "state", "entity_id": "binary_sensor.simcam_4k_person", "to": "on"}
            ],
            "actions": [{"event": "hsi_person_seen"}],
        },
    )
    _wait_for(api, "automation.person_at_the_door", "on", 60)
    # Night, and nobody home (the states the sun and zone integrations keep): the demo person
    # becomes a high-risk alert. The shipped blueprint notifies it through a real notifier,
    # Home Assistant's persistent notifications.
    api.call("POST", "/api/states/sun.sun", {"state": "below_horizon"})
    api.call("POST", "/api/states/zone.home", {"state": "0"})
    api.call(
        "POST",
        "/api/config/automation/config/security_alerts",
        {
            "id": "security_alerts",
            "alias": "Security alerts",
            "use_blueprint": {
                "path": "home_security_intel/notify_on_alert.yaml",
                "input": {
                    "security_events": ["event.simcam_4k_security_event"],
                    "notify_actions": ["notify.persistent_notification"],
                    "min_level": "high",
                },
            },
        },
    )
    _wait_for(api, "automation.security_alerts", "on", 60)
    flow = api.call("POST", "/api/config/config_entries/flow", {"handler": "home_security_intel"})
    flow_path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    flow = api.call("POST", flow_path, {"next_step_id": "camera"})
    assert (flow["type"], flow["progress_action"]) == ("progress", "scan")
    for _ in range(60):
        if flow["type"] != "progress":
            break
        time.sleep(0.5)
        flow = api.call("GET", flow_path)
    if flow["step_id"] == "pick":
        flow = api.call("POST", flow_path, {"camera": "manual"})
    assert flow["step_id"] == "manual"

    flow = api.call("POST", flow_path, {"host": "127.0.0.1", "port": api.camera_port})  # type: ignore[attr-defined]
    assert flow["step_id"] == "credentials", flow
    # The name the newcomer types (the suggestion, "SimCam 4K (127.0.0.1:port)", tells two
    # cameras of one model apart).
    flow = api.call(
        "POST", flow_path, {"name": "SimCam 4K", "username": "admin", "password": "wrong-password"}
    )
    assert flow["errors"] == {"base": "invalid_auth"}
    flow = api.call(
        "POST", flow_path, {"name": "SimCam 4K", "username": "admin", "password": PASSWORD}
    )
    assert flow["type"] == "create_entry", flow
    assert flow["result"]["state"] == "loaded"

    cameras = [s for s in api.call("GET", "/api/states") if s["entity_id"].startswith("camera.")]
    assert [c["entity_id"] for c in cameras] == ["camera.simcam_4k_mainstream"]
    assert cameras[0]["state"] == "idle"
    image = api.call("GET", "/api/camera_proxy/camera.simcam_4k_mainstream")
    assert image[:3] == b"\xff\xd8\xff"
    # The demo camera plays the demo scene: whichever step is showing right now.
    assert image in {step.image for step in demo_steps()}

    # The scene loops every 100 s: a person is in view from 20 s to 70 s of each loop.
    _wait_for(api, "binary_sensor.simcam_4k_person", "on", 130)
    assert _state(api, "sensor.simcam_4k_person_count")["state"] == "1"
    event = _state(api, "event.simcam_4k_detection")
    assert event["attributes"]["event_type"] == "person_detected"
    assert event["attributes"]["label"] == "person"
    first_object = event["attributes"]["object_id"]
    deadline = time.monotonic() + 30
    while _state(api, "automation.person_at_the_door")["attributes"]["last_triggered"] is None:
        assert time.monotonic() < deadline, "the automation did not run"
        time.sleep(0.5)
    drawn = api.call("GET", "/api/image_proxy/image.simcam_4k_last_detection")
    assert drawn[:3] == b"\xff\xd8\xff"
    assert drawn not in {step.image for step in demo_steps()}  # boxes drawn on it
    _check_security_alert(api)
    # The demo camera's PullPoint motion follows its person: detection runs at the motion rate.
    _check_rate(api, flow["result"]["entry_id"], motion=True)
    # The person leaves: off after the off delay, and that visit fired one event only.
    _wait_for(api, "binary_sensor.simcam_4k_person", "off", 90)
    assert _state(api, "event.simcam_4k_detection")["attributes"]["object_id"] == first_object
    _check_rate(api, flow["result"]["entry_id"], motion=False)

    # Options -> Frame source "RTSP video stream": the next visit is seen from the stream.
    entry_id = flow["result"]["entry_id"]
    options = api.call("POST", "/api/config/config_entries/options/flow", {"handler": entry_id})
    assert options["step_id"] == "init"
    options = api.call(
        "POST",
        f"/api/config/config_entries/options/flow/{options['flow_id']}",
        {
            "detector": "auto",
            "frame_source": "rtsp",
            "profiles": ["profile_main"],
            "detection": {
                "detection_profile": "auto",
                "fps": 1.0,
                "groups": ["person", "vehicle", "animal"],
                "min_score": 0.5,
                "confirm_threshold": 0.7,
                "min_area": 0.0,
                "max_area": 1.0,
                "off_delay": 5.0,
            },
            "zones_and_masks": {},
        },
    )
    assert options["type"] == "create_entry", options
    _wait_for(api, "binary_sensor.simcam_4k_person", "on", 130)
    log = api.log.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    opened = [line for line in log.splitlines() if "RTSP session open" in line]
    assert opened, "detection did not open the RTSP stream"
    assert "(SubStream)" in opened[-1]  # the substream, not the 1920x1080 main stream
    assert "640x360" in opened[-1]

    # Nothing of ours went wrong in Home Assistant's log, and the password never reached it.
    log = api.log.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    ours = [
        line
        for line in log.splitlines()
        if ("ERROR" in line or "WARNING" in line)
        and "home_security_intel" in line
        # Home Assistant's notice for every custom integration.
        and "We found a custom integration" not in line
    ]
    assert ours == []
    assert PASSWORD not in log
