"""WS-Discovery at the executor boundary: real wsdiscovery Service objects in, cameras out.

The probe itself is exercised for real across two network namespaces in test_discovery_netns.py;
here the threads are started and stopped for real but probe from no interface (loopback is never a
WS-Discovery source), so nothing is sent onto the host's network.
"""

from __future__ import annotations

import threading

import pytest
from wsdiscovery.discovery import ThreadedWSDiscovery
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope
from wsdiscovery.service import Service

from custom_components.home_security_intel.onvif import DiscoveredCamera, discover_cameras
from custom_components.home_security_intel.onvif.discovery import (
    NVT_TYPE,
    cameras_from_services,
)

NVT = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")


def probe_match(xaddrs: list[str], *scopes: str, epr: str = "urn:uuid:1") -> Service:
    """A Service as wsdiscovery builds it from a ProbeMatch (scopes have %20 already decoded)."""
    all_scopes = ["onvif://www.onvif.org/Profile/Streaming", *scopes]
    return Service([NVT], [Scope(s) for s in all_scopes], xaddrs, epr, 0)


def test_parses_name_hardware_host_and_port() -> None:
    service = probe_match(
        ["http://192.168.1.20:8899/onvif/device_service", "http://[fd00::20]/onvif/device_service"],
        "onvif://www.onvif.org/name/Front Door%C3%A9",
        "onvif://www.onvif.org/hardware/SimCam%204K",
        "onvif://www.onvif.org/location/garden",
    )

    assert cameras_from_services([service]) == [
        DiscoveredCamera(
            host="192.168.1.20",
            port=8899,
            name="Front Dooré",
            hardware="SimCam 4K",
            xaddr="http://192.168.1.20:8899/onvif/device_service",
            scopes=(
                "onvif://www.onvif.org/Profile/Streaming",
                "onvif://www.onvif.org/name/Front Door%C3%A9",
                "onvif://www.onvif.org/hardware/SimCam%204K",
                "onvif://www.onvif.org/location/garden",
            ),
        )
    ]


def test_default_ports_names_and_case_insensitive_scopes() -> None:
    plain = probe_match(["http://10.0.0.5/onvif/device_service"], epr="a")
    tls = probe_match(
        ["https://10.0.0.6/onvif/device_service"], "ONVIF://www.onvif.org/Hardware/IPC-1", epr="b"
    )

    found = cameras_from_services([tls, plain])

    assert [(c.host, c.port, c.name, c.hardware) for c in found] == [
        ("10.0.0.5", 80, "10.0.0.5", ""),
        ("10.0.0.6", 443, "IPC-1", "IPC-1"),
    ]


def test_skips_unusable_xaddrs_and_deduplicates() -> None:
    services = [
        probe_match([], epr="no-xaddr"),
        probe_match(["soap.udp://239.255.255.250:3702"], epr="no-http"),
        probe_match(["http://10.0.0.7:99999/bad", "http://10.0.0.7:2020/ok"], epr="second-ok"),
        probe_match(["http://10.0.0.7:2020/ok"], "onvif://www.onvif.org/name/dup", epr="dup"),
    ]

    found = cameras_from_services(services)

    assert [(c.host, c.port, c.name) for c in found] == [("10.0.0.7", 2020, "10.0.0.7")]


def _discovery_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if type(t).__module__.startswith("wsdiscovery") and t.is_alive()
    }


def test_probe_runs_and_always_stops_its_threads() -> None:
    before = _discovery_threads()

    assert discover_cameras(0.2, interfaces=["127.0.0.1"]) == []

    assert _discovery_threads() == before


def test_threads_stop_even_when_the_probe_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # A failing probe cannot be provoked through the network here, so searchServices is replaced.
    def fail(*_args: object, **_kwargs: object) -> list[Service]:
        raise OSError("network is down")

    monkeypatch.setattr(ThreadedWSDiscovery, "searchServices", fail)
    before = _discovery_threads()

    with pytest.raises(OSError, match="network is down"):
        discover_cameras(0.1, interfaces=[])

    assert _discovery_threads() == before


def test_probe_asks_for_network_video_transmitters() -> None:
    assert NVT_TYPE.getFullname() == NVT.getFullname()


def test_bad_interface_address_is_rejected_before_starting() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        discover_cameras(0.1, interfaces=["eth0"])
