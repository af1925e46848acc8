"""Image intake: format by magic bytes, pixel count from the header, then decoding to an RGB array.

Runs in the decode thread pool, never on the event loop. Large JPEGs are decoded at a reduced scale
(1/2, 1/4 or 1/8) with PIL's draft mode (the DCT does the downscaling), several times faster than a
full decode followed by the model's own resize, never below what the model looks at; the caller
scales boxes back to the original pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass
import io
import math
from typing import TYPE_CHECKING
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import numpy.typing as npt

# PIL's bomb guard stays as a backstop; our limit (checked first, from the header) is the real one.
Image.MAX_IMAGE_PIXELS = 1_000_000_000


class ImageRejectedError(ValueError):
    """The image is refused. `status` is the HTTP status, `reason` a short metrics label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An RGB array ready for the model, plus the size of the image as sent."""

    pixels: npt.NDArray[np.uint8]
    width: int
    height: int

    @property
    def scale(self) -> tuple[float, float]:
        """Factors from the decoded array back to the original pixel grid."""
        return self.width / self.pixels.shape[1], self.height / self.pixels.shape[0]


def sniff_format(data: bytes) -> str | None:
    """JPEG, PNG or WEBP from the first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def draft_size(width: int, height: int, target: int, letterbox: bool) -> tuple[int, int] | None:
    """The least size that keeps every pixel the model sees, or None when no reduced scale fits.

    A letterboxing model (YOLO) scales the long side to `target`: a 1080p frame for imgsz 640 needs
    only 640x360, so it decodes at 1/2 (960x540). A stretching model (SSD) needs both sides.
    """
    if letterbox:
        ratio = target / max(width, height)
        wanted = (math.ceil(width * ratio), math.ceil(height * ratio))
    else:
        wanted = (min(width, target), min(height, target))
    if width < 2 * wanted[0] or height < 2 * wanted[1]:
        return None
    return wanted


def decode_image(
    data: bytes, max_pixels: int, target: int, *, letterbox: bool = False
) -> DecodedImage:
    """Check and decode one image; raises ImageRejectedError with the status to answer.

    `target` and `letterbox` describe the model's input (see `draft_size`).
    """
    if not data:
        raise ImageRejectedError(400, "empty", "the image is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejectedError(415, "unsupported_format", "only JPEG, PNG and WebP are accepted")
    corrupt = ImageRejectedError(422, "corrupt", "the image could not be decoded")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
        # ImportError: ultralytics patches Image.open to retry unidentified files with an optional
        # HEIF plugin, which fails when that plugin is not installed.
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError) as err:
            raise corrupt from err
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejectedError(
                413,
                "too_many_pixels",
                f"the image has {width}x{height} pixels, more than the limit of {max_pixels}",
            )
        if fmt == "JPEG" and (size := draft_size(width, height, target, letterbox)):
            image.draft("RGB", size)
        try:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as err:
            # Truncated or malformed data: PIL reports these as OSError, SyntaxError or ValueError.
            raise corrupt from err
    return DecodedImage(pixels=pixels, width=width, height=height)
