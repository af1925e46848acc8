"""Image intake: format by magic bytes, pixel count from the header, then decoding to an RGB array.

Runs in the decode thread pool, never on the event loop. JPEGs are decoded at a reduced scale when
the model looks at fewer pixels (1/2, 1/4 or 1/8: PIL's draft mode): the DCT does the downscaling,
never below what the model sees, and the caller scales boxes back to the original pixel grid. With
simplejpeg (the server's extra) libjpeg-turbo decodes at the same scale with the same settings, so
to the same pixels, but straight into a numpy array (or the model input), without PIL's copies;
without it (the light library Home Assistant imports), PIL decodes.

For a letterboxing model with a stride (YOLO) the decoder hands over the model's input itself: the
image scaled so its long side is the input size and padded with grey to multiples of the stride,
as ultralytics' LetterBox(auto=True) does (a 16:9 frame for imgsz 640 becomes 640x384), in RGB, the
model's channel order: the engine runs it as it is, with no resize, colour swap or copy of its own.
A JPEG already at the scaled size (a 640x360 substream frame) is decoded straight into that canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
import io
import math
from typing import TYPE_CHECKING, Any
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import numpy.typing as npt

_cv2: Any = None
try:  # optional: the ultralytics extra brings it; the light library does without
    import cv2

    _cv2 = cv2
except ImportError:  # pragma: no cover - not in the detector's environment
    pass

_turbo: Any = None
try:  # optional: the server extra brings it (libjpeg-turbo's scales and output buffers)
    import simplejpeg  # type: ignore[import-untyped]

    _turbo = simplejpeg
except ImportError:  # pragma: no cover - not in the detector's environment
    pass

_TURBO_MODES = frozenset({"RGB", "L"})
"""PIL's modes of the JPEGs libjpeg-turbo converts to RGB (YCbCr, RGB, grey; not CMYK/YCCK)."""

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
    box: tuple[int, int, int, int] | None = None
    """Where the image lies in `pixels` (left, top, width, height) when it was letterboxed."""

    @property
    def scale(self) -> tuple[float, float]:
        """Factors from the decoded image (without padding) back to the original pixel grid."""
        if self.box is not None:
            return self.width / self.box[2], self.height / self.box[3]
        return self.width / self.pixels.shape[1], self.height / self.pixels.shape[0]

    @property
    def offset(self) -> tuple[int, int]:
        """The padding before the image in `pixels` (left, top)."""
        return (0, 0) if self.box is None else (self.box[0], self.box[1])


PAD_VALUE = 114
"""Ultralytics' letterbox grey."""


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Ultralytics' LetterBox(auto=True, center=True) geometry for one image size."""

    width: int
    """The scaled image."""
    height: int
    left: int
    top: int
    canvas_width: int
    """The model input: the scaled image plus padding, multiples of the stride."""
    canvas_height: int


def letterbox(width: int, height: int, size: int, stride: int) -> Letterbox:
    """Scale the long side to `size` (up or down), pad each side to a multiple of `stride`, centred,
    with ultralytics' rounding (LetterBox.get_params)."""
    ratio = min(size / height, size / width)
    new_w, new_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
    dw, dh = (size - new_w) % stride / 2, (size - new_h) % stride / 2
    left, right = round(dw - 0.1), round(dw + 0.1)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    return Letterbox(new_w, new_h, left, top, new_w + left + right, new_h + top + bottom)


