"""A detector server reached over HTTP(S): ours, DeepStack / CodeProject.AI, or the HSI RT-DETR API.

Every failure becomes one DetectorError subclass (nothing else escapes), whose message never holds
the API key: keys travel in a header (or DeepStack's form field), never in a URL, and messages are
ours, not the peer's. TLS is verified by default; a pinned SHA-256 fingerprint replaces CA
verification for a self-signed server. Answers are read with a size cap and parsed by `parse`,
which trusts nothing.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any, Final

import aiohttp
from PIL import Image, UnidentifiedImageError

from .model import (
    CannotConnect,
    DetectorBusy,
    DetectorError,
    DetectorInfo,
    DetectorResult,
    DetectorTimeout,
    FingerprintMismatch,
    InvalidAnswer,
    InvalidImage,
    InvalidKey,
    NotADetector,
)
from .parse import Dialect, load_json, parse_deepstack, parse_native, parse_rtdetr
from .urls import check_detector_url, normalize_fingerprint

_LOGGER = logging.getLogger(__name__)

MAX_ANSWER_BYTES: Final = 2 * 1024 * 1024
"""10,000 detections of our server's native answer are about 2 MB; 300 are kept anyway."""
_CHUNK = 64 * 1024
PATHS: Final[dict[Dialect, str]] = {
    "hsi": "/v1/detect",
    "deepstack": "/v1/vision/detection",
    "rtdetr": "/detect",
}
_IMAGE_FIELD: Final[dict[Dialect, str]] = {"hsi": "image", "deepstack": "image", "rtdetr": "file"}
_CONFIDENCE_FIELD: Final[dict[Dialect, str]] = {
    "hsi": "min_confidence",
    "deepstack": "min_confidence",
    "rtdetr": "confidence",
}
_NAMES: Final[dict[Dialect, str]] = {
    "hsi": "HSI detector",
    "deepstack": "DeepStack / CodeProject.AI",
    "rtdetr": "HSI RT-DETR",
}
_UNVERIFIED = (
    "the server's TLS certificate cannot be verified: pin the SHA-256 fingerprint the detector "
    "prints when it starts"
)


def read_frame_size(image: bytes) -> tuple[int, int]:
    """Width and height from the image header (no pixel decode); InvalidImage if unreadable.

    Blocking (Pillow parses the header): run it in an executor.
    """
    try:
        with Image.open(io.BytesIO(image)) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise InvalidImage("the frame is not a readable image") from err


_probe_jpeg: bytes | None = None


def probe_jpeg() -> bytes:
    """A tiny grey JPEG for test requests (made once; blocking, run it in an executor)."""
    global _probe_jpeg  # a cache of one constant value
    if _probe_jpeg is None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (128, 128, 128)).save(buffer, format="JPEG")
        _probe_jpeg = buffer.getvalue()
    return _probe_jpeg


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        return None  # an HTTP date, or nothing: the caller's backoff decides
    return seconds if 0 <= seconds <= 86400 else None


def status_error(status: int, retry_after: float | None = None) -> DetectorError:
    """The error for a non-200 answer."""
    if status in {401, 403}:
        return InvalidKey(f"the detector refused the API key (HTTP {status})")
    if status in {404, 405}:
        return NotADetector(f"no detector endpoint at this address (HTTP {status})")
    if status in {400, 413, 415, 422}:
        return InvalidImage(f"the detector refused the frame (HTTP {status})")
    if status in {429, 503}:
        return DetectorBusy(f"the detector is busy (HTTP {status})", retry_after)
    if status == 504:
        return DetectorTimeout("the detector timed out (HTTP 504)")
    if status >= 500:
        return DetectorError(f"server error {status}")
    return NotADetector(f"unexpected answer (HTTP {status})")


INLINE_PARSE_BYTES: Final = 16 * 1024
"""Answers up to this size are parsed on the event loop (about 100 detections)."""


