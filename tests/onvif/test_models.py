"""Models: MAC normalisation, the MAC-then-serial unique id, the configuration URL."""

from __future__ import annotations

import dataclasses

import pytest

from custom_components.home_security_intel.onvif import (
    CameraInfo,
    DeviceIdentity,
    NotOnvif,
    normalize_mac,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-0f", "aa:bb:cc:dd:ee:0f"),
        ("aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"),
        ("AABBCCDDEEFF", "aa:bb:cc:dd:ee:ff"),
        (" 02:00:5e:10:00:01 ", "02:00:5e:10:00:01"),
        ("00:00:00:00:00:00", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("aa:bb:cc:dd:ee", None),
        ("zz:bb:cc:dd:ee:ff", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_mac(raw: str | None, expected: str | None) -> None:
    assert normalize_mac(raw) == expected


def identity(mac: str | None, serial: str) -> DeviceIdentity:
    return DeviceIdentity("HSI", "Cam", "1.0", serial, "hw", mac)


def test_unique_id_prefers_mac_then_serial() -> None:
    assert identity("AA-BB-CC-DD-EE-FF", "S1").unique_id == "aa:bb:cc:dd:ee:ff"
    assert identity(None, " S1 ").unique_id == "S1"
    assert identity("00:00:00:00:00:00", "S1").unique_id == "S1"
    with pytest.raises(NotOnvif):
        _ = identity(None, "  ").unique_id


def test_models_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity(None, "S1").serial_number = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("192.168.1.20", 80, "http://192.168.1.20/"),
        ("192.168.1.20", 8080, "http://192.168.1.20:8080/"),
        ("fd00::20", 80, "http://[fd00::20]/"),
        ("fd00::20", 8899, "http://[fd00::20]:8899/"),
        ("cam.lan", 2020, "http://cam.lan:2020/"),
    ],
)
def test_configuration_url(host: str, port: int, url: str) -> None:
    info = CameraInfo(host, port, identity(None, "S1"), (), 0.0, (), False)
    assert info.configuration_url == url
