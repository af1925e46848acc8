"""Sensors: confirmed object counts per group of a camera, its detection figures, and a detector's.

Counts equal the confirmed objects in view. The figures (latency, frames per minute, the frame
rate aimed at now, which follows the camera's motion, frames dropped, last error) are diagnostic
and disabled by default: most users never need them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .data import is_detector_entry
from .detection.model import GROUPS
from .detection_coordinator import DetectionCoordinator, DetectionData
from .detector_hub import DetectorHub, DetectorStatus
from .entity import (
    HsiDetectionEntity,
    HsiDetectorEntity,
    HsiSecurityEntity,
    async_remove_stale_entities,
    async_security_monitor,
    camera_device_id,
    camera_device_info,
    entity_unique_id,
)
from .intelligence.model import RISK_LEVELS
from .security import SecurityMonitor
from .store import HsiStore

PARALLEL_UPDATES = 0
# Only the snapshot disk usage polls (walking a folder off the loop); the others follow
# their coordinators.
SCAN_INTERVAL = timedelta(minutes=5)

ERROR_REASONS = [
    "none",
    "cannot_connect",
    "invalid_key",
    "not_a_detector",
    "wrong_fingerprint",
    "timeout",
    "busy",
    "invalid_answer",
    "invalid_image",
    "local_unsupported",
    "model_unavailable",
    "unknown",
]


def _reason(reason: str | None) -> str:
    return reason if reason in ERROR_REASONS else ("none" if reason is None else "unknown")


@dataclass(frozen=True, kw_only=True)
class DetectionSensorDescription(SensorEntityDescription):
    """A camera detection sensor and how it reads the coordinator's data."""

    value: Callable[[DetectionData], float | int | str | None]


@dataclass(frozen=True, kw_only=True)
class DetectorSensorDescription(SensorEntityDescription):
    """A detector sensor and how it reads the hub's status."""

    value: Callable[[DetectorStatus], float | int | str | None]


@dataclass(frozen=True, kw_only=True)
class SecuritySensorDescription(SensorEntityDescription):
    """A camera security sensor and how it reads the camera's security monitor."""

    value: Callable[[SecurityMonitor], float | int | str | None]
    attributes: Callable[[SecurityMonitor], dict[str, object]] | None = None


def _risk_attributes(monitor: SecurityMonitor) -> dict[str, object]:
    event = monitor.event
    return {
        "score": monitor.risk.score,
        "reasons": monitor.reasons_text(),
        "reason_keys": [reason.key for reason in monitor.risk.reasons],
        "event_id": event.event_id if event else None,
    }


def _ai_attributes(monitor: SecurityMonitor) -> dict[str, object]:
    budget = monitor.budget
    return {
        "calls_today": budget.calls_today(dt_util.now().date()),
        "daily_cap": budget.daily_cap,
        "failures": budget.failures,
        "skipped": budget.skipped,
        "last_error": budget.last_error,
    }


SECURITY_SENSORS: tuple[SecuritySensorDescription, ...] = (
    SecuritySensorDescription(
        key="risk_level",
        translation_key="risk_level",
        device_class=SensorDeviceClass.ENUM,
        options=list(RISK_LEVELS),
        value=lambda monitor: monitor.risk.level,
        attributes=_risk_attributes,
    ),
    SecuritySensorDescription(
        key="risk_score",
        translation_key="risk_score",
        state_class=SensorStateClass.MEASUREMENT,
        value=lambda monitor: monitor.risk.score,
    ),
    SecuritySensorDescription(
        key="ai_calls",
        translation_key="ai_calls",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda monitor: monitor.budget.calls,
        attributes=_ai_attributes,
    ),
)


def _count(group: str) -> DetectionSensorDescription:
    return DetectionSensorDescription(
        key=f"{group}_count",
        translation_key=f"{group}_count",
        state_class=SensorStateClass.MEASUREMENT,
        value=lambda data: data.count(group),
    )


DETECTION_FIGURES: tuple[DetectionSensorDescription, ...] = (
    DetectionSensorDescription(
        key="detection_latency",
        translation_key="detection_latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda data: data.latency_ms,
    ),
    DetectionSensorDescription(
        key="frames_per_minute",
        translation_key="frames_per_minute",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda data: data.frames_per_minute,
    ),
    DetectionSensorDescription(
        key="detection_rate",
        translation_key="detection_rate",
        native_unit_of_measurement="fps",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda data: data.target_fps,
    ),
    DetectionSensorDescription(
        key="frames_dropped",
        translation_key="frames_dropped",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda data: data.frames_dropped + data.frames_invalid,
    ),
    DetectionSensorDescription(
        key="last_error",
        translation_key="last_error",
        device_class=SensorDeviceClass.ENUM,
        options=ERROR_REASONS,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value=lambda data: _reason(data.last_error),
    ),
)

