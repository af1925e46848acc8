"""One detector that cameras share: its client, its health, its figures and its repair issue.

A detector entry (a detector server, the add-on, or a local model) owns a ``DetectorHub``. Every
camera that uses it calls ``async_detect`` through the hub, so the hub sees every success and
failure: the first failure marks the detector down (one log line), after which cameras stop
sending frames and only the hub probes, backing off from 5 s to 5 min so a dead server is not
hammered; the first probe that works marks it up again (one log line) and wakes the cameras.
A detector that stays away for a few minutes raises a repair issue, cleared when it is back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from pathlib import Path
import statistics
import time
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_API,
    CONF_API_KEY,
    CONF_DETECTOR_KIND,
    CONF_ENGINE,
    CONF_FINGERPRINT,
    CONF_MODEL,
    CONF_URL,
    DETECTOR_CHECK_INTERVAL_S,
    DETECTOR_ISSUE_AFTER_S,
    DETECTOR_KIND_LOCAL,
    DETECTOR_RETRY_MAX_S,
    DETECTOR_RETRY_MIN_S,
    DOMAIN,
    MODELS_DIR,
)
from .detection.local import LocalDetector
from .detection.model import (
    Detector,
    DetectorBusy,
    DetectorError,
    DetectorInfo,
    DetectorResult,
    InvalidImage,
    InvalidKey,
    ModelUnavailable,
)
from .detection.models import find_model
from .detection.remote import RemoteDetector

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry

_LOGGER = logging.getLogger(__name__)

ISSUE_DETECTOR_UNREACHABLE = "detector_unreachable"
LATENCY_WINDOW = 100  # calls the latency median is taken over


def detector_retry_delay(consecutive_failures: int) -> float:
    """Seconds until the next probe of a detector that failed this many times: 5, 10, 20... 300."""
    exponent = min(max(consecutive_failures - 1, 0), 16)
    return float(min(DETECTOR_RETRY_MIN_S * 2**exponent, DETECTOR_RETRY_MAX_S))


async def async_build_detector(hass: HomeAssistant, data: Mapping[str, Any]) -> Detector:
    """The client a detector entry describes (nothing is sent or loaded yet)."""
    if data[CONF_DETECTOR_KIND] == DETECTOR_KIND_LOCAL:
        files = await hass.async_add_executor_job(
            find_model, hass.config.path(MODELS_DIR), data[CONF_ENGINE], data[CONF_MODEL]
        )
        if files is None:
            raise ModelUnavailable(f"model {data[CONF_MODEL]} not found")
        return LocalDetector(
            data[CONF_ENGINE],
            files.model,
            files.labels,
            export_dir=Path(hass.config.path(MODELS_DIR, "exports")),
        )
    return RemoteDetector(
        async_get_clientsession(hass),
        data[CONF_URL],
        data[CONF_API],
        api_key=data.get(CONF_API_KEY),
        fingerprint=data.get(CONF_FINGERPRINT),
    )


class DetectorUnavailable(DetectorError):  # noqa: N818 - as the other DetectorErrors
    """The detector is known to be down; frames are not sent until a probe finds it back."""

    def __init__(self, cause: DetectorError | None, retry_in: float) -> None:
        """Remember what took the detector down and when the hub probes again."""
        super().__init__(str(cause) if cause else "detector unavailable")
        self.reason = cause.reason if cause else "cannot_connect"
        self.retry_in = retry_in


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """What the hub knows about its detector; the detector device's entities show it."""

    reachable: bool
    info: DetectorInfo | None
    latency_p50_ms: float | None
    queue_depth: int | None
    last_error: str | None
    """The reason key of the latest failure (cleared never: it is history, not state)."""
    calls: int
    failures: int


