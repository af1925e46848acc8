"""The simulated ONVIF camera: an aiohttp server with runtime fault switches for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Literal

from aiohttp import web

from . import device, events, media
from .config import SimConfig, SimProfile
from .events import PullPointSubscription
from .http_auth import DigestAuthenticator, verify_basic
from .soap import (
    MAX_BODY_BYTES,
    SoapParseError,
    SoapRequest,
    child_text,
    envelope,
    fault,
    parse_request,
)
from .wsse import NonceCache, verify_username_token

SOAP_CONTENT_TYPE = "application/soap+xml"
SUBSCRIPTION_PATH = device.EVENTS_PATH + "/subscription/"
# ONVIF Core access class PRE_AUTH: operations a camera must answer without credentials.
DEFAULT_PREAUTH_OPERATIONS = frozenset(
    {"GetSystemDateAndTime", "GetCapabilities", "GetServices", "GetHostname", "GetWsdlUrl"}
)
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
_MAX_RECORDED_REQUESTS = 10_000
_NOT_FOUND_HTML = (
    "<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
    "<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>"
)
# What a crashed camera web server emits: binary junk, then half an envelope. Not XML at all (a
# merely truncated envelope would be "recovered" by zeep's lenient parser into an empty answer).
_GARBAGE = (
    b"\x00\x1f\x8b\x08garbage<?xml version='1.0'?><env:Envelope "
    b"xmlns:env='http://www.w3.org/2003/05/soap-envelope'><env:Body><tds:GetDevice"
)

type _Handler = Callable[[SoapRequest, web.Request], Awaitable[web.Response]]


def url_host(host: str) -> str:
    """Host as written in a URL: IPv6 literals get brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


