"""One camera's detection loop: frame -> detector -> filters -> tracker -> state -> entities.

A ``DataUpdateCoordinator`` drives it: each refresh takes one snapshot, sends it to the camera's
detector through the shared ``DetectorHub`` and runs the pure pipeline over the answer. The next
frame is scheduled only when this one is done, so there is never more than one frame in flight
per camera and a slow camera or detector slows nobody else; frames that could not be taken in time
are counted as dropped, never queued. A failed snapshot makes the refresh fail: the detection
entities go unavailable (one log line), the camera entity does not. A detector that is down is
the hub's to report (one line for all its cameras) and to probe: meanwhile the cameras take no
snapshots and their detection entities are unavailable. A frame that is no picture (truncated,
an HTML page) is skipped and counted; a busy detector drops the frame. Events go out after the
frame's data is published, so the event entity is available when they fire. Entities start
empty after a restart and change only on what frames say: nothing is restored. The rate follows
the camera's ONVIF motion events (``async_set_motion``, see ``target_fps``): faster while it
reports motion, slower (or none) without; the steady rate while its events are not known.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import logging
import time
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CONFIRM_THRESHOLD,
    CONF_DETECTION_ENABLED,
    CONF_DETECTION_PROFILE,
    CONF_DETECTOR,
    CONF_FPS,
    CONF_FRAME_SOURCE,
    CONF_GROUPS,
    CONF_MASKS,
    CONF_MAX_AREA,
    CONF_MIN_AREA,
    CONF_MIN_SCORE,
    CONF_MOTION_FPS,
    CONF_OFF_DELAY,
    CONF_ZONES,
    DEFAULT_CONFIRM_THRESHOLD,
    DEFAULT_FPS,
    DEFAULT_FRAME_SOURCE,
    DEFAULT_MAX_AREA,
    DEFAULT_MIN_AREA,
    DEFAULT_MIN_SCORE,
    DEFAULT_MOTION_FPS,
    DEFAULT_OFF_DELAY_S,
    DETECTION_PROFILE_AUTO,
    DETECTOR_AUTO,
    DOMAIN,
)
from .data import is_detector_entry
from .detection.model import (
    GROUPS,
    DetectorBusy,
    DetectorError,
    DetectorResult,
    InvalidImage,
)
from .detector_hub import DetectorHub, DetectorUnavailable
from .frame_sources import StreamSessions, build_frame_source
from .onvif import NotAnImage, OnvifError, VideoProfile
from .pipeline.draw import AnnotatedBox, annotate
from .pipeline.filters import FilterConfig, Zone, parse_masks, parse_zones
from .pipeline.frames import FrameSource, SnapshotSource
from .pipeline.rtsp import RtspError
from .pipeline.state import DetectionPipeline, FrameOutcome, ObjectEvent
from .pipeline.tracker import TrackerConfig

if TYPE_CHECKING:
    from .data import HsiConfigEntry

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """A camera's detection options, validated and with defaults filled in."""

    detector: str = DETECTOR_AUTO
    enabled: bool = True
    fps: float = DEFAULT_FPS
    """Frames per second without motion (0: only on motion); the steady rate without events."""
    motion_fps: float = DEFAULT_MOTION_FPS
    """Frames per second while the camera reports motion."""
    groups: tuple[str, ...] = GROUPS
    min_score: float = DEFAULT_MIN_SCORE
    confirm_threshold: float = DEFAULT_CONFIRM_THRESHOLD
    min_area: float = DEFAULT_MIN_AREA
    max_area: float = DEFAULT_MAX_AREA
    zones: tuple[Zone, ...] = ()
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    off_delay: float = DEFAULT_OFF_DELAY_S
    frame_source: str = DEFAULT_FRAME_SOURCE
    profile: str = DETECTION_PROFILE_AUTO
    """The media profile detection reads (a token), or auto: see frame_sources."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DetectionSettings:
        """Read the entry's options; text the options flow validated is parsed again here."""
        groups = tuple(g for g in GROUPS if g in options.get(CONF_GROUPS, GROUPS))
        return cls(
            detector=options.get(CONF_DETECTOR, DETECTOR_AUTO),
            enabled=options.get(CONF_DETECTION_ENABLED, True),
            fps=float(options.get(CONF_FPS, DEFAULT_FPS)),
            motion_fps=float(options.get(CONF_MOTION_FPS, DEFAULT_MOTION_FPS)),
            groups=groups,
            min_score=float(options.get(CONF_MIN_SCORE, DEFAULT_MIN_SCORE)),
            confirm_threshold=float(options.get(CONF_CONFIRM_THRESHOLD, DEFAULT_CONFIRM_THRESHOLD)),
            min_area=float(options.get(CONF_MIN_AREA, DEFAULT_MIN_AREA)),
            max_area=float(options.get(CONF_MAX_AREA, DEFAULT_MAX_AREA)),
            zones=parse_zones(options.get(CONF_ZONES, "")),
            masks=parse_masks(options.get(CONF_MASKS, "")),
            off_delay=float(options.get(CONF_OFF_DELAY, DEFAULT_OFF_DELAY_S)),
            frame_source=options.get(CONF_FRAME_SOURCE, DEFAULT_FRAME_SOURCE),
            profile=options.get(CONF_DETECTION_PROFILE) or DETECTION_PROFILE_AUTO,
        )

    def filter_config(self) -> FilterConfig:
        """The pipeline's filter stage for these settings."""
        return FilterConfig(
            groups=frozenset(self.groups),
            min_score=self.min_score,
            min_area=self.min_area,
            max_area=self.max_area,
            zones=self.zones,
            masks=self.masks,
        )

    def tracker_config(self) -> TrackerConfig:
        """The pipeline's tracker stage for these settings."""
        return TrackerConfig(confirm_threshold=self.confirm_threshold)

    def occupancy_keys(self) -> list[tuple[str, str | None]]:
        """(group, zone slug or None) of every occupancy sensor these settings call for."""
        keys: list[tuple[str, str | None]] = [(group, None) for group in self.groups]
        for zone in self.zones:
            keys.extend(
                (group, zone.slug)
                for group in self.groups
                if not zone.groups or group in zone.groups
            )
        return keys


