"""Fetch still images from a camera's snapshot URI: digest then basic auth, bounded, on-camera."""

from __future__ import annotations

from collections.abc import Collection
import logging
from typing import Literal
from urllib.parse import urljoin

import aiohttp

from .errors import CannotConnect, InvalidAuth, NotAnImage, SnapshotError, UnsafeUri
from .uri_guard import camera_alias_uri, check_camera_uri

_LOGGER = logging.getLogger(__name__)

type AuthMode = Literal["digest", "basic", "none"]

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


def is_image(data: bytes) -> bool:
    """True for JPEG and PNG, the formats cameras serve snapshots in."""
    return data.startswith(_IMAGE_MAGIC)


class SnapshotFetcher:
    """HTTP client for one camera's snapshots; remembers which auth scheme worked."""

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *,
        timeout: float,
        verify_ssl: bool,
        camera_addresses: Collection[str] = (),
    ) -> None:
        """Prepare; the HTTP session is opened on first use, inside the event loop."""
        self._host = host
        self._username = username
        self._password = password
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._verify_ssl = verify_ssl
        self.camera_addresses: Collection[str] = camera_addresses
        # Addresses the camera reports for itself; URIs naming them go to the configured host.
        self.alias_addresses: Collection[str] = ()
        self._session: aiohttp.ClientSession | None = None
        self._digest: aiohttp.DigestAuthMiddleware | None = None
        self.auth_mode: AuthMode | None = None

    def _modes(self) -> list[AuthMode]:
        if not self._username:
            return ["none"]
        # Digest first so a password only travels in the clear when the camera insists on basic.
        modes: list[AuthMode] = ["digest", "basic"]
        if self.auth_mode in modes:
            modes.remove(self.auth_mode)
            modes.insert(0, self.auth_mode)
        return modes

    def _check(self, uri: str) -> str:
        try:
            return check_camera_uri(
                camera_alias_uri(uri, self._host, self.alias_addresses),
                self._host,
                "snapshot",
                camera_addresses=self.camera_addresses,
            )
        except UnsafeUri as err:
            raise SnapshotError(f"{self._host}: snapshot URI refused: {err.reason}") from err

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        """Return the image at ``uri``; raise SnapshotError, InvalidAuth or CannotConnect."""
        uri = self._check(uri)
        for mode in self._modes():
            body = await self._fetch_following_redirects(uri, mode, max_bytes)
            if body is None:
                _LOGGER.debug("%s: snapshot %s auth was rejected", self._host, mode)
                continue
            if mode != self.auth_mode:
                _LOGGER.debug("%s: snapshot uses %s auth", self._host, mode)
                self.auth_mode = mode
            if not is_image(body):
                raise NotAnImage(f"{self._host}: the snapshot is not a JPEG or PNG image")
            return body
        raise InvalidAuth(f"{self._host}: the camera rejected the credentials for snapshots")

    async def _fetch_following_redirects(
        self, uri: str, mode: AuthMode, max_bytes: int
    ) -> bytes | None:
        """Return the body, or None when the camera answers 401 to this auth mode."""
        current = uri
        for _ in range(_MAX_REDIRECTS + 1):
            outcome = await self._get(current, mode, max_bytes)
            if not isinstance(outcome, str):
                return outcome
            current = self._check(urljoin(current, outcome))
        raise SnapshotError(f"{self._host}: too many snapshot redirects")

    async def _get(self, uri: str, mode: AuthMode, max_bytes: int) -> bytes | str | None:
        """One GET: the body, a redirect target (str), or None for 401."""
        session = self._ensure_session()
        headers = {}
        if mode == "basic":
            headers["Authorization"] = aiohttp.encode_basic_auth(self._username, self._password)
        middlewares = (self._ensure_digest(),) if mode == "digest" else ()
        try:
            async with session.get(
                uri,
                headers=headers,
                middlewares=middlewares,
                allow_redirects=False,
                timeout=self._timeout,
                ssl=self._verify_ssl,
            ) as response:
                if response.status == 401:
                    return None
                if response.status in _REDIRECT_STATUSES:
                    if not (location := response.headers.get("Location")):
                        raise SnapshotError(f"{self._host}: redirect without a location")
                    return location
                if response.status >= 300:
                    raise SnapshotError(f"{self._host}: snapshot answered HTTP {response.status}")
                return await _read_limited(response, max_bytes, self._host)
        except TimeoutError as err:
            raise CannotConnect(f"{self._host}: snapshot timed out") from err
        except (aiohttp.ClientConnectionError, OSError) as err:
            reason = type(err).__name__
            raise CannotConnect(f"{self._host}: cannot fetch snapshot ({reason})") from err
        except aiohttp.ClientError as err:
            reason = type(err).__name__
            raise SnapshotError(f"{self._host}: bad snapshot response ({reason})") from err

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookie jar: a camera must not be able to plant state that outlives one request.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _ensure_digest(self) -> aiohttp.DigestAuthMiddleware:
        if self._digest is None:
            self._digest = aiohttp.DigestAuthMiddleware(self._username, self._password)
        return self._digest

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_limited(response: aiohttp.ClientResponse, max_bytes: int, host: str) -> bytes:
    """Read the body, giving up as soon as it is known to exceed ``max_bytes``."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise SnapshotError(f"{host}: snapshot larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise SnapshotError(f"{host}: snapshot larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
