"""Sensors: confirmed object counts per group of a camera, its detection figures, and a detector's.

Counts equal the confirmed objects in view. The figures (latency, frames per minute, the frame
rate aimed at now, which follows the camera's motion, frames dropped, last error) are diagnostic
and disabled by default: most users never need them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import is_detector_entry
from .detection.model import GROUPS
from .detection_coordinator import DetectionCoordinator, DetectionData
from .detector_hub import DetectorHub, DetectorStatus
from .entity import HsiDetectionEntity, HsiDetectorEntity, async_remove_stale_entities

PARALLEL_UPDATES = 0

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