def target_fps(settings: DetectionSettings, motion: bool | None) -> float:
    """Frames per second for these settings and what the camera's events say.

    With events: ``motion_fps`` while there is motion, else ``fps`` (0: no frames until the next
    motion). Without events (``motion`` None: the camera has none, or they are down) ``fps`` is the
    steady rate, and 0 cannot mean "never": such a camera gets DEFAULT_FPS.
    """
    if motion is None:
        return settings.fps if settings.fps > 0 else DEFAULT_FPS
    return settings.motion_fps if motion else settings.fps


def _interval(settings: DetectionSettings, motion: bool | None) -> timedelta | None:
    fps = target_fps(settings, motion)
    if not settings.enabled or fps <= 0:
        return None
    return timedelta(seconds=1.0 / fps)


def occupancy_key(group: str, zone_slug: str | None) -> str:
    """The pipeline's occupancy key for a group, in the whole frame or in one zone."""
    return group if zone_slug is None else f"zone:{zone_slug}:{group}"


@dataclass(frozen=True, slots=True)
class DetectionData:
    """What the detection entities show; a new instance after every frame."""

    outcome: FrameOutcome | None = None
    """The latest frame's pipeline outcome; None until the first frame after (re)start."""
    occupied: frozenset[str] = frozenset()
    latency_ms: float | None = None
    frames_per_minute: int = 0
    frames_dropped: int = 0
    frames_invalid: int = 0
    last_error: str | None = None
    frame: bytes | None = field(default=None, repr=False)
    """The latest frame worth showing (new objects came, or the objects in view changed), raw."""
    frame_boxes: tuple[AnnotatedBox, ...] = ()
    """What to draw on ``frame``: drawn only when somebody asks for the image."""
    image_updated: datetime | None = None
    last_result: DetectorResult | None = field(default=None, repr=False)
    waiting_for_detector: bool = False
    """No detector this camera could use is loaded (entities unavailable, not an error)."""
    detector_down: bool = False
    """The camera's detector is known to be down (entities unavailable; the hub logs it)."""
    target_fps: float | None = None
    """The frame rate aimed at now (it follows the camera's motion events)."""

    def count(self, group: str) -> int:
        """Confirmed objects of a group in view."""
        return self.outcome.counts.get(group, 0) if self.outcome else 0


