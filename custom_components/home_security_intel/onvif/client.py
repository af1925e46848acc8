"""ONVIF camera client: connect, identify, list video profiles and their URIs, fetch snapshots.

Wraps onvif-zeep-async the way Home Assistant core's onvif integration uses it (MAC-then-serial
unique id, auth-fault detection, clock-skew-corrected WS-Security), adds a per-request timeout, maps
every failure to one of this package's errors and passes camera-supplied URIs through the URI guard.
Tolerates the firmware quirks of real cameras: a clock behind credentials or HTTP Digest, optional
operations that fail (faults, HTTP errors, timeouts), media URIs naming the camera by another of
its addresses, NVR-style profiles; WSDL files are parsed once, off the loop (wsdl_cache).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from pathlib import Path
import socket
from typing import TYPE_CHECKING, Any, Literal, cast, override
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import onvif
from onvif import ONVIFCamera, ONVIFService
from onvif.util import is_auth_error, normalize_url
from zeep.exceptions import Fault, TransportError, XMLSyntaxError

from . import wsdl_cache
from .error_mapping import mapped_errors
from .errors import (
    CameraFault,
    ClockRefused,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifError,
    SnapshotError,
    UnsafeUri,
)
from .models import CameraInfo, DeviceIdentity, RefusedUri, VideoProfile, format_host_port
from .parsing import (
    addresses_from_interfaces,
    clock_skew_seconds,
    identity_from,
    mac_from_interfaces,
    video_profiles,
)
from .snapshot import SnapshotFetcher
from .uri_guard import camera_alias_uri, check_camera_uri, uri_host

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

# Every zeep service client of the library, ours and the events client's, parses each WSDL once.
wsdl_cache.install()

_LOGGER = logging.getLogger(__name__)

DEFAULT_WSDL_DIR = str(Path(onvif.__file__).parent / "wsdl")
_EVENTS_NAMESPACE = "http://www.onvif.org/ver10/events/wsdl"
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}  # RTSP = over TCP


_REFUSED_STATUSES = frozenset({401, 403})
# What an optional operation may fail with below the SOAP level: an HTTP error status, a body
# that is no XML, a timeout, a dropped connection.
_HTTP_FAILURES = (TransportError, XMLSyntaxError, TimeoutError, aiohttp.ClientError, OSError)


class _SkewAwareDevice(ONVIFCamera):
    """ONVIFCamera with a tolerant clock handshake, HTTP Digest and a fallback for GetServices.

    The library's own handshake raises on a camera that reports only local time, retries only a
    SOAP fault with credentials, and treats any failure of GetServices other than a fault as fatal.
    Here an unknown clock means "no correction"; an HTTP 401 (empty body) is retried with
    credentials too; every service's HTTP session answers HTTP Digest challenges (cameras that
    protect SOAP, the clock included, with HTTP authentication); and GetServices failing at the
    HTTP level falls back to GetCapabilities as a fault does.
    """

    clock_skew: float = 0.0
    request_timeout: float = 10.0
    _http_session: aiohttp.ClientSession | None = None

    @override
    async def create_onvif_service(
        self,
        name: str,
        port_type: str | None = None,
        read_timeout: int | None = None,
        write_timeout: int | None = None,
    ) -> ONVIFService:
        service = await super().create_onvif_service(name, port_type, read_timeout, write_timeout)
        if self.user:
            # One session per camera, shared by its services, so a Digest nonce is reused.
            if self._http_session is None or self._http_session.closed:
                self._http_session = aiohttp.ClientSession(
                    # The library's own SOAP sessions never verify certificates either.
                    connector=aiohttp.TCPConnector(ssl=False),
                    cookie_jar=aiohttp.DummyCookieJar(),
                    middlewares=(aiohttp.DigestAuthMiddleware(self.user, self.passwd or ""),),
                )
            service.transport.session = self._http_session
        return service

    @override
    async def close(self) -> None:
        try:
            await super().close()
        finally:
            # Whatever closing the services met (a service still being made by an event stream
            # changes the library's dict under its loop), the shared session is closed.
            if self._http_session is not None:
                await self._http_session.close()
            self._http_session = None

    @override
    async def _adjust_time(self, devicemgmt: ONVIFService) -> ONVIFService:
        answer: Any = None
        try:
            answer = await devicemgmt.authless_GetSystemDateAndTime()
        except (Fault, TransportError) as err:
            if isinstance(err, TransportError) and err.status_code not in _REFUSED_STATUSES:
                raise
            # Some cameras want credentials even for the clock (an ONVIF fault, or HTTP 401 with
            # an empty body); their clock then must be close enough for WS-Security.
            answer = await self._authenticated_clock(devicemgmt)
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

    async def _authenticated_clock(self, devicemgmt: ONVIFService) -> Any:
        try:
            return await devicemgmt.GetSystemDateAndTime()
        except Fault as err:
            if is_auth_error(err):
                raise _clock_refused(self.host) from err
            _LOGGER.debug("%s: no clock (SOAP fault); WS-Security goes uncorrected", self.host)
        except TransportError as err:
            if err.status_code in _REFUSED_STATUSES:
                raise _clock_refused(self.host) from err
            _LOGGER.debug("%s: no clock (HTTP %s); WS-Security goes uncorrected", self.host, err)
        return None

    @override
    async def _update_xaddrs_from_services(self, devicemgmt: ONVIFService) -> bool:
        try:
            async with asyncio.timeout(self.request_timeout):
                return await super()._update_xaddrs_from_services(devicemgmt)
        except _HTTP_FAILURES as err:
            _LOGGER.debug(
                "%s: GetServices failed (%s); asking GetCapabilities", self.host, type(err).__name__
            )
            self.xaddrs = {}
            return False


def _clock_refused(host: str) -> ClockRefused:
    return ClockRefused(
        f"{host}: the camera wants credentials even for its clock and refused them: the password "
        "is wrong, or the camera's clock is too far off for WS-Security"
    )


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
        self._alias_addresses: tuple[str, ...] = ()
        self._unavailable: set[str] = set()
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
        self._unavailable = set()
        device = _SkewAwareDevice(
            self.host,
            self.port,
            self._username,
            self._password,
            self._wsdl_dir,
            no_cache=True,
            adjust_time=True,
        )
        device.request_timeout = self._timeout
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
        # Up to three requests: the clock (maybe twice, with credentials) and GetServices, which
        # has its own timeout so a camera that hangs on it still gets asked GetCapabilities.
        async with mapped_errors(self.host, "reading the clock and services", 3 * self._timeout):
            await device.update_xaddrs()  # type: ignore[no-untyped-call]
        self._camera_addresses = await self._resolve_own_addresses()
        self._pin_service_addresses(device)
        devicemgmt = await device.create_devicemgmt_service()
        async with mapped_errors(self.host, "reading device information", self._timeout):
            information = await devicemgmt.GetDeviceInformation()
        if information is None:
            raise NotOnvif(f"{self.host}: empty answer to GetDeviceInformation")
        interfaces = await self._optional(
            "reading network interfaces", lambda: devicemgmt.GetNetworkInterfaces()
        )
        identity = identity_from(information, mac_from_interfaces(interfaces))
        _ = identity.unique_id  # raises NotOnvif when the camera has neither MAC nor serial
        # Addresses the camera reports for itself: URIs naming them are the camera (multi-homed,
        # or reached through another name or a NAT), and are rewritten to the configured host.
        self._alias_addresses = addresses_from_interfaces(interfaces)

        async with mapped_errors(self.host, "opening the media service", None):
            media = await device.create_media_service()
        async with mapped_errors(self.host, "reading media profiles", self._timeout):
            raw_profiles = await media.GetProfiles()
        found = video_profiles(raw_profiles)
        if not found:
            raise NoVideoProfile(f"{self.host}: the camera offers no video profile")

        self._snapshots.camera_addresses = self._camera_addresses
        self._snapshots.alias_addresses = self._alias_addresses
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

    async def _optional[T](self, step: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run an operation the camera need not support; None when it does not.

        A SOAP fault (unsupported, not permitted...) or a failure at the HTTP level (an error
        status, an empty or non-XML body, a timeout) only means "not available": optional
        operations do not abort a connect. An authentication fault still does: it means the
        credentials are wrong. An operation that failed below SOAP is not asked again during
        this connect (a camera that hangs on it would cost a timeout per profile).
        """
        if step in self._unavailable:
            return None
        try:
            async with mapped_errors(self.host, step, self._timeout):
                return await call()
        except InvalidAuth:
            raise
        except CameraFault as err:
            _LOGGER.debug("%s: %s: SOAP fault %s; going on without it", self.host, step, err.fault)
        except OnvifError as err:
            self._unavailable.add(step)
            _LOGGER.debug("%s: %s failed (%s); going on without it", self.host, step, err)
        return None

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
        answer = await self._optional(
            f"asking for the {kind} URI", lambda: getattr(media, operation)(request)
        )
        uri = normalize_url(str(raw)) if (raw := getattr(answer, "Uri", None)) else None
        if not uri:
            return None
        aliased = camera_alias_uri(uri, self.host, self._alias_addresses)
        if aliased != uri:
            _LOGGER.debug(
                "%s: the %s URI of profile %s names the camera by %s; using %s",
                self.host,
                kind,
                token,
                uri_host(uri),
                self.host,
            )
        try:
            return check_camera_uri(
                aliased, self.host, kind, camera_addresses=self._camera_addresses
            )
        except UnsafeUri as err:
            # The URI itself is not logged: it may carry credentials or be attacker-chosen text.
            # Debug only: the integration logs each refusal once, when it raises the repair issue.
            _LOGGER.debug(
                "%s: refused the %s URI of profile %s: %s", self.host, kind, token, err.reason
            )
            refused.append(RefusedUri(token, kind, err.uri_host or uri_host(uri), err.reason))
            return None

    async def async_probe(self, *, identify: bool = False) -> DeviceIdentity | None:
        """Check, without credentials, that an ONVIF device answers at the address.

        One unauthenticated GetSystemDateAndTime; raises CannotConnect when nothing answers and
        NotOnvif when something answers but not as ONVIF. Any SOAP fault is an ONVIF answer, so
        success: an authentication fault (a camera that wants credentials even for its clock,
        also as HTTP 401 or an HTTP Digest challenge) or any other fault.

        With ``identify``, GetDeviceInformation and GetNetworkInterfaces are asked as well, still
        without credentials; the identity they give (or None, for the many cameras that want
        credentials for them) lets a configured camera be recognised before a password is asked.
        It is unauthenticated, so only good for recognising, never for trusting.
        """
        # A device of its own, without credentials: the probe must not disturb a connected one.
        device = ONVIFCamera(self.host, self.port, None, None, self._wsdl_dir, no_cache=True)
        try:
            async with mapped_errors(self.host, "loading the ONVIF WSDL", None):
                devicemgmt = await device.create_devicemgmt_service()
            try:
                async with mapped_errors(self.host, "reading the clock", self._timeout):
                    answer = await devicemgmt.authless_GetSystemDateAndTime()
            except InvalidAuth:
                _LOGGER.debug("%s: the camera wants credentials even for its clock", self.host)
                return None
            except CameraFault as err:
                _LOGGER.debug("%s: the clock read gave the SOAP fault %s", self.host, err.fault)
                return None
            if answer is None:
                raise NotOnvif(f"{self.host}: empty answer to GetSystemDateAndTime")
            return await self._identify_without_credentials(devicemgmt) if identify else None
        finally:
            await device.close()

    async def _identify_without_credentials(
        self, devicemgmt: ONVIFService
    ) -> DeviceIdentity | None:
        try:
            async with mapped_errors(self.host, "reading device information", self._timeout):
                information = await devicemgmt.authless_GetDeviceInformation()
            async with mapped_errors(self.host, "reading network interfaces", self._timeout):
                try:
                    interfaces = await devicemgmt.authless_GetNetworkInterfaces()
                except Fault:
                    interfaces = None
        except OnvifError as err:
            _LOGGER.debug("%s: no identity without credentials (%s)", self.host, type(err).__name__)
            return None
        if information is None:
            return None
        identity = identity_from(information, mac_from_interfaces(interfaces))
        return identity if (identity.mac or identity.serial_number) else None

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