class DetectorHub(DataUpdateCoordinator[DetectorStatus]):
    """Health and traffic of one shared detector; cameras call ``async_detect`` through it."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, detector: Detector) -> None:
        """Wrap a built detector; nothing is sent until the first refresh."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"detector {entry.title}",
            update_interval=timedelta(seconds=DETECTOR_CHECK_INTERVAL_S),
        )
        self.detector = detector
        self.entry = entry
        self.device_identifier = f"detector_{entry.entry_id}"
        """The detector device's identifier (with DOMAIN); cameras link to it with via_device."""
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._info: DetectorInfo | None = None
        self._last_error: DetectorError | None = None
        self._failures = 0  # consecutive
        self._calls = 0
        self._failed_calls = 0
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probe_unsub: CALLBACK_TYPE | None = None
        self._issue_unsub: CALLBACK_TYPE | None = None
        self._recovery_listeners: list[Callable[[], None]] = []
        self.data = self._status()

    # --- what cameras use ------------------------------------------------------------------------

    @property
    def reachable(self) -> bool:
        """True unless the latest call or probe failed."""
        return self._down_since is None

    @property
    def last_error(self) -> DetectorError | None:
        """What the latest failed call or probe raised."""
        return self._last_error

    @property
    def retry_in(self) -> float:
        """Seconds until the hub probes a detector that is down (0 when it is up)."""
        return max(0.0, self._retry_at - time.monotonic()) if self._down_since else 0.0

    @callback
    def async_add_recovery_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` when the detector comes back after being down."""
        self._recovery_listeners.append(listener)
        return lambda: self._recovery_listeners.remove(listener)

    async def async_detect(self, image: bytes) -> DetectorResult:
        """Send one frame; refuse at once while the detector is known to be down."""
        if self._down_since is not None:
            raise DetectorUnavailable(self._last_error, self.retry_in)
        self._calls += 1
        try:
            result = await self.detector.async_detect(image)
        except InvalidImage:
            raise  # the frame was bad, the detector is fine
        except DetectorBusy:
            # Overloaded is alive: the frame is dropped, the detector is not marked down.
            self._failed_calls += 1
            raise
        except DetectorError as err:
            self._failed_calls += 1
            self._async_mark_down(err)
            raise
        self._latencies.append(result.latency_ms)
        self._async_publish()
        return result

    # --- health ----------------------------------------------------------------------------------

    @override
    async def _async_update_data(self) -> DetectorStatus:
        try:
            self._info = await self.detector.async_check()
        except DetectorBusy:
            # Too busy to answer the probe is alive: nothing to mark down, nothing new learned.
            return self._status()
        except InvalidKey as err:
            # Retrying with a refused key cannot help: the coordinator starts reauthentication.
            self._last_error = err
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="detector_invalid_key",
                translation_placeholders={"detector_name": self.entry.title},
            ) from err
        except DetectorError as err:
            delay = self._async_record_failure(err)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="detector_unreachable",
                translation_placeholders={"error": str(err)},
                retry_after=delay,
            ) from err
        was_down = self._down_since is not None
        self._failures = 0
        self._down_since = None
        self._async_cancel_issue_timer()
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        if was_down:
            for listener in list(self._recovery_listeners):
                listener()
        return self._status()

    def _status(self) -> DetectorStatus:
        info = self._info
        return DetectorStatus(
            reachable=self._down_since is None,
            info=info,
            latency_p50_ms=statistics.median(self._latencies) if self._latencies else None,
            queue_depth=info.queue_depth if info else None,
            last_error=self._last_error.reason if self._last_error else None,
            calls=self._calls,
            failures=self._failed_calls,
        )

    @callback
    def _async_publish(self) -> None:
        """Show new figures without waiting for the next health check."""
        if self.last_update_success:
            self.data = self._status()
            self.async_update_listeners()

    @callback
    def _async_mark_down(self, err: DetectorError) -> None:
        """A camera's call failed: the detector is down until a probe finds it back."""
        if self._down_since is not None:
            self._last_error = err
            return
        delay = self._async_record_failure(err)
        # Logs one line (DataUpdateCoordinator does, on the first error only).
        self.async_set_update_error(err)
        self._async_schedule_probe(delay)

    @callback
    def _async_record_failure(self, err: DetectorError) -> float:
        """One more failure in a row (a call's or a probe's): the outage starts with the first;
        returns the back-off until the next probe."""
        self._failures += 1
        self._last_error = err
        if self._down_since is None:
            self._async_went_down()
        delay = detector_retry_delay(self._failures)
        self._retry_at = time.monotonic() + delay
        self.data = self._status()
        return delay

    @callback
    def _async_schedule_probe(self, delay: float) -> None:
        # Only when the detector goes down: no probe is pending then (one outage, one probe;
        # the coordinator's own retries take over after it).
        self._probe_unsub = async_call_later(self.hass, delay, self._async_probe)

    async def _async_probe(self, _now: datetime) -> None:
        self._probe_unsub = None
        await self.async_refresh()

    @property
    def issue_id(self) -> str:
        """The id of this detector's "unreachable" repair issue."""
        return f"{ISSUE_DETECTOR_UNREACHABLE}_{self.entry.entry_id}"

    @callback
    def _async_went_down(self) -> None:
        """Start the outage: the repair issue follows if it lasts (not at the next probe, which
        may come minutes later under back-off)."""
        self._down_since = time.monotonic()
        self._async_cancel_issue_timer()
        self._issue_unsub = async_call_later(
            self.hass, DETECTOR_ISSUE_AFTER_S, self._async_raise_issue
        )

    @callback
    def _async_cancel_issue_timer(self) -> None:
        if self._issue_unsub:
            self._issue_unsub()
            self._issue_unsub = None

    @callback
    def _async_raise_issue(self, _now: datetime) -> None:
        """The detector has been away long enough to tell the user in Repairs."""
        self._issue_unsub = None  # cancelled on recovery: the detector is still down
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_DETECTOR_UNREACHABLE,
            translation_placeholders={
                "detector_name": self.entry.title,
                "error": str(self._last_error or ""),
            },
        )

    async def async_shutdown(self) -> None:
        """Stop probing and release the detector (sessions, threads, models)."""
        if self._probe_unsub:
            self._probe_unsub()
            self._probe_unsub = None
        self._async_cancel_issue_timer()
        await super().async_shutdown()
        await self.detector.async_close()