class DetectionCoordinator(DataUpdateCoordinator[DetectionData]):
    """Runs one camera's frames through its detector and the pipeline."""

    config_entry: HsiConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HsiConfigEntry,
        profile: VideoProfile,
        settings: DetectionSettings,
        device_unique_id: str,
        streams: StreamSessions,
    ) -> None:
        """Prepare the loop; it starts with the first refresh (or never, when switched off)."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{entry.title} detection",
            update_interval=_interval(settings, None),
            always_update=False,
        )
        self.motion: bool | None = None
        """What the camera's events say about motion; None: no events (the steady rate)."""
        self.profile = profile
        camera = entry.runtime_data.camera
        self.frames: FrameSource = build_frame_source(
            settings.frame_source,
            profile,
            lambda: SnapshotSource(lambda: camera.async_get_snapshot(profile)),
            streams,
            entry.title,
        )
        """Where frames come from: the option's source, the stream when snapshots are unusable."""
        self._streams = streams
        self.settings = settings
        self.device_unique_id = device_unique_id
        self.pipeline = DetectionPipeline(
            settings.filter_config(), settings.tracker_config(), settings.off_delay
        )
        self.data = DetectionData(target_fps=self.target_fps)
        self._frame_lock = asyncio.Lock()
        self._frame_times: deque[float] = deque()
        self._last_frame_started: float | None = None
        self._event_listeners: list[Callable[[ObjectEvent], None]] = []
        self._hub: DetectorHub | None = None
        self._hub_unsub: CALLBACK_TYPE | None = None
        self._tick_unsub: CALLBACK_TYPE | None = None
        self._drawn: tuple[datetime | None, bytes | None] = (None, None)
        self._pending_events: list[ObjectEvent] = []

    @property
    def target_fps(self) -> float:
        """Frames per second aimed at now (0 while idle on a camera set to analyse on motion)."""
        return target_fps(self.settings, self.motion)

    def _interval(self, settings: DetectionSettings) -> timedelta | None:
        return _interval(settings, self.motion)

    @callback
    def async_set_motion(self, motion: bool | None) -> None:
        """Follow the camera's motion: the frame rate rises while it reports motion.

        ``None`` means its events are not known (none, or the subscription is down): the steady
        rate then. A rise takes a frame at once; a fall takes effect from the next frame.
        """
        if motion == self.motion:
            return
        before = self.target_fps
        self.motion = motion
        if self.target_fps == before:
            return  # e.g. motion ended on a camera whose rate without motion is the steady one
        self.update_interval = self._interval(self.settings)
        self.data = replace(self.data, target_fps=self.target_fps)
        self.async_update_listeners()
        if not self.enabled or self._frame_lock.locked():
            return  # the frame in flight schedules the next one at the new rate
        if self.update_interval is None:
            self._async_unsub_refresh()
        elif self.target_fps > before:
            self._async_unsub_refresh()
            self.config_entry.async_create_background_task(
                self.hass, self._handle_refresh_interval(), f"{self.name} motion frame"
            )
        else:
            self._schedule_refresh()

    # --- controls (switch, number, button, service) ----------------------------------------------

    @property
    def waiting_for_detector(self) -> bool:
        """True while no detector this camera could use is loaded."""
        return self.data.waiting_for_detector

    @property
    def detector_down(self) -> bool:
        """True while the camera's detector is known to be down."""
        return self.data.detector_down

    @property
    def enabled(self) -> bool:
        """Whether frames are being analysed."""
        return self.settings.enabled

    @callback
    def async_set_enabled(self, enabled: bool) -> None:
        """Start or stop the frame loop; stopping forgets every object (nothing goes stale)."""
        self.settings = replace(self.settings, enabled=enabled)
        self.update_interval = self._interval(self.settings)
        if not enabled:
            self._async_cancel_tick()
            self.pipeline.reset()
            self.async_set_updated_data(DetectionData(target_fps=self.target_fps))
            # No session is kept open while nothing is analysed; the next frame reopens it.
            self.config_entry.async_create_background_task(
                self.hass, self._streams.async_close(), f"{DOMAIN}_close_streams"
            )
        else:
            self.hass.async_create_task(self.async_request_refresh(), eager_start=True)
        self._async_store_option(CONF_DETECTION_ENABLED, enabled)

    @callback
    def async_set_confirm_threshold(self, value: float) -> None:
        """Change the confirmation threshold at once; tracks keep their ids and histories."""
        self.settings = replace(self.settings, confirm_threshold=value)
        self.pipeline.tracker.set_confirm_threshold(value)
        self._async_store_option(CONF_CONFIRM_THRESHOLD, value)
        self.async_update_listeners()

    @callback
    def _async_store_option(self, key: str, value: Any) -> None:
        # Stored so the choice survives a restart; no reload (no update listener is registered).
        entry = self.config_entry
        if entry.options.get(key) != value:
            self.hass.config_entries.async_update_entry(
                entry, options={**entry.options, key: value}
            )

    @callback
    def async_add_event_listener(self, listener: Callable[[ObjectEvent], None]) -> CALLBACK_TYPE:
        """Call ``listener`` with every detection event of this camera."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    async def async_analyse_now(self) -> tuple[DetectorResult, FrameOutcome]:
        """Analyse one frame now (button, service) and publish it like any other frame."""
        data = await self._async_run_frame(raise_errors=True)
        assert data.outcome is not None
        assert data.last_result is not None
        self.async_set_updated_data(data)
        self._async_fire_pending_events()
        return data.last_result, data.outcome

    # --- the detector ----------------------------------------------------------------------------

    @callback
    def async_resolve_hub(self) -> DetectorHub | None:
        """The loaded detector this camera's options name (auto: the first one loaded)."""
        wanted = self.settings.detector  # never "none": such cameras have no coordinator
        candidates = [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if is_detector_entry(entry)
            and entry.state is ConfigEntryState.LOADED
            and (wanted == DETECTOR_AUTO or entry.entry_id == wanted)
        ]
        candidates.sort(key=lambda entry: (entry.title, entry.entry_id))
        hub: DetectorHub | None = candidates[0].runtime_data if candidates else None
        if hub is not self._hub:
            self._async_attach_hub(hub)
        return hub

    @callback
    def _async_attach_hub(self, hub: DetectorHub | None) -> None:
        if self._hub_unsub:
            self._hub_unsub()
            self._hub_unsub = None
        self._hub = hub
        if hub is None:
            return
        self._hub_unsub = hub.async_add_recovery_listener(self._async_on_detector_back)
        # The camera's device shows which detector serves it.
        registry = dr.async_get(self.hass)
        camera = registry.async_get_device_by_identifier(
            (DOMAIN, self.device_unique_id), self.config_entry.entry_id
        )
        detector = registry.async_get_device_by_identifier(
            (DOMAIN, hub.device_identifier), hub.entry.entry_id
        )
        if camera and detector and camera.via_device_id != detector.id:
            registry.async_update_device(camera.id, via_device_id=detector.id)

    @callback
    def _async_on_detector_back(self) -> None:
        if self.enabled:
            self.hass.async_create_task(self.async_request_refresh(), eager_start=True)

    # --- one frame -------------------------------------------------------------------------------

    @override
    async def _async_update_data(self) -> DetectionData:
        return await self._async_run_frame(raise_errors=False)

    @override
    @callback
    def _async_refresh_finished(self) -> None:
        # Events go out once the frame's data is published, so the event entity is available
        # (the frame that brings the detector back is also the one that may announce someone).
        self._async_fire_pending_events()

    @callback
    def _async_fire_pending_events(self) -> None:
        events, self._pending_events = self._pending_events, []
        for event in events:
            for listener in list(self._event_listeners):
                listener(event)

    def _quiet(self, previous: DetectionData, *, waiting: bool, down: bool) -> DetectionData:
        """The data while no detector can be asked (entities unavailable, nothing logged here)."""
        return replace(previous, waiting_for_detector=waiting, detector_down=down)

    async def _async_run_frame(self, *, raise_errors: bool) -> DetectionData:
        """Snapshot, detect, pipeline; raises UpdateFailed (or, for the service, the cause)."""
        async with self._frame_lock:
            started = time.monotonic()
            dropped = self._missed_slots(started)
            self._last_frame_started = started
            previous = self.data
            hub = self.async_resolve_hub()
            if hub is None:
                # Not an error: the user may add the detector after the camera. The entities stay
                # unavailable (see ``waiting_for_detector``) and frames start when it loads.
                if not previous.waiting_for_detector:
                    _LOGGER.info(
                        "%s waits for a detector: add one (Devices & services > Add "
                        "integration > Home Security Intelligence) or choose one in its options",
                        self.config_entry.title,
                    )
                if raise_errors:
                    raise UpdateFailed(translation_domain=DOMAIN, translation_key="no_detector")
                return self._quiet(previous, waiting=True, down=False)
            if previous.waiting_for_detector:
                _LOGGER.info("%s uses detector %s", self.config_entry.title, hub.entry.title)
            if not hub.reachable:
                # The hub logged the outage once and probes on its own back-off; this camera
                # neither takes snapshots nor logs until the hub says the detector is back.
                if raise_errors:
                    raise DetectorUnavailable(hub.last_error, hub.retry_in)
                return self._quiet(previous, waiting=False, down=True)
            try:
                image = await self.frames.async_get_frame()
            except (OnvifError, RtspError) as err:
                if isinstance(err, NotAnImage):
                    # The camera answered something that is not a picture (an HTML error
                    # page): skipped and counted like a truncated frame; the state stands.
                    return self._skipped(previous, dropped, err, raise_errors)
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="camera_unreachable",
                    translation_placeholders={"error": str(err)},
                ) from err
            try:
                result = await hub.async_detect(image)
            except InvalidImage as err:
                # A truncated or corrupt frame: skipped and counted; the state stands.
                return self._skipped(previous, dropped, err, raise_errors)
            except DetectorBusy as err:
                # Overloaded is alive: this frame is dropped, the next one is tried as usual.
                if raise_errors:
                    raise
                _LOGGER.debug("%s: frame dropped: %s", self.config_entry.title, err)
                return replace(
                    previous,
                    frames_dropped=previous.frames_dropped + dropped + 1,
                    last_error=err.reason,
                    waiting_for_detector=False,
                    detector_down=False,
                )
            except DetectorError as err:
                if raise_errors:
                    raise
                # The hub marked the detector down (one log line, there) and probes it.
                return replace(
                    self._quiet(previous, waiting=False, down=True), last_error=err.reason
                )
            now = time.monotonic()
            outcome = self.pipeline.process(result, now)
            self._frame_times.append(now)
            while self._frame_times and self._frame_times[0] < now - 60:
                self._frame_times.popleft()
            frame, boxes, image_updated = self._shown_frame(image, outcome, previous)
            data = DetectionData(
                outcome=outcome,
                occupied=outcome.occupied,
                latency_ms=result.latency_ms,
                frames_per_minute=len(self._frame_times),
                frames_dropped=previous.frames_dropped + dropped,
                frames_invalid=previous.frames_invalid,
                last_error=previous.last_error,
                frame=frame,
                frame_boxes=boxes,
                image_updated=image_updated,
                last_result=result,
                target_fps=self.target_fps,
            )
            self._pending_events.extend(outcome.events)
        self._async_schedule_tick()
        return data

    def _skipped(
        self, previous: DetectionData, dropped: int, err: Exception, raise_errors: bool
    ) -> DetectionData:
        """A frame that was not an image: counted, the state stands (the service says why)."""
        _LOGGER.debug("%s: frame skipped: %s", self.config_entry.title, err)
        if raise_errors:
            if isinstance(err, InvalidImage):
                raise err
            raise InvalidImage(str(err)) from err
        return replace(
            previous,
            frames_invalid=previous.frames_invalid + 1,
            frames_dropped=previous.frames_dropped + dropped,
            last_error=InvalidImage.reason,
            waiting_for_detector=False,
            detector_down=False,
        )

    def _missed_slots(self, started: float) -> int:
        """Frames that should have been taken since the last one but were not (slow source)."""
        if self._last_frame_started is None or self.update_interval is None:
            return 0
        interval = self.update_interval.total_seconds()
        elapsed = started - self._last_frame_started
        # The loop schedules the next frame one interval after the previous one *ended*.
        return max(0, int(elapsed / interval) - 1) if elapsed > 2 * interval else 0

    @staticmethod
    def _shown_frame(
        image: bytes, outcome: FrameOutcome, previous: DetectionData
    ) -> tuple[bytes | None, tuple[AnnotatedBox, ...], datetime | None]:
        """The frame the image entity shows: replaced when new objects were announced or the
        objects in view changed, not on every frame (each change is a state write)."""
        if not outcome.objects:
            return previous.frame, previous.frame_boxes, previous.image_updated
        boxes = tuple(
            AnnotatedBox(obj.label, obj.score, obj.box, obj.object_id, tuple(sorted(obj.zones)))
            for obj in outcome.objects
        )
        shown = {box.object_id for box in previous.frame_boxes}
        if not outcome.events and shown == {box.object_id for box in boxes}:
            return previous.frame, previous.frame_boxes, previous.image_updated
        return image, boxes, dt_util.utcnow()

    async def async_annotated_image(self) -> bytes | None:
        """The shown frame with its boxes drawn, drawn off the loop once per frame and only when
        asked for; a frame that cannot be drawn leaves the last picture that could."""
        data = self.data
        if data.frame is None:
            return None
        updated, drawn = self._drawn
        if updated == data.image_updated and drawn is not None:
            return drawn
        try:
            drawn = await self.hass.async_add_executor_job(
                annotate, data.frame, list(data.frame_boxes)
            )
        except ValueError as err:
            _LOGGER.debug("%s: cannot draw the detection frame: %s", self.config_entry.title, err)
            return self._drawn[1]
        self._drawn = (data.image_updated, drawn)
        return drawn

    # --- occupancy off delay between frames ------------------------------------------------------

    @callback
    def _async_schedule_tick(self) -> None:
        """At low frame rates, turn occupancy off on time rather than at the next frame."""
        self._async_cancel_tick()
        next_change = self.pipeline.next_change(time.monotonic())
        if next_change is None:
            return
        delay = max(0.0, next_change - time.monotonic()) + 0.01
        self._tick_unsub = async_call_later(self.hass, delay, self._async_tick)

    @callback
    def _async_tick(self, _now: datetime) -> None:
        self._tick_unsub = None
        occupied = self.pipeline.tick(time.monotonic())
        if occupied != self.data.occupied:
            self.data = replace(self.data, occupied=occupied)
            self.async_update_listeners()
        self._async_schedule_tick()

    @callback
    def _async_cancel_tick(self) -> None:
        if self._tick_unsub:
            self._tick_unsub()
            self._tick_unsub = None

    @override
    async def async_shutdown(self) -> None:
        """Stop the loop and the timers; nothing of this camera keeps running."""
        self._async_cancel_tick()
        self._async_attach_hub(None)
        await super().async_shutdown()
