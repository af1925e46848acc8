"""Repair issues: camera-supplied URIs the URI guard refused, and detectors reached unencrypted.

A camera can hand out snapshot or stream URIs pointing anywhere; the ONVIF client refuses unsafe
ones. Each refusal becomes one repair issue (and one log line when it first appears) so the user
learns why a profile has no picture, and the issue disappears once the camera offers a safe URI.
Issues name only the URI's host: the full URI may carry the camera's credentials.
"""

from __future__ import annotations

from collections.abc import Collection
import ipaddress
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import CONF_URL, DOMAIN
from .data import HsiConfigEntry
from .detection.urls import check_detector_url
from .detector_hub import ISSUE_DETECTOR_UNREACHABLE
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


ISSUE_DETECTOR_PLAINTEXT = "detector_plaintext"


def _detector_issue_ids(entry: ConfigEntry) -> tuple[str, str]:
    return (
        f"{ISSUE_DETECTOR_PLAINTEXT}_{entry.entry_id}",
        f"{ISSUE_DETECTOR_UNREACHABLE}_{entry.entry_id}",
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@callback
def async_sync_detector_plaintext_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Say so when frames travel unencrypted to a detector on another machine.

    Plain HTTP is accepted only to loopback or private addresses (the flow refuses others); to
    loopback it never leaves this machine, so only the private-network case is raised.
    """
    issue_id = _detector_issue_ids(entry)[0]
    url = entry.data.get(CONF_URL)
    if url is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    checked = check_detector_url(url)
    if checked.plaintext and not _is_loopback(checked.host):
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_DETECTOR_PLAINTEXT,
            translation_placeholders={"detector_name": entry.title, "host": checked.host},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_delete_detector_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete every repair issue of a detector entry."""
    for issue_id in _detector_issue_ids(entry):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
