"""Guard for URIs a camera hands us (snapshot and stream): they may only point back at the camera.

A camera (or something pretending to be one) chooses these URIs, and Home Assistant then fetches
them with the camera's credentials. Without this guard a hostile device could make Home Assistant
read cloud metadata, local services or other hosts on the network (server-side request forgery), or
leak the credentials to another host.
"""

from __future__ import annotations

from collections.abc import Collection
import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

from .errors import UnsafeUri

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES: dict[str, frozenset[str]] = {
    "service": frozenset({"http", "https"}),  # ONVIF service addresses (XAddrs)
    "snapshot": frozenset({"http", "https"}),
    "stream": frozenset({"rtsp", "rtsps"}),
}

# Cloud instance-metadata endpoints: refused even when a camera is configured at them.
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})

# Spellings that getaddrinfo/inet_aton read as IPv4 although ipaddress does not: 2852039166,
# 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518.
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}")
# Whitespace, control characters and backslashes: urlsplit silently drops some of them and other
# parsers treat backslash as a path separator, so the host seen here could differ from the one used.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def _parse_ip(host: str) -> IPAddress | None:
    """Return the address a host literal stands for, unwrapping IPv4-mapped IPv6, or None."""
    candidate = host.strip("[]")
    try:
        address: IPAddress = ipaddress.ip_address(candidate)
    except ValueError:
        if not _LEGACY_IPV4.fullmatch(candidate):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        # Zone ids ("fe80::1%eth0") name an interface, not a different host.
        if address.scope_id is not None:
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def _normalise_host(host: str) -> IPAddress | str:
    """Return an IP address for IP literals, else the hostname lowercased without a trailing dot."""
    if (address := _parse_ip(host)) is not None:
        return address
    return host.strip("[]").rstrip(".").lower()


def _special_kind(host: IPAddress | str) -> str | None:
    """Name the kind of address that must not be reached unless it is the camera itself."""
    if isinstance(host, str):
        return "loopback" if host == "localhost" or host.endswith(".localhost") else None
    if host.is_loopback:
        return "loopback"
    if host.is_link_local:
        return "link-local"
    if host.is_unspecified:
        return "unspecified"
    if host.is_multicast:
        return "multicast"
    return None


def _is_metadata(host: IPAddress | str) -> bool:
    if isinstance(host, str):
        return host in _METADATA_HOSTNAMES
    return host in _METADATA_ADDRESSES


def uri_host(uri: str) -> str:
    """Return the host part of a URI for reporting, or an empty string if it has none."""
    try:
        return urlsplit(uri).hostname or ""
    except ValueError:
        return ""


def check_camera_uri(
    uri: str, camera_host: str, kind: str, *, camera_addresses: Collection[str] = ()
) -> str:
    """Return ``uri`` if it is safe to fetch for this camera, else raise UnsafeUri.

    User information in the URI is removed from what is returned (the host after it must be the
    camera's like any other); nothing else is changed.

    ``kind`` is ``"service"`` or ``"snapshot"`` (http/https), or ``"stream"`` (rtsp/rtsps).
    ``camera_addresses`` are the IP addresses the configured host name resolved to: cameras
    configured by name usually hand out URIs with their IP address, which is still the camera.
    """
    if kind not in ALLOWED_SCHEMES:
        raise ValueError(f"unknown URI kind {kind!r}")
    if _FORBIDDEN_CHARS.search(uri):
        raise UnsafeUri("URI contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise UnsafeUri("URI cannot be parsed or has an invalid port") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES[kind]:
        allowed = "/".join(sorted(ALLOWED_SCHEMES[kind]))
        raise UnsafeUri(f"{kind} URI scheme {scheme or 'missing'!r} is not {allowed}")
    if parts.netloc.count("@") > 1:
        # Parsers disagree on which "@" ends the user information, so on which host is meant.
        raise UnsafeUri("URI carries ambiguous user information", uri_host=parts.hostname or "")
    host_text = parts.hostname
    if not host_text:
        raise UnsafeUri("URI has no host")
    if port == 0:
        raise UnsafeUri("URI has port 0", uri_host=host_text)
    host = _normalise_host(host_text)
    if _is_metadata(host):
        raise UnsafeUri("URI points at a cloud metadata service", uri_host=host_text)
    own = {_normalise_host(camera_host), *(_normalise_host(a) for a in camera_addresses)}
    if host not in own:
        special = _special_kind(host)
        reason = f"URI points at a {special} address" if special else "URI host is not the camera"
        raise UnsafeUri(reason, uri_host=host_text)
    if "@" in parts.netloc:
        # Many cameras embed their own credentials ("rtsp://admin:pw@camera/..."). The host is the
        # camera's (checked above, on the host after the "@"), so the URI is kept, without them:
        # the integration adds the entry's credentials at use, and nothing stores the camera's.
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return uri


def camera_alias_uri(uri: str, camera_host: str, alias_addresses: Collection[str]) -> str:
    """``uri`` with its host replaced by ``camera_host`` when it names the camera another way.

    Another way is the unspecified address (``0.0.0.0``, ``::``: firmware that writes the address
    it listens on) or one of ``alias_addresses``, the addresses the camera reports for its own
    interfaces (multi-homed, or reached through another name or a NAT). Both can only mean the
    camera itself, and the rewritten URI reaches nothing but the configured host; any other host
    is left alone for check_camera_uri to judge (and refuse when it is not the camera's).
    Port, path, query and user information are kept; a URI that cannot be parsed is unchanged.
    """
    try:
        parts = urlsplit(uri)
        host_text = parts.hostname
    except ValueError:
        return uri
    if not host_text or _FORBIDDEN_CHARS.search(uri) or parts.netloc.count("@") > 1:
        return uri
    host = _normalise_host(host_text)
    aliases = {_normalise_host(a) for a in alias_addresses}
    unspecified = isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address) and (
        host.is_unspecified
    )
    if not unspecified and host not in aliases:
        return uri
    if host == _normalise_host(camera_host):
        return uri
    userinfo, at, _ = parts.netloc.rpartition("@")
    bracketed = ":" in camera_host and not camera_host.startswith("[")
    new_host = f"[{camera_host}]" if bracketed else camera_host
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return uri
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{new_host}{port}"))
