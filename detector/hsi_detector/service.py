"""Image bytes to detections: decode in the thread pool, batch through the model, scale back."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import time
from typing import TYPE_CHECKING, cast

from hsi_detector.batcher import BatcherStoppedError, InferenceError, QueueFullError
from hsi_detector.errors import ApiError
from hsi_detector.imaging import DecodedImage, ImageRejectedError, decode_image, image_pixels

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import numpy.typing as npt

    from hsi_detector.batcher import BatchOutcome, MicroBatcher
    from hsi_detector.config import Settings
    from hsi_detector.engines.base import Detection, Engine
    from hsi_detector.metrics import Metrics

MAX_IMAGES_PER_REQUEST = 64


class _OverBudgetError(Exception):
    """A single image over the request's pixel budget (found in the pool)."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


@dataclass(frozen=True, slots=True)
class ImageResult:
    """Detections for one image (boxes in its original pixels) and the time spent on it."""

    width: int
    height: int
    detections: list[Detection]
    queue_ms: float
    decode_ms: float
    inference_ms: float
    total_ms: float


@dataclass(frozen=True, slots=True)
class Options:
    """Per-request choices."""

    confidence: float
    classes: frozenset[str] | None


class DetectionService:
    """Shared by every endpoint; each dialect only parses and shapes."""

    def __init__(
        self, settings: Settings, engine: Engine, batcher: MicroBatcher, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.batcher = batcher
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="hsi-decode")

    def options(self, fields: Mapping[str, str], confidence_keys: tuple[str, ...]) -> Options:
        """Confidence and class filter from the request's fields (400 for bad values)."""
        confidence = self.settings.confidence
        for key in confidence_keys:
            if raw := fields.get(key):
                try:
                    confidence = float(raw)
                except ValueError:
                    confidence = -1.0
                if not 0.0 <= confidence <= 1.0:
                    raise ApiError(400, "bad_option", f"{key} must be a number from 0 to 1")
        classes: frozenset[str] | None = None
        if raw := fields.get("classes"):
            classes = frozenset(c.strip() for c in raw.split(",") if c.strip())
            if unknown := classes - set(self.engine.class_names):
                shown = ", ".join(sorted(unknown)[:5])
                raise ApiError(400, "bad_option", f"unknown class names: {shown}")
        return Options(confidence, classes)

    def _decode(self, data: bytes) -> tuple[DecodedImage, float]:
        start = time.perf_counter()
        engine = self.engine
        image = decode_image(
            data,
            self.settings.max_pixels,
            engine.input_size,
            letterbox=engine.letterbox,
            stride=engine.stride,
        )
        return image, (time.perf_counter() - start) * 1000

    def _prepare(self, data: bytes) -> tuple[npt.NDArray[np.uint8], object]:
        """A single-image request's checks and decode, in one pool job: the request's pixel budget
        (only when it is below the image limit, which the decode checks), then the decode."""
        settings = self.settings
        if settings.max_request_pixels < settings.max_pixels:
            size = image_pixels(data, settings.max_pixels)
            if size > settings.max_request_pixels:
                raise _OverBudgetError(size)
        found = self._decode(data)
        return found[0].pixels, found

    async def _detect_one(
        self, data: bytes, options: Options
    ) -> tuple[list[tuple[DecodedImage, float]], list[BatchOutcome]]:
        """One image: decoded in the pool and queued from there (one hand-off less per image)."""
        try:
            outcome = await self.batcher.submit_prepared(
                self.pool, lambda: self._prepare(data), options.confidence
            )
        except ImageRejectedError as err:
            raise self._refuse(err, 0, 1) from err
        except _OverBudgetError as err:
            raise self._over_budget(err.total) from err
        return [cast("tuple[DecodedImage, float]", outcome.prepared)], [outcome]

    def _probe_all(self, images: list[bytes]) -> list[int | ImageRejectedError]:
        """Pixel counts from the headers (one pool job: headers are cheap to read)."""
        found: list[int | ImageRejectedError] = []
        for data in images:
            try:
                found.append(image_pixels(data, self.settings.max_pixels))
            except ImageRejectedError as err:
                found.append(err)
        return found

    def _over_budget(self, total: int) -> ApiError:
        reason = "request_too_many_pixels"
        self.metrics.reject(reason)
        return ApiError(
            413,
            reason,
            f"the images of this request have {total} pixels together, more than the limit of "
            f"{self.settings.max_request_pixels}",
        )

    def _refuse(self, err: ImageRejectedError, index: int, count: int) -> ApiError:
        self.metrics.reject(err.reason)
        where = f"image {index + 1}: " if count > 1 else ""
        return ApiError(err.status, err.reason, where + str(err))

    async def _decode_all(self, images: list[bytes]) -> list[tuple[DecodedImage, float]]:
        """Several images, within the request's pixel budget checked from the headers before any
        decode; the decodes run in the pool, at most --decode-workers at a time for the server."""
        loop = asyncio.get_running_loop()
        sizes = await loop.run_in_executor(self.pool, self._probe_all, images)
        total = 0
        for index, size in enumerate(sizes):
            if isinstance(size, ImageRejectedError):
                raise self._refuse(size, index, len(images))
            total += size
        if total > self.settings.max_request_pixels:
            raise self._over_budget(total)
        jobs = [loop.run_in_executor(self.pool, self._decode, data) for data in images]
        done = await asyncio.gather(*jobs, return_exceptions=True)
        decoded: list[tuple[DecodedImage, float]] = []
        for index, item in enumerate(done):
            if isinstance(item, ImageRejectedError):
                raise self._refuse(item, index, len(images))
            if isinstance(item, BaseException):
                raise item
            decoded.append(item)
        return decoded

    async def detect(self, images: list[bytes], options: Options) -> list[ImageResult]:
        """Detections for every image, in order; raises ApiError for anything refused."""
        if len(images) > MAX_IMAGES_PER_REQUEST:
            raise ApiError(400, "too_many_images", f"at most {MAX_IMAGES_PER_REQUEST} images")
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                if len(images) == 1:
                    decoded, outcomes = await self._detect_one(images[0], options)
                else:
                    decoded = await self._decode_all(images)
                    outcomes = await self.batcher.submit_many(
                        [image.pixels for image, _ in decoded], options.confidence
                    )
        except TimeoutError as err:
            raise ApiError(504, "timeout", "detection exceeded the request timeout") from err
        except QueueFullError as err:
            raise ApiError(
                503, "queue_full", "the detector is busy, retry shortly", {"Retry-After": "1"}
            ) from err
        except BatcherStoppedError as err:
            raise ApiError(503, "shutting_down", "the detector is shutting down") from err
        except InferenceError as err:
            raise ApiError(500, "inference_failed", "inference failed") from err
        total_ms = (time.perf_counter() - start) * 1000
        results: list[ImageResult] = []
        for (image, decode_ms), outcome in zip(decoded, outcomes, strict=True):
            sx, sy = image.scale
            wanted = [
                d
                for d in outcome.detections
                if options.classes is None or d.label in options.classes
            ]
            if image.box is not None:
                size = (image.width, image.height)
                found = [d.placed(image.offset, (sx, sy), size) for d in wanted]
            elif (sx, sy) != (1.0, 1.0):
                found = [d.scaled(sx, sy) for d in wanted]
            else:
                found = wanted
            results.append(
                ImageResult(
                    image.width,
                    image.height,
                    found,
                    outcome.queue_ms,
                    decode_ms,
                    outcome.inference_ms,
                    total_ms,
                )
            )
        return results
