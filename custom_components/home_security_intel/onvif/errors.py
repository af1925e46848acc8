"""Errors raised by the ONVIF client; callers branch on the class, users read the message.

Messages name the camera host and what went wrong, never a password or a URI with credentials.
"""

from __future__ import annotations


class OnvifError(Exception):
    """Base class of every error the ONVIF client raises."""


class CannotConnect(OnvifError):  # noqa: N818 - names are the public API
    """The camera could not be reached: refused, unreachable, unresolvable or too slow."""


class InvalidAuth(OnvifError):  # noqa: N818 - names are the public API
    """The camera rejected the username or password."""


class ClockRefused(InvalidAuth):
    """The camera wants credentials even to tell its time, and refused them for it.

    Either the password is wrong or the camera's clock is far off: the clock cannot be read to
    correct WS-Security timestamps, so a camera that checks them rejects every signed request.
    """


class CameraFault(OnvifError):  # noqa: N818 - names are the public API
    """The camera answered with a SOAP fault (not an authentication fault) to a required step.

    ``step`` names the step, ``fault`` the fault's ONVIF subcode (e.g. ``ter:ActionNotSupported``)
    reduced to safe characters; both may be shown to the user.
    """

    def __init__(self, message: str, *, step: str, fault: str) -> None:
        """Keep the step and the fault code apart for the form that reports them."""
        super().__init__(message)
        self.step = step
        self.fault = fault


class NotOnvif(OnvifError):  # noqa: N818 - names are the public API
    """Something answered, but it does not speak ONVIF (or gave no usable identity)."""


class NoVideoProfile(OnvifError):  # noqa: N818 - names are the public API
    """The camera speaks ONVIF but offers no media profile with a video encoder."""


class UnsafeUri(OnvifError):  # noqa: N818 - names are the public API
    """A URI supplied by the camera points somewhere the client refuses to go."""

    def __init__(self, reason: str, *, uri_host: str = "") -> None:
        """Keep the reason and the URI's host apart so they can be reported without the URI."""
        super().__init__(f"refused camera URI: {reason}")
        self.reason = reason
        self.uri_host = uri_host


class SnapshotError(OnvifError):
    """A snapshot could not be fetched or was not an image."""


class NotAnImage(SnapshotError):  # noqa: N818 - names what the camera sent, as its siblings do
    """The camera answered the snapshot request, but not with a JPEG or PNG (an HTML page...)."""
