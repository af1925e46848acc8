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

# PIL's bomb guard (Image.MAX_IMAGE_PIXELS) stays as a backstop; our limit, checked first from the
# header, is the real one. The server raises PIL's guard for its own process (server.py); this
# module leaves the global alone: Home Assistant imports it too (the integration's local detector).


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


def _too_many(width: int, height: int, max_pixels: int) -> ImageRejectedError:
    return ImageRejectedError(
        413,
        "too_many_pixels",
        f"the image has {width}x{height} pixels, more than the limit of {max_pixels}",
    )


def _open(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """The image with only its header read; refused when not ours or over the pixel limit."""
    if not data:
        raise ImageRejectedError(400, "empty", "the image is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejectedError(415, "unsupported_format", "only JPEG, PNG and WebP are accepted")
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
    except Image.DecompressionBombError as err:
        # PIL's backstop (over 2 x MAX_IMAGE_PIXELS): a header declaring gigapixels.
        raise ImageRejectedError(
            413, "too_many_pixels", f"the image declares more than the limit of {max_pixels} pixels"
        ) from err
    # ImportError: ultralytics patches Image.open to retry unidentified files with an optional
    # HEIF plugin, which fails when that plugin is not installed.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError) as err:
        raise _corrupt() from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_many(width, height, max_pixels)
    return image, fmt


def _corrupt() -> ImageRejectedError:
    return ImageRejectedError(422, "corrupt", "the image could not be decoded")


def image_pixels(data: bytes, max_pixels: int) -> int:
    """The pixel count an image's header declares (checked like `decode_image`, nothing decoded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image, _fmt = _open(data, max_pixels)
    with image:
        width, height = image.size
    return width * height


def _to_rgb(image: Image.Image) -> npt.NDArray[np.uint8]:
    """8-bit RGB; 16-bit (or 32-bit integer) grey is scaled to 8 bits, not clipped to white."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        wide = np.asarray(image)
        grey = (np.clip(wide, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def decode_image(
    data: bytes, max_pixels: int, target: int, *, letterbox: bool = False
) -> DecodedImage:
    """Check and decode one image; raises ImageRejectedError with the status to answer.

    `target` and `letterbox` describe the model's input (see `draft_size`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image, fmt = _open(data, max_pixels)
        width, height = image.size
        if fmt == "JPEG" and (size := draft_size(width, height, target, letterbox)):
            image.draft("RGB", size)
        try:
            pixels = _to_rgb(image)
        except (OSError, SyntaxError, ValueError) as err:
            # Truncated or malformed data: PIL reports these as OSError, SyntaxError or ValueError.
            raise _corrupt() from err
        finally:
            image.close()
    return DecodedImage(pixels=pixels, width=width, height=height)
