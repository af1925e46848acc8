"""Plain, immutable descriptions of an ONVIF camera: identity, video profiles, discovery results."""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Literal

from .errors import NotOnvif

_MAC_HEX = re.compile(r"[0-9a-f]{12}")


def normalize_mac(value: str | None) -> str | None:
    """Return ``aa:bb:cc:dd:ee:ff`` for any common MAC spelling, or None if it is not a usable MAC.

    All-zero and broadcast addresses count as missing: some firmwares report them for every unit,
    and a unique id built from them would merge different cameras.
    """
    if not value:
        return None
    digits = re.sub(r"[:\-.\s]", "", value.strip().lower())
    if not _MAC_HEX.fullmatch(digits) or digits in {"000000000000", "ffffffffffff"}:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def format_host_port(host: str, port: int, default_port: int) -> str:
    """Return ``host[:port]``, IPv6 literals bracketed, without the scheme's default port."""
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return bracketed if port == default_port else f"{bracketed}:{port}"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What the camera says it is (GetDeviceInformation plus the MAC of its network interface)."""

    manufacturer: str
    model: str
    firmware_version: str
    serial_number: str
    hardware_id: str
    mac: str | None

    @property
    def unique_id(self) -> str:
        """Normalised MAC address if known, else the serial number (as Home Assistant core does)."""
        if mac := normalize_mac(self.mac):
            return mac
        if serial := self.serial_number.strip():
            return serial
        raise NotOnvif("camera reports neither a MAC address nor a serial number")


@dataclass(frozen=True, slots=True)
class VideoProfile:
    """A media profile with a video encoder; URIs already passed the URI guard (None if refused)."""

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float | None
    snapshot_uri: str | None
    stream_uri: str | None


@dataclass(frozen=True, slots=True)
class RefusedUri:
    """A camera-supplied URI the guard refused; kept so the user can be told why."""

    profile_token: str
    kind: Literal["snapshot", "stream"]
    uri_host: str
    reason: str


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """Everything learned about a camera when connecting to it."""

    host: str
    port: int
    identity: DeviceIdentity
    profiles: tuple[VideoProfile, ...]
    clock_skew: float
    refused_uris: tuple[RefusedUri, ...]
    supports_events: bool

    @property
    def configuration_url(self) -> str:
        """The camera's own web interface, for the device page."""
        return f"http://{format_host_port(self.host, self.port, 80)}/"


@dataclass(frozen=True, slots=True)
class DiscoveredCamera:
    """A camera that answered a WS-Discovery probe."""

    host: str
    port: int
    name: str
    hardware: str
    xaddr: str
    scopes: tuple[str, ...]
