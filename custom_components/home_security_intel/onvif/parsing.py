"""Turn ONVIF answers (zeep objects) into this package's models, tolerating missing fields.

Cameras leave out optional elements freely, so every field is read with a default instead of
trusting the WSDL; whatever cannot be read becomes "unknown" rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable
import datetime as dt
import ipaddress
from typing import Any

from .models import DeviceIdentity, normalize_mac


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def clock_skew_seconds(answer: Any, now: dt.datetime) -> float | None:
    """Seconds the camera's UTC clock is ahead of ``now`` (negative: behind), None if unknown.

    Only UTCDateTime is trusted: LocalDateTime needs the camera's POSIX time zone string, which is
    too often wrong to compute a WS-Security timestamp from.
    """
    utc: Any = getattr(answer, "UTCDateTime", None)
    try:
        camera_now = dt.datetime(
            utc.Date.Year,
            utc.Date.Month,
            utc.Date.Day,
            utc.Time.Hour,
            utc.Time.Minute,
            utc.Time.Second,
            tzinfo=dt.UTC,
        )
    except (AttributeError, TypeError, ValueError):
        return None
    return (camera_now - now).total_seconds()


def mac_from_interfaces(interfaces: Any) -> str | None:
    """MAC of the last enabled interface, as Home Assistant core picks it.

    Core keys existing devices on the last one, and some cameras list a dummy interface first that
    has the same MAC on every unit.
    """
    mac = None
    for interface in interfaces or ():
        if getattr(interface, "Enabled", False):
            info = getattr(interface, "Info", None)
            mac = normalize_mac(_text(getattr(info, "HwAddress", None))) or mac
    return mac


def identity_from(device_information: Any, mac: str | None) -> DeviceIdentity:
    """Build the identity from a GetDeviceInformation answer and the MAC found (if any)."""
    return DeviceIdentity(
        manufacturer=_text(getattr(device_information, "Manufacturer", None)),
        model=_text(getattr(device_information, "Model", None)),
        firmware_version=_text(getattr(device_information, "FirmwareVersion", None)),
        serial_number=_text(getattr(device_information, "SerialNumber", None)),
        hardware_id=_text(getattr(device_information, "HardwareId", None)),
        mac=normalize_mac(mac),
    )


def addresses_from_interfaces(interfaces: Any) -> tuple[str, ...]:
    """Every IP address the camera reports for its enabled interfaces (manual, DHCP, link-local).

    A multi-homed camera lists several; one reached through another name or a NAT reports the
    address it has on its own network, which is what it writes into its media URIs.
    """
    found: set[str] = set()
    for interface in interfaces or ():
        if not getattr(interface, "Enabled", False):
            continue
        for family in ("IPv4", "IPv6"):
            config = getattr(getattr(interface, family, None), "Config", None)
            for kind in ("Manual", "FromDHCP", "LinkLocal", "FromRA"):
                entries = getattr(config, kind, None)
                if entries is None:
                    continue
                for entry in entries if isinstance(entries, list) else [entries]:
                    address = _text(getattr(entry, "Address", None))
                    try:
                        found.add(str(ipaddress.ip_address(address)))
                    except ValueError:
                        continue
    return tuple(sorted(found))


def _resolution(configuration: Any, size: str) -> tuple[int, int]:
    """Width and height of an encoder's Resolution or a source's Bounds; 0 where unknown."""
    element = getattr(configuration, size, None)
    names = ("Width", "Height") if size == "Resolution" else ("width", "height")
    values = []
    for name in names:
        try:
            values.append(max(int(getattr(element, name, 0) or 0), 0))
        except (TypeError, ValueError):
            values.append(0)
    return values[0], values[1]


def video_profiles(profiles: Any) -> list[tuple[str, str, str, int, int, float | None]]:
    """(token, name, encoding, width, height, fps) of every profile with video in it.

    Video means a video encoder configuration, or (NVRs and encoders that configure the encoder
    elsewhere) at least a video source configuration: such a profile still streams. Its size is
    then the source's bounds, and its encoding and frame rate unknown ("" and None); a size that
    is not known at all is 0 x 0.
    """
    found: list[tuple[str, str, str, int, int, float | None]] = []
    for profile in profiles if isinstance(profiles, Iterable) else ():
        encoder = getattr(profile, "VideoEncoderConfiguration", None)
        source = getattr(profile, "VideoSourceConfiguration", None)
        token = _text(getattr(profile, "token", None))
        if (encoder is None and source is None) or not token:
            continue
        width, height = _resolution(encoder, "Resolution")
        if not (width and height) and source is not None:
            width, height = _resolution(source, "Bounds")
        rate = getattr(getattr(encoder, "RateControl", None), "FrameRateLimit", None)
        found.append(
            (
                token,
                _text(getattr(profile, "Name", None)) or token,
                _text(getattr(encoder, "Encoding", None)),
                width,
                height,
                float(rate) if rate else None,
            )
        )
    return found
