"""Which detector URLs we talk to, and how a pinned certificate fingerprint is written.

Plain HTTP carries the API key and every camera frame in clear text, so it is accepted only where
the network is the user's own: loopback, private, link-local and unique-local addresses, and host
names that only resolve inside a home network. No DNS here: a public-looking name is refused over
HTTP whatever it resolves to today.
"""

from __future__ import annotations

from dataclasses import dataclass
import ipaddress
import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that only mean something on the local network (RFC 6762 .local, RFC 8375 .home.arpa, the
# ICANN-reserved .internal, and the .lan routers hand out).
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
# What people paste besides the hex: our server's "TLS certificate SHA-256 fingerprint: AB:CD...",
# openssl's "sha256 Fingerprint=AB:CD..." or a "sha256:" prefix.
_FINGERPRINT_PREFIX = re.compile(r"^(?:.*fingerprint\s*[:=]|sha-?256\s*[:=]?)\s*", re.IGNORECASE)


class DetectorUrlError(ValueError):
    """A detector URL or fingerprint is refused; `reason` is the form error key."""

    reason = "invalid_url"


class InvalidUrlError(DetectorUrlError):
    """Not an http(s) URL of a server: other scheme, credentials, a path, a query."""

    reason = "invalid_url"


class PlaintextPublicError(DetectorUrlError):
    """http:// to an address beyond the home network."""

    reason = "plaintext_public"


class InvalidFingerprintError(DetectorUrlError):
    """Not a SHA-256 certificate fingerprint."""

    reason = "invalid_fingerprint"


@dataclass(frozen=True, slots=True)
class DetectorUrl:
    """A checked detector URL."""

    base: str
    """scheme://host:port, lower case, no trailing slash; endpoint paths are appended to it."""
    scheme: str
    host: str
    """Host name or IP address (IPv6 without brackets)."""
    port: int
    plaintext: bool
    """True for http:// (then the integration raises a repair issue saying so)."""

    @property
    def loopback(self) -> bool:
        """Whether the detector runs on this machine (traffic to it never leaves the host)."""
        address = _ip(self.host)
        return self.host == "localhost" if address is None else address.is_loopback


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _home_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_private covers RFC 1918, loopback, link-local and IPv6 unique-local (fc00::/7).
    return address.is_loopback or address.is_private or address.is_link_local


def _home_name(host: str) -> bool:
    return host == "localhost" or "." not in host or host.endswith(LOCAL_SUFFIXES)


def check_detector_url(url: str) -> DetectorUrl:
    """The normalised URL, or InvalidUrlError / PlaintextPublicError (ValueError) saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise InvalidUrlError("not a valid URL") from err
    scheme = parts.scheme.lower()
    if port == 0:
        raise InvalidUrlError("port 0 is not a server's port")
    if scheme not in DEFAULT_PORTS:
        raise InvalidUrlError("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidUrlError("the URL must not contain a user name or password")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise InvalidUrlError("the URL must be only scheme, host and port (no path or query)")
    host = (parts.hostname or "").rstrip(".")
    address = _ip(host)
    if address is None and not all(_LABEL.match(label) for label in host.split(".")):
        raise InvalidUrlError("the URL has no valid host")
    if address is not None and (address.is_unspecified or address.is_multicast):
        raise InvalidUrlError("the URL's address is not a server's")
    plaintext = scheme == "http"
    if plaintext and not (_home_address(address) if address is not None else _home_name(host)):
        raise PlaintextPublicError("plain HTTP is only allowed to loopback or private addresses")
    port = port or DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    return DetectorUrl(f"{scheme}://{shown}:{port}", scheme, host, port, plaintext)


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits, or InvalidFingerprintError.

    Accepts what our server prints (upper-case hex pairs joined by colons), with or without its
    label, with spaces, or plain hex.
    """
    raw = _FINGERPRINT_PREFIX.sub("", text.strip())
    digits = re.sub(r"[\s:]", "", raw).lower()
    if not _HEX.match(digits):
        raise InvalidFingerprintError("a SHA-256 fingerprint is 64 hexadecimal digits (32 pairs)")
    return digits
