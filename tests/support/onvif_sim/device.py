"""Device management service answers (tds): clock, identity, network, capabilities, services."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from .config import SimConfig
from .soap import text

DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"

DEVICE_PATH = "/onvif/device_service"
MEDIA_PATH = "/onvif/media_service"
EVENTS_PATH = "/onvif/events_service"


def _date_time(value: dt.datetime) -> str:
    return (
        f"<tt:Time><tt:Hour>{value.hour}</tt:Hour><tt:Minute>{value.minute}</tt:Minute>"
        f"<tt:Second>{value.second}</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>{value.year}</tt:Year><tt:Month>{value.month}</tt:Month>"
        f"<tt:Day>{value.day}</tt:Day></tt:Date>"
    )


def system_date_and_time(camera_now: dt.datetime) -> str:
    """GetSystemDateAndTime: the (possibly skewed) camera clock, in UTC."""
    utc = camera_now.astimezone(dt.UTC)
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime>{_date_time(utc)}</tt:UTCDateTime>"
        f"<tt:LocalDateTime>{_date_time(utc)}</tt:LocalDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


def device_information(config: SimConfig) -> str:
    """GetDeviceInformation: manufacturer, model, firmware, serial and hardware id."""
    return (
        "<tds:GetDeviceInformationResponse>"
        f"<tds:Manufacturer>{text(config.manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{text(config.model)}</tds:Model>"
        f"<tds:FirmwareVersion>{text(config.firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{text(config.serial)}</tds:SerialNumber>"
        f"<tds:HardwareId>{text(config.hardware_id)}</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>"
    )


def network_interfaces(config: SimConfig, addresses: list[str]) -> str:
    """GetNetworkInterfaces: one wired interface with the MAC and these IPv4 addresses.

    No interface when mac is None. Several addresses are several manual entries on the one
    interface (a multi-homed camera); addresses that are not IPv4 are left out.
    """
    manual = "".join(
        f"<tt:Manual><tt:Address>{text(address)}</tt:Address>"
        "<tt:PrefixLength>24</tt:PrefixLength></tt:Manual>"
        for address in addresses
        if ":" not in address
    )
    interface = ""
    if config.mac is not None:
        interface = (
            '<tds:NetworkInterfaces token="eth0">'
            "<tt:Enabled>true</tt:Enabled>"
            f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{text(config.mac)}</tt:HwAddress>"
            "<tt:MTU>1500</tt:MTU></tt:Info>"
            "<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config>"
            f"{manual}<tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>"
            "</tds:NetworkInterfaces>"
        )
    return f"<tds:GetNetworkInterfacesResponse>{interface}</tds:GetNetworkInterfacesResponse>"


def capabilities(base_url: str, *, with_events: bool = True) -> str:
    """GetCapabilities: Device, Events (PullPoint) and Media XAddrs on this server."""
    events = (
        f"<tt:Events><tt:XAddr>{text(base_url + EVENTS_PATH)}</tt:XAddr>"
        "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
        "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
        "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
    )
    return (
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{text(base_url + DEVICE_PATH)}</tt:XAddr></tt:Device>"
        + (events if with_events else "")
        + f"<tt:Media><tt:XAddr>{text(base_url + MEDIA_PATH)}</tt:XAddr>"
        "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
        "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
        "</tt:StreamingCapabilities></tt:Media>"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>"
    )


def services(base_url: str, *, with_events: bool = True) -> str:
    """GetServices: device, media and events services with their XAddrs and versions."""
    entries = (
        (DEVICE_NS, DEVICE_PATH, 2, 60),
        (MEDIA_NS, MEDIA_PATH, 2, 60),
        *(((EVENTS_NS, EVENTS_PATH, 2, 60),) if with_events else ()),
    )
    body = "".join(
        f"<tds:Service><tds:Namespace>{text(namespace)}</tds:Namespace>"
        f"<tds:XAddr>{text(base_url + path)}</tds:XAddr>"
        f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version>"
        "</tds:Service>"
        for namespace, path, major, minor in entries
    )
    return f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>"


def scope_uris(config: SimConfig) -> tuple[str, ...]:
    """The fixed ONVIF scopes of a Profile S camera (also announced by WS-Discovery)."""
    return (
        "onvif://www.onvif.org/Profile/Streaming",
        "onvif://www.onvif.org/type/video_encoder",
        f"onvif://www.onvif.org/name/{quote(config.model)}",
        f"onvif://www.onvif.org/hardware/{quote(config.hardware_id)}",
    )


def scopes(config: SimConfig) -> str:
    """GetScopes: the fixed scopes, as ScopeDef/ScopeItem pairs."""
    items = scope_uris(config)
    body = "".join(
        f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{text(item)}</tt:ScopeItem>"
        "</tds:Scopes>"
        for item in items
    )
    return f"<tds:GetScopesResponse>{body}</tds:GetScopesResponse>"


def hostname(config: SimConfig) -> str:
    """GetHostname: a hostname derived from the serial number."""
    name = "simcam-" + "".join(c for c in config.serial.lower() if c.isalnum() or c == "-")
    return (
        "<tds:GetHostnameResponse><tds:HostnameInformation>"
        f"<tt:FromDHCP>false</tt:FromDHCP><tt:Name>{text(name)}</tt:Name>"
        "</tds:HostnameInformation></tds:GetHostnameResponse>"
    )