class RemoteDetector:
    """A detector server of one API dialect; shared by every camera that uses it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        api: Dialect,
        api_key: str | None = None,
        fingerprint: str | None = None,
        timeout: float = 10.0,
        min_confidence: float = 0.3,
    ) -> None:
        """`url` and `fingerprint` are checked here (ValueError from `urls` if refused)."""
        if api not in PATHS:
            raise ValueError(f"unknown detector API {api!r}")
        self._session = session
        self.url = check_detector_url(url)
        self.api: Dialect = api
        self._key = api_key or None
        self._ssl: aiohttp.Fingerprint | bool = (
            aiohttp.Fingerprint(bytes.fromhex(normalize_fingerprint(fingerprint)))
            if fingerprint
            else True
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._min_confidence = min_confidence

    def __repr__(self) -> str:
        # Never the key: this may end up in a log line.
        return f"RemoteDetector({self.url.base!r}, api={self.api!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._key and self.api != "deepstack":
            headers["X-API-Key"] = self._key
        return headers

    def _form(self, image: bytes) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field(
            _IMAGE_FIELD[self.api], image, filename="frame.jpg", content_type="image/jpeg"
        )
        form.add_field(_CONFIDENCE_FIELD[self.api], f"{self._min_confidence:g}")
        if self._key and self.api == "deepstack":
            form.add_field("api_key", self._key)
        return form

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > MAX_ANSWER_BYTES:
            raise InvalidAnswer(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise InvalidAnswer(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _request(self, method: str, path: str, data: Any = None) -> bytes:
        """One request: the body of a 200 JSON answer, or the DetectorError for anything else."""
        try:
            async with self._session.request(
                method,
                self.url.base + path,
                data=data,
                headers=self._headers(),
                ssl=self._ssl,
                timeout=self._timeout,
                # A redirect would carry the X-API-Key header to wherever it points.
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    raise status_error(response.status, _retry_after(response))
                if response.content_type not in {"application/json", "text/json"}:
                    raise NotADetector(
                        f"the answer is {response.content_type or 'untyped'}, not JSON"
                    )
                return await self._read(response)
        except DetectorError:
            raise
        except aiohttp.ServerFingerprintMismatch as err:
            raise FingerprintMismatch(
                "the server's certificate is not the one whose fingerprint is pinned"
            ) from err
        except aiohttp.ClientConnectorCertificateError as err:
            raise FingerprintMismatch(_UNVERIFIED) from err
        except aiohttp.ClientSSLError as err:
            raise CannotConnect("the TLS handshake failed (is it an https:// server?)") from err
        except TimeoutError as err:  # also aiohttp's ServerTimeoutError
            raise DetectorTimeout("the detector did not answer in time") from err
        except aiohttp.ClientConnectorDNSError as err:
            raise CannotConnect(f"cannot resolve {self.url.host}") from err
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as err:
            raise CannotConnect(f"cannot reach the detector ({type(err).__name__})") from err
        except aiohttp.ClientResponseError as err:
            raise NotADetector("the answer is not valid HTTP") from err
        except aiohttp.ClientError as err:
            raise CannotConnect(f"request failed ({type(err).__name__})") from err

    async def _frame_size(self, image: bytes) -> tuple[int, int]:
        return await asyncio.get_running_loop().run_in_executor(None, read_frame_size, image)

    async def async_detect(self, image: bytes) -> DetectorResult:
        """Detections in one JPEG/PNG frame; raises a DetectorError subclass on any failure."""
        # DeepStack answers carry no image size; the RT-DETR API's may not.
        size = await self._frame_size(image) if self.api != "hsi" else None
        start = time.perf_counter()
        body = await self._request("POST", PATHS[self.api], self._form(image))
        latency_ms = (time.perf_counter() - start) * 1000
        if len(body) <= INLINE_PARSE_BYTES:
            return self._parse(body, size, latency_ms)
        # A long answer (a hostile or broken server's 10,000 boxes) is parsed off the loop: it
        # takes tens of milliseconds, a normal answer well under one.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._parse, body, size, latency_ms)

    def _parse(
        self, body: bytes, size: tuple[int, int] | None, latency_ms: float
    ) -> DetectorResult:
        if self.api == "hsi":
            return parse_native(body, latency_ms)
        assert size is not None
        if self.api == "deepstack":
            return parse_deepstack(body, size, latency_ms)
        return parse_rtdetr(body, size, latency_ms)

    async def _health(self) -> dict[str, Any] | None:
        """Our server's GET /health details, None where the server has none to give."""
        try:
            health = load_json(await self._request("GET", "/health"))
        except (NotADetector, InvalidAnswer, InvalidImage):
            return None
        return health if isinstance(health, dict) else None

    async def async_check(self) -> DetectorInfo:
        """A real test request (a tiny JPEG), then /health for what the detector says of itself."""
        loop = asyncio.get_running_loop()
        frame = await loop.run_in_executor(None, probe_jpeg)
        try:
            await self.async_detect(frame)
        except (InvalidAnswer, InvalidImage) as err:
            raise NotADetector(f"this is not a {_NAMES[self.api]} detector: {err}") from err
        health = await self._health() if self.api != "deepstack" else None
        return self._info(health)

    def _info(self, health: dict[str, Any] | None) -> DetectorInfo:
        if not health:
            return DetectorInfo(name=_NAMES[self.api])
        model, version, depth = (
            health.get("model"),
            health.get("version"),
            health.get("queue_depth"),
        )
        return DetectorInfo(
            name=model[:64] if isinstance(model, str) and model else _NAMES[self.api],
            version=version[:32] if isinstance(version, str) else None,
            queue_depth=depth if isinstance(depth, int) and not isinstance(depth, bool) else None,
        )

    async def async_stats(self) -> DetectorInfo | None:
        """Queue depth and model from our server's /health; None for dialects without it."""
        if self.api != "hsi":
            return None
        return self._info(await self._health())

    async def async_close(self) -> None:
        """Nothing to release: the session is Home Assistant's shared one, not ours to close."""