_fit = letterbox  # under another name: decode_image's `letterbox` flag shadows it


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
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _canvas(
    geometry: Letterbox,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The grey model input and the view of it where the scaled image goes."""
    canvas = np.full((geometry.canvas_height, geometry.canvas_width, 3), PAD_VALUE, np.uint8)
    top, left = geometry.top, geometry.left
    return canvas, canvas[top : top + geometry.height, left : left + geometry.width]


def _resize_into(pixels: npt.NDArray[np.uint8], inner: npt.NDArray[np.uint8]) -> None:
    """Scale `pixels` to the size of `inner` (bilinear, as ultralytics' LetterBox), put it there."""
    size = (inner.shape[1], inner.shape[0])
    if pixels.shape[:2] == inner.shape[:2]:
        inner[...] = pixels
    elif _cv2 is not None:
        # OpenCV (there with the ultralytics extra): ultralytics' own resize, ~8x faster than PIL's
        # antialiased bilinear, written into the canvas when its rows are contiguous.
        out = _cv2.resize(pixels, size, dst=inner, interpolation=_cv2.INTER_LINEAR)
        if not np.shares_memory(out, inner):
            inner[...] = out
    else:  # pragma: no cover - the light library without OpenCV
        inner[...] = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))


def _letterboxed(image: Image.Image, geometry: Letterbox) -> npt.NDArray[np.uint8]:
    """The model input for `image` (maybe drafted): scaled and padded into a grey canvas."""
    canvas, inner = _canvas(geometry)
    _resize_into(_to_rgb(image), inner)
    return canvas


def draft_scale(width: int, height: int, wanted: tuple[int, int] | None) -> int:
    """The DCT scale divisor (1, 2, 4 or 8) PIL's draft mode picks for `wanted` (`draft_size`)."""
    if wanted is None:
        return 1
    fits = min(width // wanted[0], height // wanted[1])
    return next(scale for scale in (8, 4, 2, 1) if fits >= scale)


def _decode_turbo(
    data: bytes, width: int, height: int, target: int, geometry: Letterbox | None, letterbox: bool
) -> npt.NDArray[np.uint8]:
    """A JPEG through libjpeg-turbo at PIL's draft scale, with PIL's settings, so the pixels are
    PIL's to the bit (the server and Home Assistant's local detector see the same image), without
    PIL's copies: the model input itself with a `geometry`, else the RGB image. ValueError when
    corrupt or truncated (strict: libjpeg's warnings are errors too)."""
    scale = draft_scale(width, height, draft_size(width, height, target, letterbox))
    min_w, min_h = -(-width // scale), -(-height // scale)  # libjpeg's rounding: up
    options: dict[str, Any] = {"colorspace": "RGB", "min_height": min_h, "min_width": min_w}
    if geometry is None:
        pixels: npt.NDArray[np.uint8] = _turbo.decode_jpeg(data, **options)
        return pixels
    canvas, inner = _canvas(geometry)
    if (min_w, min_h) == (geometry.width, geometry.height) and inner.flags.c_contiguous:
        _turbo.decode_jpeg(data, buffer=inner, **options)  # straight into the model input
    else:
        _resize_into(_turbo.decode_jpeg(data, **options), inner)
    return canvas


def decode_image(
    data: bytes, max_pixels: int, target: int, *, letterbox: bool = False, stride: int = 0
) -> DecodedImage:
    """Check and decode one image; raises ImageRejectedError with the status to answer.

    `target` and `letterbox` describe the model's input (see `draft_size`); with a `stride` too
    the result is the letterboxed model input itself (see the module's docstring).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image, fmt = _open(data, max_pixels)
        width, height = image.size
        geometry = _fit(width, height, target, stride) if letterbox and stride > 0 else None
        try:
            if fmt == "JPEG" and _turbo is not None and image.mode in _TURBO_MODES:
                pixels = _decode_turbo(data, width, height, target, geometry, letterbox)
            else:
                if fmt == "JPEG" and (size := draft_size(width, height, target, letterbox)):
                    image.draft("RGB", size)
                pixels = _to_rgb(image) if geometry is None else _letterboxed(image, geometry)
        except (OSError, SyntaxError, ValueError) as err:
            # Truncated or malformed data: PIL reports these as OSError, SyntaxError or ValueError,
            # libjpeg-turbo (strict) as ValueError.
            raise _corrupt() from err
        finally:
            image.close()
    box = (
        None if geometry is None else (geometry.left, geometry.top, geometry.width, geometry.height)
    )
    return DecodedImage(pixels=pixels, width=width, height=height, box=box)
