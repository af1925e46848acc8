"""WS-Security UsernameToken (PasswordDigest) checking, as an ONVIF camera does it."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
import datetime as dt
import hashlib
import hmac
from xml.etree import ElementTree as ET

from .soap import WSSE, WSU

# How far the client's Created timestamp may be from the camera clock.
MAX_CLOCK_DIFFERENCE = dt.timedelta(seconds=5)
# Nonces are remembered for longer than the accepted Created window, so a replay inside it fails.
_NONCE_MEMORY = dt.timedelta(minutes=5)
_MAX_REMEMBERED_NONCES = 10_000
_DIGEST_TYPE_SUFFIX = "#PasswordDigest"


class NonceCache:
    """Bounded memory of recently used nonces to refuse replayed requests."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, dt.datetime] = OrderedDict()

    def check_and_remember(self, nonce: bytes, now: dt.datetime) -> bool:
        """Return False when the nonce was already used; remember it otherwise."""
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < _NONCE_MEMORY and len(self._seen) < _MAX_REMEMBERED_NONCES:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


def _parse_created(value: str) -> dt.datetime | None:
    try:
        created = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return created


def verify_username_token(
    header: ET.Element | None,
    *,
    username: str,
    password: str,
    camera_now: dt.datetime,
    nonces: NonceCache,
) -> bool:
    """Check a UsernameToken with PasswordDigest against the camera's credentials and clock."""
    if header is None:
        return False
    token = header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if token is None:
        return False
    user = token.findtext(f"{{{WSSE}}}Username")
    password_node = token.find(f"{{{WSSE}}}Password")
    nonce_text = token.findtext(f"{{{WSSE}}}Nonce")
    created_text = token.findtext(f"{{{WSU}}}Created")
    if user is None or password_node is None or not nonce_text or not created_text:
        return False
    # Plain-text passwords are refused: real cameras configured for digest do the same.
    if not password_node.get("Type", "").endswith(_DIGEST_TYPE_SUFFIX):
        return False
    created = _parse_created(created_text)
    if created is None or abs(created - camera_now) > MAX_CLOCK_DIFFERENCE:
        return False
    try:
        nonce = base64.b64decode(nonce_text.strip(), validate=True)
    except binascii.Error:
        return False
    expected = base64.b64encode(
        hashlib.sha1(nonce + created_text.strip().encode() + password.encode()).digest()
    ).decode()
    user_ok = hmac.compare_digest(user.strip().encode(), username.encode())
    digest_ok = hmac.compare_digest((password_node.text or "").strip().encode(), expected.encode())
    if not (user_ok and digest_ok):
        return False
    return nonces.check_and_remember(nonce, camera_now)
