"""ONVIF camera client: connect, identify, list video profiles and their URIs, fetch snapshots.

Wraps onvif-zeep-async the way Home Assistant core's onvif integration uses it (MAC-then-serial
unique id, auth-fault detection, clock-skew-corrected WS-Security), adds a per-request timeout, maps
every failure to one of this package's errors and passes camera-supplied URIs through the URI guard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from pathlib import Path
import socket
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote, urlsplit, urlunsplit

import onvif
from onvif import ONVIFCamera, ONVIFService
from onvif.util import is_auth_error, normalize_url
from zeep.exceptions import Fault

from .error_mapping import mapped_errors
from .errors import InvalidAuth, NotOnvif, NoVideoProfile, SnapshotError, UnsafeUri
from .models import CameraInfo, RefusedUri, VideoProfile, format_host_port
from .parsing import clock_skew_seconds, identity_from, mac_from_interfaces, video_profiles
from .snapshot import SnapshotFetcher
from .uri_guard import check_camera_uri, uri_host

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

DEFAULT_WSDL_DIR = str(Path(onvif.__file__).parent / "wsdl")
_EVENTS_NAMESPACE = "http://www.onvif.org/ver10/events/wsdl"
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}  # RTSP = over TCP


class _SkewAwareDevice(ONVIFCamera):
    """ONVIFCamera whose clock handshake records the skew and tolerates cameras without UTC time.

    The library's own handshake raises on a camera that reports only local time; here an unknown
    clock means "no correction" instead.
    """

    clock_skew: float = 0.0

    async def _adjust_time(self, devicemgmt: ONVIFService) -> ONVIFService:
        try:
            answer = await devicemgmt.authless_GetSystemDateAndTime()
        except Fault:
            # Some cameras want credentials even for the clock; their clock then must be close.
            answer = await devicemgmt.GetSystemDateAndTime()
        skew = clock_skew_seconds(answer, dt.datetime.now(dt.UTC))
        self.clock_skew = skew or 0.0
        if skew is not None and abs(skew) >= 5:
            _LOGGER.warning(
                "%s: camera clock is %+.0f s off; correcting WS-Security timestamps",
                self.host,
                skew,
            )
        self.dt_diff = dt.timedelta(seconds=self.clock_skew)  # type: ignore[assignment]  # untyped
        # Rebuild the device service so its WS-Security token carries the corrected time.
        await devicemgmt.close()  # type: ignore[no-untyped-call]
        del self.services[devicemgmt.binding_key]
        return await self.create_devicemgmt_service()


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class OnvifCamera:
    """One ONVIF camera, reached with one set of credentials."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        wsdl_dir: str | None = None,
        verify_ssl: bool = True,
    ) -> None:
        """Remember how to reach the camera; nothing is sent until async_connect.

        ``timeout`` bounds each request to the camera. ``verify_ssl`` applies to https snapshots
        (the SOAP transport of onvif-zeep-async never verifies certificates).
        """
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._timeout = timeout
        self._wsdl_dir = wsdl_dir or DEFAULT_WSDL_DIR
        self._device: _SkewAwareDevice | None = None
        self._info: CameraInfo | None = None
        self._camera_addresses: tuple[str, ...] = ()
        self._snapshots = SnapshotFetcher(
            host, username, password, timeout=timeout, verify_ssl=verify_ssl
        )

    @property
    def info(self) -> CameraInfo | None:
        """What the last successful async_connect learned, or None."""
        return self._info

    @property
    def events_device(self) -> ONVIFCamera | None:
        """The connected onvif-zeep-async device, for the PullPoint stream (onvif/events.py)."""
        return self._device

    @property
    def camera_addresses(self) -> tuple[str, ...]:
        """The camera's own addresses when it is reached by name (URIs naming them are it)."""
        return self._camera_addresses

    async def async_connect(self) -> CameraInfo:
        """Connect, identify the camera and read its video profiles; see the errors module."""
        await self._close_device()
        self._info = None
        device = _SkewAwareDevice(
            self.host,
            self.port,
            self._username,
            self._password,
            self._wsdl_dir,
            no_cache=True,
            adjust_time=True,
        )
        self._device = device
        try:
            info = await self._read_camera(device)
        except BaseException:
            await self._close_device()
            raise
        self._info = info
        _LOGGER.debug("%s: connected, %d video profile(s)", self.host, len(info.profiles))
        return info

    async def _read_camera(self, device: _SkewAwareDevice) -> CameraInfo:
        # WSDL parsing is local work that can take seconds the first time; it is kept outside the
        # per-request timeout so a slow first load is not mistaken for a slow camera.
        async with mapped_errors(self.host, "loading the ONVIF WSDL", None):
            await device.create_devicemgmt_service()
        async with mapped_errors(self.host, "reading the clock and services", self._timeout):
            await device.update_xaddrs()  # type: ignore[no-untyped-call]
        self._camera_addresses = await self._resolve_own_addresses()
        self._pin_service_addresses(device)
        devicemgmt = await device.create_devicemgmt_service()
        async with mapped_errors(self.host, "reading device information", self._timeout):
            information = await devicemgmt.GetDeviceInformation()
        if information is None:
            raise NotOnvif(f"{self.host}: empty answer to GetDeviceInformation")
        mac = await self._read_mac(devicemgmt)
        identity = identity_from(information, mac)
        _ = identity.unique_id  # raises NotOnvif when the camera has neither MAC nor serial

        async with mapped_errors(self.host, "opening the media service", None):
            media = await device.create_media_service()
        async with mapped_errors(self.host, "reading media profiles", self._timeout):
            raw_profiles = await media.GetProfiles()
        found = video_profiles(raw_profiles)
        if not found:
            raise NoVideoProfile(f"{self.host}: the camera offers no video profile")

        self._snapshots.camera_addresses = self._camera_addresses
        refused: list[RefusedUri] = []
        profiles: list[VideoProfile] = []
        for token, name, encoding, width, height, fps in found:
            snapshot = await self._guarded_uri(media, token, "snapshot", refused)
            stream = await self._guarded_uri(media, token, "stream", refused)
            profiles.append(
                VideoProfile(token, name, encoding, width, height, fps, snapshot, stream)
            )
        return CameraInfo(
            host=self.host,
            port=self.port,
            identity=identity,
            profiles=tuple(profiles),
            clock_skew=device.clock_skew,
            refused_uris=tuple(refused),
            supports_events=_EVENTS_NAMESPACE in device.xaddrs,
        )

    def _pin_service_addresses(self, device: _SkewAwareDevice) -> None:
        """Keep every ONVIF service the camera advertises on the camera itself.

        The XAddrs of GetServices/GetCapabilities are camera-supplied URLs that the library then
        posts to. One on another host (a camera behind NAT, a wrong network setting, or a hostile
        device steering requests elsewhere) is moved to the camera's own address, path kept.
        """
        xaddrs = cast("dict[str, str]", device.xaddrs)
        moved: set[str] = set()
        for namespace, xaddr in list(xaddrs.items()):
            try:
                check_camera_uri(
                    xaddr, self.host, "service", camera_addresses=self._camera_addresses
                )
            except UnsafeUri as err:
                parts = urlsplit(xaddr)
                scheme = "https" if parts.scheme == "https" else "http"
                netloc = format_host_port(self.host, self.port, 443 if scheme == "https" else 80)
                xaddrs[namespace] = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
                moved.add(f"{err.uri_host or 'no host'} ({err.reason})")
        if moved:
            _LOGGER.warning(
                "%s: the camera advertises its services on %s; using its own address instead",
                self.host,
                ", ".join(sorted(moved)),
            )

    async def _read_mac(self, devicemgmt: ONVIFService) -> str | None:
        async with mapped_errors(self.host, "reading network interfaces", self._timeout):
            try:
                interfaces = await devicemgmt.GetNetworkInterfaces()
            except Fault as err:
                if is_auth_error(err):
                    raise
                # Optional for cameras; the serial number then identifies the camera.
                _LOGGER.debug("%s: no network interfaces (SOAP fault)", self.host)
                return None
        return mac_from_interfaces(interfaces)

    async def _resolve_own_addresses(self) -> tuple[str, ...]:
        """IP addresses of a camera configured by host name; URIs naming them are the camera."""
        if _is_ip_literal(self.host):
            return ()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            return ()
        return tuple(sorted({str(info[4][0]) for info in infos}))

    async def _guarded_uri(
        self,
        media: ONVIFService,
        token: str,
        kind: Literal["snapshot", "stream"],
        refused: list[RefusedUri],
    ) -> str | None:
        operation = "GetSnapshotUri" if kind == "snapshot" else "GetStreamUri"
        create_type = cast("Callable[[str], Any]", media.create_type)
        request = create_type(operation)
        request.ProfileToken = token
        if kind == "stream":
            request.StreamSetup = _STREAM_SETUP
        async with mapped_errors(self.host, f"asking for the {kind} URI", self._timeout):
            try:
                answer = await getattr(media, operation)(request)
            except Fault as err:
                if is_auth_error(err):
                    raise
                _LOGGER.debug("%s: no %s URI for profile %s", self.host, kind, token)
                return None
        uri = normalize_url(str(raw)) if (raw := getattr(answer, "Uri", None)) else None
        if not uri:
            return None
        try:
            return check_camera_uri(uri, self.host, kind, camera_addresses=self._camera_addresses)
        except UnsafeUri as err:
            # The URI itself is not logged: it may carry credentials or be attacker-chosen text.
            # Debug only: the integration logs each refusal once, when it raises the repair issue.
            _LOGGER.debug(
                "%s: refused the %s URI of profile %s: %s", self.host, kind, token, err.reason
            )
            refused.append(RefusedUri(token, kind, err.uri_host or uri_host(uri), err.reason))
            return None

    async def async_probe(self) -> None:
        """Check, without credentials, that an ONVIF device answers at the address.

        One unauthenticated GetSystemDateAndTime; raises CannotConnect when nothing answers and
        NotOnvif when something answers but not as ONVIF. A camera that wants credentials even
        for its clock answers with an authentication fault: that is an ONVIF answer, so success.
        """
        # A device of its own, without credentials: the probe must not disturb a connected one.
        device = ONVIFCamera(self.host, self.port, None, None, self._wsdl_dir, no_cache=True)
        try:
            async with mapped_errors(self.host, "loading the ONVIF WSDL", None):
                devicemgmt = await device.create_devicemgmt_service()
            async with mapped_errors(self.host, "reading the clock", self._timeout):
                answer = await devicemgmt.authless_GetSystemDateAndTime()
        except InvalidAuth:
            _LOGGER.debug("%s: the camera wants credentials even for its clock", self.host)
            return
        finally:
            await device.close()
        if answer is None:
            raise NotOnvif(f"{self.host}: empty answer to GetSystemDateAndTime")

    async def async_check_alive(self) -> None:
        """Make one cheap authenticated call (GetDeviceInformation); connects first if needed."""
        if self._device is None:
            await self.async_connect()
            return
        devicemgmt = await self._device.create_devicemgmt_service()
        async with mapped_errors(self.host, "checking the camera", self._timeout):
            await devicemgmt.GetDeviceInformation()

    async def async_get_snapshot(
        self, profile: VideoProfile, *, max_bytes: int = 16 * 2**20
    ) -> bytes:
        """Fetch one JPEG/PNG snapshot; raise SnapshotError, InvalidAuth or CannotConnect."""
        if not profile.snapshot_uri:
            raise SnapshotError(f"{self.host}: profile {profile.token} has no usable snapshot URI")
        return await self._snapshots.fetch(profile.snapshot_uri, max_bytes)

    def stream_source(self, profile: VideoProfile) -> str | None:
        """The RTSP URI of ``profile`` with the credentials inserted (URL-quoted); never log it."""
        if not profile.stream_uri:
            return None
        if not self._username:
            return profile.stream_uri
        parts = urlsplit(profile.stream_uri)
        userinfo = f"{quote(self._username, safe='')}:{quote(self._password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))

    async def _close_device(self) -> None:
        if self._device is not None:
            device, self._device = self._device, None
            await device.close()

    async def async_close(self) -> None:
        """Close every connection to the camera; the object may connect again afterwards."""
        await self._close_device()
        await self._snapshots.close()
