"""Diagnostics: a stable, fully redacted picture of the entry, the camera and its coordinator."""

from __future__ import annotations

import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.home_security_intel.diagnostics import redact_uri
from tests.common import wait_until
from tests.support.onvif_sim import OnvifSimulator


def _stable(diagnostics: dict[str, Any], sim: OnvifSimulator) -> dict[str, Any]:
    """Replace what differs between runs: the simulator's free port and the measured clock skew.

    The skew is measured against a camera clock with one-second resolution, so it is a small float
    whose exact value varies; only its type is kept.
    """
    text = json.dumps(diagnostics).replace(f":{sim.port}/", ":<sim port>/")
    stable: dict[str, Any] = json.loads(text)
    assert stable["entry"]["data"]["port"] == sim.port
    assert stable["camera"]["port"] == sim.port
    stable["entry"]["data"]["port"] = stable["camera"]["port"] = "<sim port>"
    for section in ("camera", "coordinator"):
        assert isinstance(stable[section]["clock_skew_s"], float)
        stable[section]["clock_skew_s"] = "<float>"
    # How many long polls have returned depends on timing; that they are counted does not.
    assert stable["events"]["pulls"] >= 1
    stable["events"]["pulls"] = "<int>"
    return stable


@pytest.mark.freeze_time("2026-01-02T03:04:05+00:00")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    snapshot: SnapshotAssertion,
) -> None:
    """The diagnostics match the snapshot and contain no secret or identifying value."""
    onvif_sim.hostile_stream_uri = "rtsp://viewer:s3cret@192.0.2.9:554/live?user=viewer&pwd=s3cret"
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    # The event subscription is live and the camera's initial states (two motion topics) are in.
    events = config_entry.runtime_data.events
    await wait_until(lambda: events.stream.status.messages >= 2, frozen_time=True)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)
    assert _stable(diagnostics, onvif_sim) == snapshot

    dump = json.dumps(diagnostics)
    config = onvif_sim.config
    assert config.mac is not None
    for secret in (
        config.password,
        config.username,
        config.serial,
        config.mac,
        config.mac.replace(":", ""),
        "s3cret",
        "192.0.2.9",
        "127.0.0.1",
    ):
        assert secret not in dump, secret


def test_redact_uri() -> None:
    """URIs keep scheme, port and path; lose host, userinfo and query values."""
    assert redact_uri(None) is None
    assert redact_uri("rtsp://u:p@10.0.0.2:554/ch1?user=u&pwd=p") == (
        "rtsp://redacted:554/ch1?user=**REDACTED**&pwd=**REDACTED**"
    )
    assert redact_uri("http://cam.example/snap.jpg") == "http://redacted/snap.jpg"
    assert redact_uri("/relative/only") == "**REDACTED**"
    assert redact_uri("http://[::1") == "**REDACTED**"


async def test_diagnostics_after_outage(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A failed health check shows up as offline with the error's type and the failure count."""
    coordinator = setup_integration.runtime_data.coordinator
    onvif_sim.offline = True
    await coordinator.async_refresh()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_integration)
    assert diagnostics["coordinator"]["online"] is False
    assert diagnostics["coordinator"]["consecutive_failures"] == 1
    assert diagnostics["coordinator"]["last_error"] == "UpdateFailed"


async def test_diagnostics_redact_the_address_in_a_default_title(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
) -> None:
    """Onboarding titles a camera "Model (host:port)": the host is redacted there too."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, title=f"SimCam 4K ({onvif_sim.host}:{onvif_sim.port})"
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)

    assert diagnostics["entry"]["title"] == f"SimCam 4K (**REDACTED**:{onvif_sim.port})"
    assert onvif_sim.host not in json.dumps(diagnostics)
