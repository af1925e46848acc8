"""Helpers of the detection tests inside Home Assistant (this module holds no tests itself).

The detection tests run the real pieces: the ONVIF simulator as the camera, the real detector
server process (tests/detection/support.py) or the local TFLite model as the detector, and Home
Assistant with the integration's entities. Time moves only by `freezer` ticks: the integration's
frame loop, off delay and back-off run on Home Assistant's (frozen) clock, so a test steps
through minutes of simulated time in milliseconds, and asserts on what happened, never on how
long it took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
import io
import json
from pathlib import Path
import shutil
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import format_mac
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.home_security_intel.const import (
    API_HSI,
    CONF_API,
    CONF_API_KEY,
    CONF_DETECTOR,
    CONF_DETECTOR_KIND,
    CONF_ENGINE,
    CONF_ENTRY_TYPE,
    CONF_FINGERPRINT,
    CONF_FRAME_SOURCE,
    CONF_HOST,
    CONF_MODEL,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROFILES,
    CONF_URL,
    CONF_USERNAME,
    DETECTOR_AUTO,
    DETECTOR_KIND_LOCAL,
    DETECTOR_KIND_SERVER,
    DOMAIN,
    ENGINE_TFLITE,
    ENTRY_TYPE_DETECTOR,
    FRAME_SOURCE_SNAPSHOT,
    MODELS_DIR,
)
from custom_components.home_security_intel.onvif import normalize_mac
from tests.common import setup_entry
from tests.detection.support import LOCAL_MODEL, DetectorServer
from tests.support.onvif_sim import OnvifSimulator

FRAME_S = 1.0  # the default rate: one frame a second
PACKAGE_LOGGER = "custom_components.home_security_intel"
WIDTH, HEIGHT = 1280, 720
PERSON = {"x_min": 400, "y_min": 150, "x_max": 600, "y_max": 650}

type Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(detections: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": {"width": WIDTH, "height": HEIGHT},
        "detections": detections,
        "timings_ms": {"inference": 12.0},
    }


class HostileDetector:
    """Our detector API on 127.0.0.1; ``behaviour`` decides every answer. Counts requests."""

    def __init__(self, freezer: FrozenDateTimeFactory) -> None:
        self.freezer = freezer
        self.behaviour: Behaviour = self.good
        self.requests = 0
        app = web.Application()
        app.router.add_post("/v1/detect", self._detect)
        app.router.add_get("/health", self._health)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def _detect(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        return await self.behaviour(request)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"model": "hostile", "version": "0", "queue_depth": 0})

    # --- behaviours ------------------------------------------------------------------------------

    async def good(self, request: web.Request) -> web.StreamResponse:
        """One confident person, always in the same place."""
        return web.json_response(answer([{"label": "person", "confidence": 0.9, "box": PERSON}]))

    async def slow(self, request: web.Request) -> web.StreamResponse:
        """Answers only after longer than the client waits (10 s) in simulated time."""
        self.freezer.tick(15)
        return await self.good(request)

    async def error_500(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="Internal Server Error")

    async def wrong_json(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"predictions": "none of your business", "success": True})

    async def not_json(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="{'detections': [", content_type="application/json")

    async def nan_scores(self, request: web.Request) -> web.StreamResponse:
        body = json.dumps(answer([{"label": "person", "confidence": 0.9, "box": PERSON}]))
        return web.Response(text=body.replace("0.9", "NaN"), content_type="application/json")

    async def outside(self, request: web.Request) -> web.StreamResponse:
        """Boxes far outside the frame (clipped into it), one entirely outside (dropped)."""
        boxes = [
            {"x_min": -5000, "y_min": -300, "x_max": 600, "y_max": 650},
            {"x_min": 9000, "y_min": 9000, "x_max": 9500, "y_max": 9900},
        ]
        return web.json_response(
            answer([{"label": "person", "confidence": 0.9, "box": box} for box in boxes])
        )

    async def flood(self, request: web.Request) -> web.StreamResponse:
        """10,000 boxes (a grid of small ones, the same every frame)."""
        detections = [
            {
                "label": "person",
                "confidence": 0.5 + (i % 50) / 100,
                "box": {
                    "x_min": (i % 100) * 12,
                    "y_min": (i // 100) * 7,
                    "x_max": (i % 100) * 12 + 11,
                    "y_max": (i // 100) * 7 + 6,
                },
            }
            for i in range(10_000)
        ]
        return web.json_response(answer(detections))

    async def unauthorized(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="bad key")

    async def busy(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="busy", headers={"Retry-After": "1"})


@asynccontextmanager
async def hostile_detector(freezer: FrozenDateTimeFactory) -> AsyncIterator[HostileDetector]:
    """A started hostile detector (for a fixture), answering well until told otherwise."""
    detector = HostileDetector(freezer)
    await detector.server.start_server()
    try:
        yield detector
    finally:
        await detector.server.close()


def camera_entry(sim: OnvifSimulator, **options: Any) -> MockConfigEntry:
    """A camera entry for the simulator with detection (detector auto unless told)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Cam",
        unique_id=format_mac(sim.config.mac or ""),
        data={
            CONF_HOST: sim.host,
            CONF_PORT: sim.port,
            CONF_USERNAME: sim.config.username,
            CONF_PASSWORD: sim.config.password,
        },
        options={
            CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
            CONF_PROFILES: [sim.config.profiles[0].token],
            CONF_DETECTOR: DETECTOR_AUTO,
            **options,
        },
    )


