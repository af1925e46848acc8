"""API keys: strength rules at start, SHA-256 digests in memory, constant-time checks."""

from __future__ import annotations

import hashlib
import hmac
import re

MIN_KEY_LENGTH = 32
_PLACEHOLDER_WORDS = (
    "changeme",
    "yourapikey",
    "apikeyhere",
    "yourkey",
    "placeholder",
    "replaceme",
    "example",
    "secretkey",
    "password",
    "insertkey",
    "xxxxxxxx",
)
_SEQUENCES = ("0123456789abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")
_SEQUENCE_RUN = 8
_MIN_DISTINCT = 8


def key_problem(key: str) -> str | None:
    """Why this key must not be used, or None when it is acceptable."""
    if len(key) < MIN_KEY_LENGTH:
        return f"is shorter than {MIN_KEY_LENGTH} characters"
    if any(ch.isspace() for ch in key):
        return "contains whitespace"
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    for word in _PLACEHOLDER_WORDS:
        if word in folded:
            return "looks like a placeholder"
    if len(set(key)) < _MIN_DISTINCT:
        return "uses too few distinct characters"
    for period in range(1, len(key) // 2 + 1):
        if key == (key[:period] * (len(key) // period + 1))[: len(key)]:
            return "is a repeated pattern"
    for seq in _SEQUENCES:
        both = seq + seq[::-1]
        for start in range(len(folded) - _SEQUENCE_RUN + 1):
            if folded[start : start + _SEQUENCE_RUN] in both:
                return "contains a keyboard or counting sequence"
    return None


def split_keys(raw: str) -> list[str]:
    """Keys separated by commas or new lines, blanks dropped."""
    return [part.strip() for part in re.split(r"[,\n\r]", raw) if part.strip()]


def digest(key: str) -> bytes:
    """The SHA-256 digest kept in memory instead of the key.

    A header value that is not UTF-8 reaches us with surrogate escapes: it hashes too (to a digest
    no configured key has), so it counts as a failed attempt instead of failing the request."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyStore:
    """Checks presented keys against stored digests; never holds a key in clear."""

    def __init__(self, digests: tuple[bytes, ...]) -> None:
        self._digests = digests

    @property
    def required(self) -> bool:
        """Whether any key is configured (then every request needs one)."""
        return bool(self._digests)

    def verify(self, presented: str | None) -> bool:
        """Whether the presented key matches a stored one, in time independent of which."""
        if not presented or not self._digests:
            return False
        candidate = digest(presented)
        matched = False
        for stored in self._digests:
            # Every digest is compared: the time does not reveal which key (or whether any) matched.
            matched |= hmac.compare_digest(candidate, stored)
        return matched

    def is_key(self, token: str) -> bool:
        """Whether a string seen in a log message is a configured key (used to mask it)."""
        return self.verify(token)
