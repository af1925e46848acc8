"""HTTP Digest (RFC 7616, MD5, qop=auth) and Basic authentication for the snapshot endpoint."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
import hashlib
import hmac
import re
import secrets
import time

REALM = "SimCam"
_NONCE_LIFETIME_S = 300.0
_MAX_NONCES = 1024
_PARAM = re.compile(r'(\w+)=("((?:[^"\\]|\\.)*)"|[^\s,]+)')


def _md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def parse_digest_header(value: str) -> dict[str, str] | None:
    """Parse an 'Authorization: Digest ...' header into its parameters."""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted = match.group(3)
        params[match.group(1).lower()] = quoted if quoted is not None else match.group(2)
    return params


class DigestAuthenticator:
    """Issues nonces and checks Digest responses, tracking nonce counts against replays."""

    def __init__(self) -> None:
        # nonce -> (issued at, highest nonce count seen)
        self._nonces: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._opaque = secrets.token_hex(16)

    def challenge(self, *, stale: bool = False) -> str:
        """Return a WWW-Authenticate header value with a fresh nonce."""
        now = time.monotonic()
        while self._nonces and (
            len(self._nonces) >= _MAX_NONCES
            or now - next(iter(self._nonces.values()))[0] > _NONCE_LIFETIME_S
        ):
            self._nonces.popitem(last=False)
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = (now, 0)
        header = (
            f'Digest realm="{REALM}", qop="auth", algorithm=MD5, '
            f'nonce="{nonce}", opaque="{self._opaque}"'
        )
        return header + (", stale=true" if stale else "")

    def verify(
        self, header: str | None, *, method: str, uri: str, username: str, password: str
    ) -> tuple[bool, bool]:
        """Check an Authorization header; returns (accepted, nonce_was_stale)."""
        params = parse_digest_header(header) if header else None
        if not params:
            return False, False
        nonce = params.get("nonce", "")
        issued = self._nonces.get(nonce)
        if issued is None or time.monotonic() - issued[0] > _NONCE_LIFETIME_S:
            return False, True
        try:
            count = int(params.get("nc", ""), 16)
        except ValueError:
            return False, False
        if (
            params.get("qop") != "auth"
            or params.get("uri") != uri
            or params.get("algorithm", "MD5").upper() != "MD5"
            or count <= issued[1]
        ):
            return False, False
        ha1 = _md5(f"{username}:{REALM}:{password}")
        ha2 = _md5(f"{method}:{uri}")
        expected = _md5(f"{ha1}:{nonce}:{params.get('nc')}:{params.get('cnonce', '')}:auth:{ha2}")
        user_ok = hmac.compare_digest(params.get("username", "").encode(), username.encode())
        response_ok = hmac.compare_digest(params.get("response", "").encode(), expected.encode())
        if not (user_ok and response_ok):
            return False, False
        self._nonces[nonce] = (issued[0], count)
        return True, False


def verify_basic(header: str | None, *, username: str, password: str) -> bool:
    """Check an 'Authorization: Basic ...' header in constant time."""
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, given = decoded.partition(":")
    expected = f"{username}:{password}".encode()
    return bool(sep) and hmac.compare_digest(f"{user}:{given}".encode(), expected)
