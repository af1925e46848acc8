"""Checks of the files Home Assistant and HACS read: manifest, hacs.json, strings, translations."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
import homeassistant.components
from homeassistant.const import __version__ as ha_version

from custom_components.home_security_intel.const import DOMAIN
import hsi_detector

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "custom_components" / DOMAIN


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_manifest_pins_what_core_onvif_pins() -> None:
    """Our ONVIF requirements are the versions Home Assistant core itself ships with; the engines
    library is this repository's own detector package, at the version in the tree."""
    ours = _json(PACKAGE / "manifest.json")
    core = _json(Path(homeassistant.components.__file__).parent / "onvif" / "manifest.json")
    assert ours["domain"] == DOMAIN
    onvif = [r for r in ours["requirements"] if r.lower().startswith(("onvif", "wsdiscovery"))]
    assert sorted(onvif) == sorted(
        r for r in core["requirements"] if r.lower().startswith(("onvif", "wsdiscovery"))
    )
    # Every other requirement is tested at the version the manifest pins.
    tests_pins = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements_test.txt").read_text(encoding="utf-8").splitlines()
    ]
    for requirement in ours["requirements"]:
        if not requirement.startswith("hsi-detector"):
            assert requirement in tests_pins
    # The test venv installs ./detector itself (editable): the manifest names that very version.
    assert f"hsi-detector=={hsi_detector.__version__}" in ours["requirements"]
    assert "-e ./detector" in tests_pins
    assert ours["config_flow"] is True
    assert ours["iot_class"] == "local_push"
    assert ours["integration_type"] == "device"
    assert re.fullmatch(r"\d+\.\d+\.\d+", ours["version"])


def test_hacs_minimum_version_is_met_by_the_tested_home_assistant() -> None:
    """The minimum Home Assistant version HACS enforces is one we really test with."""
    hacs = _json(ROOT / "hacs.json")
    assert AwesomeVersion(ha_version) >= AwesomeVersion(hacs["homeassistant"])


def test_translations_match_strings() -> None:
    """Custom integrations get no build step: en.json must be strings.json, references resolved."""
    strings = (PACKAGE / "strings.json").read_text(encoding="utf-8")
    english = (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
    assert json.loads(english) == json.loads(strings)
    assert "[%key:" not in strings


def test_icons_and_brand_exist() -> None:
    """The brand icon and the icon translations ship with the integration."""
    assert (PACKAGE / "brand" / "icon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    icons = _json(PACKAGE / "icons.json")
    assert "entity" in icons


def test_conversation_requirements_are_core_pins() -> None:
    """The AI tests load Home Assistant's conversation integration (through ai_task): the test venv
    carries its requirements at exactly the versions its manifest pins."""
    core = _json(Path(homeassistant.components.__file__).parent / "conversation" / "manifest.json")
    tests_pins = {
        line.split("#")[0].strip()
        for line in (ROOT / "requirements_test.txt").read_text(encoding="utf-8").splitlines()
    }
    assert set(core["requirements"]) <= tests_pins
