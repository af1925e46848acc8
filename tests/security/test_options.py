"""The camera options' `security` section, and the home entry's flow."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_SYSTEM
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.home_security_intel import config_flow
from custom_components.home_security_intel.const import (
    CONF_AI_DAILY_CAP,
    CONF_AI_GROUPS,
    CONF_AI_INTERVAL,
    CONF_AI_MIN_AREA,
    CONF_AI_MIN_LEVEL,
    CONF_AI_TASK,
    CONF_ALARM_PANEL,
    CONF_ALERT_LEVEL,
    CONF_DETECTOR,
    CONF_ENTRY_TYPE,
    CONF_EVENT_IDLE,
    CONF_EVENT_MAX,
    CONF_FRAME_SOURCE,
    CONF_GROUPS,
    CONF_PROFILES,
    CONF_RETENTION_DAYS,
    DETECTOR_NONE,
    DOMAIN,
    ENTRY_TYPE_HOME,
    FRAME_SOURCE_SNAPSHOT,
    HOME_UNIQUE_ID,
)
from custom_components.home_security_intel.security import SecuritySettings

SECURITY_DEFAULTS: dict[str, Any] = {
    CONF_ALERT_LEVEL: "high",
    CONF_EVENT_IDLE: 30.0,
    CONF_EVENT_MAX: 90.0,
    CONF_AI_MIN_LEVEL: "medium",
    CONF_AI_GROUPS: ["person", "vehicle"],
    CONF_AI_MIN_AREA: 0.0,
    CONF_AI_INTERVAL: 60.0,
    CONF_AI_DAILY_CAP: 50,
    CONF_RETENTION_DAYS: 14,
}


def security_suggestions(result: Any) -> dict[str, Any]:
    schema = result["data_schema"]
    (found,) = (v for k, v in schema.schema.items() if k == config_flow.SECTION_SECURITY)
    assert isinstance(found, section)
    assert found.options == {"collapsed": True}
    return {
        str(marker): (marker.description or {}).get("suggested_value")
        for marker in found.schema.schema
        if (marker.description or {}).get("suggested_value") is not None
    }


def form(entry: MockConfigEntry, security: dict[str, Any]) -> dict[str, Any]:
    return {
        CONF_DETECTOR: DETECTOR_NONE,
        CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
        CONF_PROFILES: entry.options[CONF_PROFILES],
        config_flow.SECTION_DETECTION: {
            "fps": 1.0,
            CONF_GROUPS: ["person"],
            "min_score": 0.5,
            "confirm_threshold": 0.7,
            "min_area": 0.0,
            "max_area": 1.0,
            "off_delay": 5.0,
        },
        config_flow.SECTION_ZONES: {},
        config_flow.SECTION_SECURITY: security,
    }


async def test_the_security_section_shows_defaults_saves_and_clears(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    entry = setup_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert security_suggestions(result) == SECURITY_DEFAULTS

    chosen = {
        **SECURITY_DEFAULTS,
        CONF_ALERT_LEVEL: "medium",
        CONF_EVENT_IDLE: 20,
        CONF_ALARM_PANEL: "alarm_control_panel.house",
        CONF_AI_TASK: "ai_task.analyst",
        CONF_AI_DAILY_CAP: 10.0,
        CONF_RETENTION_DAYS: 30.0,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form(entry, chosen)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_ALERT_LEVEL] == "medium"
    assert entry.options[CONF_AI_TASK] == "ai_task.analyst"
    assert entry.options[CONF_AI_DAILY_CAP] == 10
    assert isinstance(entry.options[CONF_RETENTION_DAYS], int)
    assert config_flow.SECTION_SECURITY not in entry.options
    settings = SecuritySettings.from_options(entry.options)
    assert settings.grouping.alert_level == "medium"
    assert settings.grouping.idle_s == 20
    assert settings.alarm_panel == "alarm_control_panel.house"

    # Shown back as stored; clearing the entity fields stores them as none.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    shown = security_suggestions(result)
    assert shown[CONF_AI_TASK] == "ai_task.analyst"
    assert shown[CONF_ALARM_PANEL] == "alarm_control_panel.house"
    cleared = {k: v for k, v in chosen.items() if k not in (CONF_AI_TASK, CONF_ALARM_PANEL)}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form(entry, cleared)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_AI_TASK] is None
    assert entry.options[CONF_ALARM_PANEL] is None
    assert SecuritySettings.from_options(entry.options).ai_task is None
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_AI_TASK not in security_suggestions(result)


def test_stored_nonsense_falls_back_to_the_defaults() -> None:
    settings = SecuritySettings.from_options({CONF_ALERT_LEVEL: "urgent", CONF_AI_MIN_LEVEL: 3})
    assert settings.grouping.alert_level == "high"
    assert settings.ai_filter.min_level == "medium"


async def test_the_home_entry_is_single_and_has_nothing_to_configure(
    hass: HomeAssistant,
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_SYSTEM})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_ENTRY_TYPE: ENTRY_TYPE_HOME}
    await hass.async_block_till_done()
    (home,) = hass.config_entries.async_entries(DOMAIN)
    assert home.unique_id == HOME_UNIQUE_ID
    again = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_SYSTEM})
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    assert not config_flow.HsiConfigFlow.async_supports_options_flow(home)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": home.entry_id}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "nothing_to_reconfigure"