class SoapFaultError(Exception):
    """Raised by an operation handler to answer with a SOAP fault."""

    def __init__(self, status: int, code: str, subcodes: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.subcodes = subcodes
        self.reason = reason


def _soap_response(
    body: str, request: SoapRequest | None = None, status: int = 200
) -> web.Response:
    return web.Response(
        status=status,
        text=envelope(body, request),
        content_type=SOAP_CONTENT_TYPE,
        charset="utf-8",
    )


def _fault_response(err: SoapFaultError) -> web.Response:
    return web.Response(
        status=err.status,
        text=fault(err.code, err.subcodes, err.reason),
        content_type=SOAP_CONTENT_TYPE,
        charset="utf-8",
    )


class OnvifSimulator:
    """A real ONVIF camera on 127.0.0.1 (device, media, events services and snapshots).

    Every public attribute may be changed while it runs; the next request sees the change.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = "127.0.0.1"
        self.port = 0
        # Fault switches.
        self.clock_skew = 0.0
        self.no_profiles = False
        self.no_video_profiles = False
        self.malformed_xml = False
        self.delay = 0.0
        self.hostile_snapshot_uri: str | None = None
        self.hostile_stream_uri: str | None = None
        # Where GetStreamUri points: the port of the RTSP server beside it (see rtsp.py).
        self.rtsp_port = media.RTSP_PORT
        # Scheme://host:port that GetServices/GetCapabilities advertise instead of this server's.
        self.hostile_service_base: str | None = None
        self.offline = False
        self.snapshot_auth: Literal["digest", "basic", "none"] = "digest"
        self.no_mac = False
        self.not_onvif = False
        # Behaviour knobs beyond the brief: which operations skip WS-Security, and the HTTP status
        # of an authentication fault (ONVIF says 400; some firmwares answer 401).
        self.preauth_operations: set[str] = set(DEFAULT_PREAUTH_OPERATIONS)
        self.auth_fault_status = 400
        # Firmware behaviours seen in the field (issue 10's compatibility list).
        # Authentication failures as HTTP 401 with an empty body instead of a SOAP fault.
        self.auth_fault_empty = False
        # Operations behind HTTP Digest: challenged with 401 until the request carries a valid
        # digest, which then stands in for WS-Security (the clock, on some firmwares).
        self.http_digest_operations: set[str] = set()
        # Operations answered with a SOAP fault (this subcode, env:Receiver, HTTP 500).
        self.soap_faults: dict[str, str] = {}
        # Operations failing below SOAP: HTTP 500 with an HTML page, 200 with an empty body, or
        # no answer for hang_seconds (or until the simulator stops).
        self.http_failures: dict[str, Literal["500", "empty", "timeout"]] = {}
        self.hang_seconds = 30.0
        # Profiles without a video encoder configuration (NVRs: only the video source).
        self.nvr_profiles = False
        # The addresses GetNetworkInterfaces reports (default: the address it listens on): a
        # camera reached through another name or a NAT, or one with several interfaces.
        self.reported_addresses: list[str] | None = None
        # Observations for assertions.
        self.requests: list[str] = []
        self.snapshot_requests = 0

        self._events = events.EventBroker()
        self._nonces = NonceCache()
        self._digest = DigestAuthenticator()
        self._images: dict[Path, bytes] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._soap_handlers: dict[str, dict[str, _Handler]] = {
            device.DEVICE_PATH: {
                "GetSystemDateAndTime": self._get_system_date_and_time,
                "GetDeviceInformation": self._get_device_information,
                "GetNetworkInterfaces": self._get_network_interfaces,
                "GetCapabilities": self._get_capabilities,
                "GetServices": self._get_services,
                "GetScopes": self._get_scopes,
                "GetHostname": self._get_hostname,
            },
            device.MEDIA_PATH: {
                "GetProfiles": self._get_profiles,
                "GetProfile": self._get_profile,
                "GetSnapshotUri": self._get_snapshot_uri,
                "GetStreamUri": self._get_stream_uri,
                "GetVideoSources": self._get_video_sources,
            },
            device.EVENTS_PATH: {
                "GetEventProperties": self._get_event_properties,
                "CreatePullPointSubscription": self._create_pull_point_subscription,
            },
            SUBSCRIPTION_PATH: {
                "PullMessages": self._pull_messages,
                "Renew": self._renew,
                "Unsubscribe": self._unsubscribe,
                "SetSynchronizationPoint": self._set_synchronization_point,
            },
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Base URL of the camera, e.g. http://127.0.0.1:8899."""
        return f"http://{url_host(self.host)}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; port 0 picks a free port (read it back from .port)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._faults])
        app.router.add_post(device.DEVICE_PATH, self._soap)
        app.router.add_post(device.MEDIA_PATH, self._soap)
        app.router.add_post(device.EVENTS_PATH, self._soap)
        app.router.add_post(SUBSCRIPTION_PATH + "{ident}", self._soap)
        app.router.add_get("/snapshot/{name}", self._snapshot)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.host = host
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving, waking long polls so nothing lingers."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def events(self) -> events.EventBroker:
        """The event service's state: subscriptions and firmware behaviours (see events.py)."""
        return self._events

    def reboot(self) -> None:
        """Reboot the camera's event service: every subscription is forgotten."""
        self._events.reboot()

    def set_motion(self, active: bool) -> None:
        """Queue a motion change (IsMotion and MotionAlarm State) for every subscriber."""
        self._events.publish_motion(active, self.camera_now())

    def camera_now(self) -> dt.datetime:
        """The camera's clock: real UTC time plus clock_skew seconds."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_skew)

    # ----------------------------------------------------------------- plumbing

    def _base_url(self, request: web.Request) -> str:
        """URL clients should use: the bound host, or the Host they reached us by if wildcard."""
        host = self.host
        if host in WILDCARD_HOSTS:
            host = request.url.host or "127.0.0.1"
        return f"http://{url_host(host)}:{self.port}"

    def _service_base(self, request: web.Request) -> str:
        """Where the service XAddrs point: this server, unless a hostile base is switched on."""
        return self.hostile_service_base or self._base_url(request)

    async def _sleep_unless_closing(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    @web.middleware
    async def _faults(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Apply the server-wide fault switches before any real handling."""
        if self.offline:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503, text="offline")
        await self._sleep_unless_closing(self.delay)
        if self.not_onvif:
            return web.Response(status=404, text=_NOT_FOUND_HTML, content_type="text/html")
        return await handler(request)

    async def _soap(self, request: web.Request) -> web.Response:
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _fault_response(
                SoapFaultError(400, "env:Sender", ("ter:InvalidArgs",), "Request too large")
            )
        try:
            soap_request = parse_request(data)
        except SoapParseError as err:
            return _fault_response(SoapFaultError(400, "env:Sender", ("ter:WellFormed",), str(err)))
        self.requests.append(soap_request.operation)
        del self.requests[:-_MAX_RECORDED_REQUESTS]
        if self.malformed_xml:
            return web.Response(body=_GARBAGE, content_type=SOAP_CONTENT_TYPE)
        service_key = request.path if "ident" not in request.match_info else SUBSCRIPTION_PATH
        operation = soap_request.operation
        handler = self._soap_handlers[service_key].get(operation)
        if (failure := self.http_failures.get(operation)) is not None:
            return await self._http_failure(failure)
        try:
            if handler is None:
                raise SoapFaultError(
                    500,
                    "env:Receiver",
                    ("ter:ActionNotSupported",),
                    f"{operation} is not supported by this service",
                )
            if (subcode := self.soap_faults.get(operation)) is not None:
                raise SoapFaultError(500, "env:Receiver", (subcode,), f"{operation} failed")
            if operation in self.http_digest_operations:
                accepted, stale = self._digest.verify(
                    request.headers.get("Authorization"),
                    method=request.method,
                    uri=request.path_qs,
                    username=self.config.username,
                    password=self.config.password,
                )
                if not accepted:
                    challenge = self._digest.challenge(stale=stale)
                    return web.Response(status=401, headers={"WWW-Authenticate": challenge})
            else:
                self._authorize(soap_request)
            return await handler(soap_request, request)
        except SoapFaultError as err:
            if self.auth_fault_empty and "ter:NotAuthorized" in err.subcodes:
                return web.Response(status=401)
            return _fault_response(err)

    async def _http_failure(self, failure: Literal["500", "empty", "timeout"]) -> web.Response:
        if failure == "timeout":
            await self._sleep_unless_closing(self.hang_seconds)
            return web.Response(status=503)
        if failure == "empty":
            return web.Response(status=200, content_type=SOAP_CONTENT_TYPE)
        return web.Response(
            status=500,
            text="<html><body><h1>500 Internal Server Error</h1></body></html>",
            content_type="text/html",
        )

    def _authorize(self, soap_request: SoapRequest) -> None:
        if soap_request.operation in self.preauth_operations:
            return
        if not verify_username_token(
            soap_request.header,
            username=self.config.username,
            password=self.config.password,
            camera_now=self.camera_now(),
            nonces=self._nonces,
        ):
            raise SoapFaultError(
                self.auth_fault_status,
                "env:Sender",
                ("ter:NotAuthorized",),
                "Sender not Authorized",
            )

    def _find_profile(self, soap_request: SoapRequest) -> SimProfile:
        token = child_text(soap_request.body, "ProfileToken")
        if not self.no_profiles:
            for profile in self.config.profiles:
                if profile.token == token:
                    return profile
        raise SoapFaultError(
            400, "env:Sender", ("ter:InvalidArgVal", "ter:NoProfile"), "Profile does not exist"
        )

    # ----------------------------------------------------------------- device service

    async def _get_system_date_and_time(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(device.system_date_and_time(self.camera_now()), req)

    async def _get_device_information(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(device.device_information(self.config), req)

    async def _get_network_interfaces(self, req: SoapRequest, _: web.Request) -> web.Response:
        if self.no_mac:
            raise SoapFaultError(
                500, "env:Receiver", ("ter:ActionNotSupported",), "Network interfaces unavailable"
            )
        addresses = self.reported_addresses or [self.host]
        return _soap_response(device.network_interfaces(self.config, addresses), req)

    async def _get_capabilities(self, req: SoapRequest, http: web.Request) -> web.Response:
        base = self._service_base(http)
        return _soap_response(device.capabilities(base, with_events=self._events.advertised), req)

    async def _get_services(self, req: SoapRequest, http: web.Request) -> web.Response:
        base = self._service_base(http)
        return _soap_response(device.services(base, with_events=self._events.advertised), req)

    async def _get_scopes(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(device.scopes(self.config), req)

    async def _get_hostname(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(device.hostname(self.config), req)

    # ----------------------------------------------------------------- media service

    async def _get_profiles(self, req: SoapRequest, _: web.Request) -> web.Response:
        config = self.config
        if self.no_profiles:
            config = SimConfig(profiles=[])
        body = media.profiles(
            config, with_video=not self.no_video_profiles, with_encoder=not self.nvr_profiles
        )
        return _soap_response(body, req)

    async def _get_profile(self, req: SoapRequest, _: web.Request) -> web.Response:
        found = self._find_profile(req)
        body = media.profile(
            found,
            self.config,
            with_video=not self.no_video_profiles,
            with_encoder=not self.nvr_profiles,
        )
        return _soap_response(body, req)

    async def _get_snapshot_uri(self, req: SoapRequest, http: web.Request) -> web.Response:
        profile = self._find_profile(req)
        uri = self.hostile_snapshot_uri
        if uri is None:
            uri = f"{self._base_url(http)}/snapshot/{profile.token}.jpg"
        return _soap_response(media.snapshot_uri(uri), req)

    async def _get_stream_uri(self, req: SoapRequest, http: web.Request) -> web.Response:
        profile = self._find_profile(req)
        uri = self.hostile_stream_uri
        if uri is None:
            host = http.url.host if self.host in WILDCARD_HOSTS else self.host
            uri = f"rtsp://{url_host(host or '127.0.0.1')}:{self.rtsp_port}/{profile.token}"
        return _soap_response(media.stream_uri(uri), req)

    async def _get_video_sources(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(media.video_sources(self.config), req)

    # ----------------------------------------------------------------- events service

    async def _get_event_properties(self, req: SoapRequest, _: web.Request) -> web.Response:
        return _soap_response(events.event_properties(), req)

    async def _create_pull_point_subscription(
        self, req: SoapRequest, http: web.Request
    ) -> web.Response:
        now = self.camera_now()
        terminates_at = events.parse_termination(
            child_text(req.body, "InitialTerminationTime"), now
        )
        if terminates_at is None or terminates_at <= now:
            raise SoapFaultError(
                400,
                "env:Sender",
                ("wsnt:UnacceptableInitialTerminationTimeFault",),
                "Invalid InitialTerminationTime",
            )
        if self._events.refuse_subscriptions:
            raise SoapFaultError(
                500,
                "env:Receiver",
                ("ter:Action", "ter:TooManySubscriptions"),
                "Too many subscriptions",
            )
        subscription = self._events.create(self._events.grant(terminates_at, now), now)
        terminates_at = subscription.terminates_at
        url = self._base_url(http) + SUBSCRIPTION_PATH + subscription.ident
        return _soap_response(events.subscription_created(url, now, terminates_at), req)

    def _subscription(self, http: web.Request) -> PullPointSubscription:
        subscription = self._events.get(http.match_info["ident"], self.camera_now())
        if subscription is None:
            raise SoapFaultError(
                400,
                "env:Sender",
                ("wsrf-rw:ResourceUnknownFault",),
                "Subscription does not exist or has expired",
            )
        return subscription

    async def _pull_messages(self, req: SoapRequest, http: web.Request) -> web.Response:
        subscription = self._subscription(http)
        timeout = events.parse_duration(child_text(req.body, "Timeout") or "PT0S")
        try:
            limit = int(child_text(req.body, "MessageLimit") or "1")
        except ValueError:
            limit = 1
        if timeout is None:
            raise SoapFaultError(400, "env:Sender", ("ter:InvalidArgVal",), "Invalid Timeout")
        wait = min(timeout, events.MAX_PULL_WAIT).total_seconds()
        messages = await subscription.pull(limit, wait, self._closing)
        if not self._events.live(subscription, self.camera_now()):
            # Expired or dropped while the poll waited (a reboot, an Unsubscribe): forgotten.
            raise SoapFaultError(
                400,
                "env:Sender",
                ("wsrf-rw:ResourceUnknownFault",),
                "Subscription does not exist or has expired",
            )
        url = self._base_url(http) + SUBSCRIPTION_PATH + subscription.ident
        return _soap_response(events.pulled(url, self.camera_now(), subscription, messages), req)

    async def _renew(self, req: SoapRequest, http: web.Request) -> web.Response:
        subscription = self._subscription(http)
        now = self.camera_now()
        terminates_at = events.parse_termination(child_text(req.body, "TerminationTime"), now)
        if terminates_at is None or terminates_at <= now:
            raise SoapFaultError(
                400,
                "env:Sender",
                ("wsnt:UnacceptableTerminationTimeFault",),
                "Invalid TerminationTime",
            )
        subscription.terminates_at = terminates_at = self._events.grant(terminates_at, now)
        return _soap_response(events.renewed(now, terminates_at), req)

    async def _unsubscribe(self, req: SoapRequest, http: web.Request) -> web.Response:
        subscription = self._subscription(http)
        self._events.subscriptions.pop(subscription.ident, None)
        subscription.wakeup.set()
        return _soap_response("<wsnt:UnsubscribeResponse/>", req)

    async def _set_synchronization_point(self, req: SoapRequest, http: web.Request) -> web.Response:
        subscription = self._subscription(http)
        subscription.push(
            events.motion_notifications(self._events.motion, self.camera_now(), "Initialized")
        )
        return _soap_response("<tev:SetSynchronizationPointResponse/>", req)

    # ----------------------------------------------------------------- snapshots

    async def _snapshot(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        token = name.removesuffix(".jpg")
        if name == token or not any(p.token == token for p in self.config.profiles):
            return web.Response(status=404, text="no such snapshot")
        accepted, stale = self._snapshot_authorized(request)
        if not accepted:
            return self._snapshot_challenge(stale=stale)
        scene = self.config.scene
        if scene is not None:
            self.snapshot_requests += 1
            return web.Response(body=scene.current().image, content_type="image/jpeg")
        images = self.config.images
        if not images:
            return web.Response(status=503, text="no image available")
        path = images[self.snapshot_requests % len(images)]
        self.snapshot_requests += 1
        return web.Response(body=await self._image_bytes(path), content_type="image/jpeg")

    def _snapshot_authorized(self, request: web.Request) -> tuple[bool, bool]:
        """Return (accepted, digest nonce was stale)."""
        header = request.headers.get("Authorization")
        config = self.config
        match self.snapshot_auth:
            case "none":
                return True, False
            case "basic":
                ok = verify_basic(header, username=config.username, password=config.password)
                return ok, False
            case "digest":
                return self._digest.verify(
                    header,
                    method=request.method,
                    uri=request.path_qs,
                    username=config.username,
                    password=config.password,
                )

    def _snapshot_challenge(self, *, stale: bool) -> web.Response:
        if self.snapshot_auth == "basic":
            challenge = 'Basic realm="SimCam"'
        else:
            challenge = self._digest.challenge(stale=stale)
        return web.Response(
            status=401, text="401 Unauthorized", headers={"WWW-Authenticate": challenge}
        )

    async def _image_bytes(self, path: Path) -> bytes:
        cached = self._images.get(path)
        if cached is None:
            cached = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
            self._images[path] = cached
        return cached
