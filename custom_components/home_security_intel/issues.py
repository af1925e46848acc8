"""Repair issues for camera-supplied URIs that the URI guard refused.

A camera can hand out snapshot or stream URIs pointing anywhere; the ONVIF client refuses unsafe
ones. Each refusal becomes one repair issue (and one log line when it first appears) so the user
learns why a profile has no picture, and the issue disappears once the camera offers a safe URI.
Issues name only the URI's host: the full URI may carry the camera's credentials.
"""

from __future__ import annotations

from collections.abc import Collection
import logging

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .data import HsiConfigEntry
from .onvif import CameraInfo, RefusedUri

_LOGGER = logging.getLogger(__name__)

ISSUE_UNSAFE_CAMERA_URI = "unsafe_camera_uri"


def _issue_prefix(entry: HsiConfigEntry) -> str:
    return f"{ISSUE_UNSAFE_CAMERA_URI}_{entry.entry_id}_"


def unsafe_uri_issue_id(entry: HsiConfigEntry, refused: RefusedUri) -> str:
    """The repair issue id of one refused URI: per entry, profile and URI kind."""
    return f"{_issue_prefix(entry)}{refused.profile_token}_{refused.kind}"


@callback
def async_sync_unsafe_uri_issues(
    hass: HomeAssistant, entry: HsiConfigEntry, info: CameraInfo
) -> None:
    """Make the entry's repair issues match exactly the URIs refused at this connect."""
    registry = ir.async_get(hass)
    profile_names = {profile.token: profile.name for profile in info.profiles}
    current = {unsafe_uri_issue_id(entry, refused): refused for refused in info.refused_uris}
    for issue_id, refused in current.items():
        if registry.async_get_issue(DOMAIN, issue_id) is None:
            _LOGGER.warning(
                "Camera %s offered a %s URI on host %s for profile %s; refused: %s",
                entry.title,
                refused.kind,
                refused.uri_host,
                profile_names.get(refused.profile_token, refused.profile_token),
                refused.reason,
            )
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_UNSAFE_CAMERA_URI,
            translation_placeholders={
                "camera_name": entry.title,
                "profile_name": profile_names.get(refused.profile_token, refused.profile_token),
                "kind": refused.kind,
                "uri_host": refused.uri_host or "",
                "reason": refused.reason,
            },
        )
    async_delete_unsafe_uri_issues(hass, entry, keep=current.keys())


@callback
def async_delete_unsafe_uri_issues(
    hass: HomeAssistant, entry: HsiConfigEntry, *, keep: Collection[str] = ()
) -> None:
    """Delete the entry's refused-URI issues, except those whose ids are in ``keep``."""
    prefix = _issue_prefix(entry)
    stale = [
        issue_id
        for domain, issue_id in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith(prefix) and issue_id not in keep
    ]
    for issue_id in stale:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
