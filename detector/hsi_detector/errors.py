"""The error type handlers raise, and how each API dialect shapes it (never a trace or path)."""

from __future__ import annotations

from typing import Any

DEEPSTACK_PREFIX = "/v1/vision/"
RTDETR_PATHS = ("/detect", "/detect/batch")


class ApiError(Exception):
    """A refused request: `reason` labels the metrics, `message` is shown to the client."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def error_body(path: str, status: int, reason: str, message: str) -> dict[str, Any]:
    """The JSON body of an error, in the shape the endpoint's clients expect."""
    if path.startswith(DEEPSTACK_PREFIX):
        return {"success": False, "error": message, "code": status}
    if path in RTDETR_PATHS:
        return {"detail": message}
    return {"error": {"code": status, "reason": reason, "message": message}}