SNAPSHOT_DISK_USAGE = SensorEntityDescription(
    key="snapshot_disk_usage",
    translation_key="snapshot_disk_usage",
    device_class=SensorDeviceClass.DATA_SIZE,
    native_unit_of_measurement=UnitOfInformation.BYTES,
    suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
    suggested_display_precision=1,
    state_class=SensorStateClass.MEASUREMENT,
    entity_category=EntityCategory.DIAGNOSTIC,
    entity_registry_enabled_default=False,
)

DETECTOR_SENSORS: tuple[DetectorSensorDescription, ...] = (
    DetectorSensorDescription(
        key="latency_p50",
        translation_key="latency_p50",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda status: status.latency_p50_ms,
    ),
    DetectorSensorDescription(
        key="queue_depth",
        translation_key="queue_depth",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda status: status.queue_depth,
    ),
    DetectorSensorDescription(
        key="last_error",
        translation_key="last_error",
        device_class=SensorDeviceClass.ENUM,
        options=ERROR_REASONS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda status: _reason(status.last_error),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Counts and figures for a camera; figures for a detector."""
    if is_detector_entry(entry):
        hub: DetectorHub = entry.runtime_data
        async_add_entities(DetectorSensor(hub, description) for description in DETECTOR_SENSORS)
        return
    if (store := entry.runtime_data.store) is not None:
        async_add_entities([SnapshotDiskUsageSensor(store, entry)])
    detection: DetectionCoordinator | None = entry.runtime_data.detection
    descriptions: list[DetectionSensorDescription] = []
    if detection is not None:
        descriptions = [_count(group) for group in detection.settings.groups]
        descriptions.extend(DETECTION_FIGURES)
    every = {f"{group}_count" for group in GROUPS} | {d.key for d in DETECTION_FIGURES}
    async_remove_stale_entities(
        hass, entry, Platform.SENSOR, {d.key for d in descriptions}, every.__contains__
    )
    if detection is not None:
        async_add_entities(DetectionSensor(detection, d) for d in descriptions)
    if monitor := async_security_monitor(
        hass, entry, Platform.SENSOR, {d.key for d in SECURITY_SENSORS}
    ):
        async_add_entities(SecuritySensor(monitor, d) for d in SECURITY_SENSORS)


class DetectionSensor(HsiDetectionEntity, SensorEntity):
    """One figure of a camera's detection."""

    entity_description: DetectionSensorDescription

    def __init__(
        self, coordinator: DetectionCoordinator, description: DetectionSensorDescription
    ) -> None:
        """Create the sensor that ``description`` describes."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> float | int | str | None:
        """The figure from the latest frame."""
        return self.entity_description.value(self.coordinator.data)


class SecuritySensor(HsiSecurityEntity, SensorEntity):
    """One figure of a camera's security layer."""

    entity_description: SecuritySensorDescription

    def __init__(self, monitor: SecurityMonitor, description: SecuritySensorDescription) -> None:
        """Create the sensor that ``description`` describes."""
        super().__init__(monitor, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> float | int | str | None:
        """The figure now."""
        return self.entity_description.value(self.monitor)

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        """What explains the figure (reasons for the risk, counters for the AI)."""
        attributes = self.entity_description.attributes
        return attributes(self.monitor) if attributes else None


class DetectorSensor(HsiDetectorEntity, SensorEntity):
    """One figure of a shared detector."""

    entity_description: DetectorSensorDescription

    def __init__(self, hub: DetectorHub, description: DetectorSensorDescription) -> None:
        """Create the sensor that ``description`` describes."""
        super().__init__(hub, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Figures stay readable while the detector is down (last error says why)."""
        return self.coordinator.data is not None

    @property
    def native_value(self) -> float | int | str | None:
        """The figure from the hub's latest status."""
        return self.entity_description.value(self.coordinator.data)


class SnapshotDiskUsageSensor(SensorEntity):
    """Bytes a camera's event snapshots take on disk (diagnostic, polled)."""

    _attr_has_entity_name = True
    entity_description = SNAPSHOT_DISK_USAGE

    def __init__(self, store: HsiStore, entry: ConfigEntry) -> None:
        """Measure `entry`'s camera folder in `store`."""
        self._store = store
        self._camera_id = entry.entry_id
        info = entry.runtime_data.info
        self._attr_unique_id = entity_unique_id(
            camera_device_id(entry, info), SNAPSHOT_DISK_USAGE.key
        )
        self._attr_device_info = camera_device_info(entry, info)

    async def async_update(self) -> None:
        """Walk the camera's snapshot folder (in an executor)."""
        self._attr_native_value = await self._store.snapshots.async_usage(self._camera_id)