def server_entry(url: str, api: str = API_HSI, title: str = "Det") -> MockConfigEntry:
    """A detector entry for a detector server at ``url``."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=url,
        data={
            CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
            CONF_DETECTOR_KIND: DETECTOR_KIND_SERVER,
            CONF_URL: url,
            CONF_API: api,
            CONF_API_KEY: None,
            CONF_FINGERPRINT: None,
        },
    )


def install_local_model(hass: HomeAssistant) -> str:
    """Copy fhempy's SSD MobileNet (and its label map) where local detectors look; its name."""
    assert LOCAL_MODEL is not None
    target = Path(hass.config.path(MODELS_DIR)) / "ssd"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOCAL_MODEL, target / "detect.tflite")
    shutil.copy(LOCAL_MODEL.with_name("labelmap.txt"), target / "labelmap.txt")
    return "ssd/detect.tflite"


def local_entry(model: str, title: str = "Local") -> MockConfigEntry:
    """A detector entry for the local TFLite model ``model`` (a name under the models folder)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=f"local_{model}",
        data={
            CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
            CONF_DETECTOR_KIND: DETECTOR_KIND_LOCAL,
            CONF_ENGINE: ENGINE_TFLITE,
            CONF_MODEL: model,
        },
    )


def detector_server(tmp: Path) -> Iterator[DetectorServer]:
    """The real server process (for a module-scoped fixture), stopped afterwards."""
    server = DetectorServer(tmp, [], None).start()
    try:
        yield server
    finally:
        server.stop()


def plain_jpeg(path: Path, size: tuple[int, int] = (1280, 720)) -> Path:
    """Write a featureless grey JPEG: a frame in which the model finds nothing."""
    Image.new("RGB", size, (120, 120, 120)).save(path, format="JPEG")
    return path


def is_jpeg(data: bytes) -> bool:
    """Whether ``data`` decodes completely as a JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format == "JPEG"


def camera_unique_id(sim: OnvifSimulator, key: str) -> str:
    """The unique id of the camera's entity ``key``."""
    return f"{normalize_mac(sim.config.mac or '')}_{key}"


def entity_id(hass: HomeAssistant, sim: OnvifSimulator, domain: str, key: str) -> str:
    """The entity id of one of the camera's entities, by its unique id key."""
    unique_id = camera_unique_id(sim, key)
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert found is not None, f"{domain} {unique_id} not registered"
    return found


def detector_entity_id(hass: HomeAssistant, entry: MockConfigEntry, domain: str, key: str) -> str:
    """The entity id of one of a detector's entities."""
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None
    return found


def state(hass: HomeAssistant, entity: str) -> State:
    """The entity's state (it must exist)."""
    found = hass.states.get(entity)
    assert found is not None, entity
    return found


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let ``seconds`` of simulated time pass and run everything that came due."""
    freezer.tick(seconds)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def frames(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, count: int, step: float = FRAME_S
) -> None:
    """Let ``count`` frame slots pass, one at a time (each frame finishes before the next)."""
    for _ in range(count):
        await advance(hass, freezer, step + 0.01)


class StateRecorder:
    """Every state an entity takes, in order (to prove something never happened)."""

    def __init__(self, hass: HomeAssistant, entity: str) -> None:
        """Start recording ``entity``'s state changes."""
        self.states: list[str] = []
        self.events: list[State] = []

        @callback
        def _changed(event: Event[Any]) -> None:
            if event.data["entity_id"] == entity and (new := event.data["new_state"]) is not None:
                self.states.append(new.state)
                self.events.append(new)

        self.unsub = hass.bus.async_listen("state_changed", _changed)

    def fired(self, label: str | None = None) -> list[dict[str, Any]]:
        """An event entity's firings (attributes), of objects of ``label`` if given."""
        return [
            dict(s.attributes)
            for s in self.events
            if "event_type" in s.attributes
            and s.attributes["event_type"] is not None
            and (label is None or s.attributes.get("label") == label)
        ]

    @property
    def transitions(self) -> list[str]:
        """The states taken, repeats (attribute-only changes) left out."""
        return [s for i, s in enumerate(self.states) if i == 0 or self.states[i - 1] != s]


needs_local_model = pytest.mark.skipif(
    LOCAL_MODEL is None,
    reason="fhempy's TFLite model is not installed in .venv (run scripts/setup)",
)


async def add(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add and set up an entry; for a camera, wait for its first frame too."""
    await setup_entry(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry
