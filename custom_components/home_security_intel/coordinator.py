"""One coordinator per camera: keeps the camera's health and, later, schedules its frames.

Today it runs a periodic health check against the camera. A failed check raises
``UpdateFailed``, which makes every entity of the camera unavailable and lets
``DataUpdateCoordinator`` log exactly one line when the camera goes away and one when it is back.
While the camera stays away the next check is pushed out further each time (doubling up to a
ceiling) so a dead camera is not hammered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from typing import override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import DOMAIN, HEALTH_CHECK_INTERVAL_S, MAX_RETRY_DELAY_S
from .data import HsiConfigEntry
from .onvif import CameraInfo, InvalidAuth, OnvifCamera, OnvifError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What the last successful health check found out about the camera."""

    last_seen: datetime
    # Camera clock minus ours, in seconds, as measured when connecting.
    clock_skew: float


def retry_delay(consecutive_failures: int) -> float:
    """Seconds until the next check after this many failures in a row: 30, 60, 120, 240, 300..."""
    if consecutive_failures <= 0:
        return float(HEALTH_CHECK_INTERVAL_S)
    # Cap the exponent too, so a camera that is gone for weeks cannot overflow the arithmetic.
    exponent = min(consecutive_failures - 1, 16)
    return float(min(HEALTH_CHECK_INTERVAL_S * 2**exponent, MAX_RETRY_DELAY_S))


class CameraCoordinator(DataUpdateCoordinator[CameraStatus]):
    """Drives one camera: health checks now; frame scheduling, motion and detection later."""

    config_entry: HsiConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: HsiConfigEntry,
        camera: OnvifCamera,
        info: CameraInfo,
    ) -> None:
        """Create the coordinator for a connected camera."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=config_entry.title,
            update_interval=timedelta(seconds=HEALTH_CHECK_INTERVAL_S),
        )
        self.camera = camera
        self.info = info
        self.consecutive_failures = 0

    @property
    def device_unique_id(self) -> str:
        """The camera's stable id (the entry's: see camera_device_id), for device and entities."""
        return self.config_entry.unique_id or self.info.identity.unique_id

    @override
    async def _async_update_data(self) -> CameraStatus:
        try:
            await self.camera.async_check_alive()
        except InvalidAuth as err:
            # The coordinator starts a reauth flow; retrying with a bad password cannot help.
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_auth",
                translation_placeholders={"camera_name": self.config_entry.title},
            ) from err
        except OnvifError as err:
            self.consecutive_failures += 1
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="camera_unreachable",
                translation_placeholders={"error": str(err)},
                retry_after=retry_delay(self.consecutive_failures),
            ) from err
        self.consecutive_failures = 0
        # The client re-reads the camera (and its clock) when it had to reconnect.
        info = self.camera.info or self.info
        return CameraStatus(last_seen=dt_util.utcnow(), clock_skew=info.clock_skew)
