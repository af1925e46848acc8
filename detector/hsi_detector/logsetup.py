"""Logging with secrets masked: credential-looking fields and any token that is a configured key."""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hsi_detector.keys import KeyStore

MASK = "***"
_FIELDS = re.compile(
    r"(?i)((?:x-api-key|api[_-]?key|authorization|bearer|password|token)[\"']?\s*[:=]?\s*"
    r"(?:bearer\s+)?[\"']?)([^\s\"',;&]+)"
)
_TOKENS = re.compile(r"[A-Za-z0-9_\-+/=.~]{32,}")
_FORMATTER = logging.Formatter()


class SecretMasker(logging.Filter):
    """Rewrites each record's message before any handler sees it."""

    def __init__(self, keys: KeyStore) -> None:
        super().__init__()
        self._keys = keys

    def mask(self, text: str) -> str:
        """The text with credentials replaced by ***."""
        text = _FIELDS.sub(lambda m: m.group(1) + MASK, text)
        return _TOKENS.sub(lambda m: MASK if self._keys.is_key(m.group(0)) else m.group(0), text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the formatted message (arguments included), exception text and stack."""
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def configure_logging(level: str, keys: KeyStore) -> None:
    """Root logging to stderr, with the masker on the handler so every logger's records pass it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMasker(keys))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("PIL", "asyncio", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
