"""WS-Discovery of ONVIF cameras on the local network (blocking: run it in an executor).

Probes for ``dn:NetworkVideoTransmitter`` with the Profile S streaming scope, as Home Assistant
core's onvif integration does, and turns the ProbeMatches into DiscoveredCamera records.
"""

from __future__ import annotations

from collections.abc import Iterable
import ipaddress
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from wsdiscovery.discovery import ThreadedWSDiscovery
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope

from .models import DiscoveredCamera

_LOGGER = logging.getLogger(__name__)

NVT_TYPE = QName(  # type: ignore[no-untyped-call]
    "http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dp0"
)
STREAMING_SCOPE = "onvif://www.onvif.org/Profile/Streaming"
_NAME_PREFIX = "onvif://www.onvif.org/name/"
_HARDWARE_PREFIX = "onvif://www.onvif.org/hardware/"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _InterfaceFilteredDiscovery(ThreadedWSDiscovery):
    """ThreadedWSDiscovery that only probes from the given local addresses (all when None)."""

    def __init__(self, allowed: frozenset[str] | None, **kwargs: Any) -> None:
        self._allowed = allowed
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def _networkAddressAdded(self, addr: Any) -> None:  # noqa: N802 - library hook name
        if self._allowed is None or str(addr) in self._allowed:
            super()._networkAddressAdded(addr)  # type: ignore[no-untyped-call]

    def _networkAddressRemoved(self, addr: Any) -> None:  # noqa: N802 - library hook name
        if self._allowed is None or str(addr) in self._allowed:
            super()._networkAddressRemoved(addr)  # type: ignore[no-untyped-call]


def discover_cameras(
    timeout: float = 4.0, *, interfaces: list[str] | None = None
) -> list[DiscoveredCamera]:
    """Probe the network for ``timeout`` seconds and return the cameras that answered.

    ``interfaces`` are local IP addresses to probe from (default: every non-loopback address).
    Blocks the calling thread for ``timeout`` seconds; the discovery threads are always stopped.
    """
    allowed = None
    if interfaces is not None:
        allowed = frozenset(str(ipaddress.ip_address(address)) for address in interfaces)
    # ttl=4 crosses a few routers like core's probe; relates_to accepts cameras that reuse ids.
    probe = _InterfaceFilteredDiscovery(allowed, ttl=4, relates_to=True)
    try:
        probe.start()  # type: ignore[no-untyped-call]
        services = probe.searchServices(  # type: ignore[no-untyped-call]
            types=[NVT_TYPE],
            scopes=[Scope(STREAMING_SCOPE)],  # type: ignore[no-untyped-call]
            timeout=timeout,
        )
    finally:
        probe.stop()  # type: ignore[no-untyped-call]
    cameras = cameras_from_services(services)
    _LOGGER.debug("WS-Discovery found %d camera(s)", len(cameras))
    return cameras


def _scope_value(scopes: Iterable[str], prefix: str) -> str:
    for scope in scopes:
        if scope.lower().startswith(prefix):
            return unquote(scope[len(prefix) :]).strip()
    return ""


def camera_from_service(service: Any) -> DiscoveredCamera | None:
    """Build a DiscoveredCamera from one wsdiscovery Service, or None if it has no usable XAddr."""
    scopes = tuple(str(scope.getValue()) for scope in service.getScopes() or ())
    for xaddr in service.getXAddrs() or ():
        try:
            parts = urlsplit(xaddr)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            continue
        if parts.hostname and port and parts.scheme.lower() in _DEFAULT_PORTS:
            name = _scope_value(scopes, _NAME_PREFIX)
            hardware = _scope_value(scopes, _HARDWARE_PREFIX)
            return DiscoveredCamera(
                host=parts.hostname,
                port=port,
                name=name or hardware or parts.hostname,
                hardware=hardware,
                xaddr=xaddr,
                scopes=scopes,
            )
    return None


def cameras_from_services(services: Iterable[Any]) -> list[DiscoveredCamera]:
    """Cameras from ProbeMatch services, one per host and port, sorted by host and port."""
    unique: dict[tuple[str, int], DiscoveredCamera] = {}
    for service in services:
        if (camera := camera_from_service(service)) is not None:
            unique.setdefault((camera.host, camera.port), camera)
    return [unique[key] for key in sorted(unique)]
