"""WS-Discovery announcement of the simulator as an ONVIF NetworkVideoTransmitter."""

from __future__ import annotations

import ipaddress
from typing import Any

from wsdiscovery.publishing import ThreadedWSPublishing
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope

from .device import DEVICE_PATH, scope_uris
from .server import WILDCARD_HOSTS, OnvifSimulator, url_host

NVT_NAMESPACE = "http://www.onvif.org/ver10/network/wsdl"


class _FamilyAwarePublishing(ThreadedWSPublishing):
    """ThreadedWSPublishing whose unicast replies go only to the thread of the right family.

    WSDiscovery 2.1.2 queues every ProbeMatch on both the IPv4 and the IPv6 thread; the thread of
    the other family then dies on sendto() and the camera stops answering probes.
    """

    def sendUnicastMessage(self, env: Any, host: str, port: int, *args: Any, **kwargs: Any) -> None:
        version = ipaddress.ip_address(host.partition("%")[0]).version
        thread = self._networkingThread_v4 if version == 4 else self._networkingThread_v6
        if thread is not None:
            thread.addUnicastMessage(env, host, port, *args, **kwargs)


class Announcer:
    """Publishes one simulator via WS-Discovery (Hello, Probe/Resolve matches, Bye on stop).

    start() and stop() block (they start and join the library's threads): call them in a thread.
    """

    def __init__(self, simulator: OnvifSimulator) -> None:
        self._simulator = simulator
        self._publisher: ThreadedWSPublishing | None = None

    @property
    def xaddr(self) -> str:
        """The device service address announced; {ip} lets the library fill in each address."""
        sim = self._simulator
        host = "{ip}" if sim.host in WILDCARD_HOSTS else url_host(sim.host)
        return f"http://{host}:{sim.port}{DEVICE_PATH}"

    def start(self) -> None:
        """Start the WS-Discovery threads and send Hello."""
        publisher = _FamilyAwarePublishing()  # type: ignore[no-untyped-call]
        publisher.start()  # type: ignore[no-untyped-call]
        types = [QName(NVT_NAMESPACE, "NetworkVideoTransmitter", "dn")]  # type: ignore[no-untyped-call]
        scopes = [Scope(uri) for uri in scope_uris(self._simulator.config)]  # type: ignore[no-untyped-call]
        publisher.publishService(types=types, scopes=scopes, xAddrs=[self.xaddr])  # type: ignore[no-untyped-call]
        self._publisher = publisher

    def stop(self) -> None:
        """Send Bye and stop the threads."""
        if self._publisher is not None:
            self._publisher.clearLocalServices()  # type: ignore[no-untyped-call]
            self._publisher.stop()  # type: ignore[no-untyped-call]
            self._publisher = None
