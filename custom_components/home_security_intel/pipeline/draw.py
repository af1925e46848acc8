"""Draws detections onto a frame for the image entity: coloured outlines and readable label tags.

Pure Pillow, no Home Assistant imports. `annotate` is CPU work (decode, draw, encode): the caller
runs it in an executor, never on the event loop. Large frames are decoded at a reduced scale with
JPEG draft mode and shrunk to `max_width`, so a 4K camera costs about what a 1080p one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
import io
import math
import warnings

from PIL import Image, ImageDraw, ImageFont

from ..detection.model import (
    GROUP_ANIMAL,
    GROUP_PERSON,
    GROUP_VEHICLE,
    Box,
    label_group,
)

type RGB = tuple[int, int, int]
type _Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# Saturated and far apart, so the group reads at a glance even on a small thumbnail.
GROUP_COLOURS: dict[str, RGB] = {
    GROUP_PERSON: (255, 56, 56),
    GROUP_VEHICLE: (40, 120, 255),
    GROUP_ANIMAL: (255, 190, 0),
}
OTHER_COLOUR: RGB = (200, 200, 200)
_DARK_TEXT: RGB = (0, 0, 0)
_LIGHT_TEXT: RGB = (255, 255, 255)
# Font size and line width follow the output width: about 21 px text on a 1280 px frame.
_FONT_DIVISOR = 60
_MIN_FONT = 11
_LINE_DIVISOR = 400
_MIN_LINE = 2
MAX_OUTLINES = 1000
"""At most this many boxes are outlined (the most certain ones)."""
MAX_TAGS = 50
SHORT_ID = 6
"""At most this many boxes get a label tag (the most certain ones); more would be unreadable."""


@dataclass(frozen=True, slots=True)
class AnnotatedBox:
    """One object to draw: what it is, how sure the detector was, where, and its track."""

    label: str
    score: float
    box: Box
    object_id: str | None = None
    zones: tuple[str, ...] = ()


def colour_for(label: str) -> RGB:
    """The outline colour of a label: one colour per group, grey for other objects."""
    group = label_group(label)
    return GROUP_COLOURS.get(group, OTHER_COLOUR) if group else OTHER_COLOUR


def _score(item: AnnotatedBox) -> float:
    return min(max(item.score, 0.0), 1.0) if math.isfinite(item.score) else 0.0


def tag_text(item: AnnotatedBox) -> str:
    """The tag drawn above a box, e.g. "person 87% #3 (driveway)"."""
    text = f"{item.label} {round(_score(item) * 100)}%"
    if item.object_id:
        # Ids are long (uuid hex); the first characters tell the objects of one frame apart and
        # match the start of the event's object_id attribute.
        text += f" #{item.object_id[:SHORT_ID]}"
    if item.zones:
        text += f" ({', '.join(item.zones)})"
    return text


@lru_cache(maxsize=16)
def _font(size: int) -> _Font:
    # Loading parses the embedded font: once per size, not once per frame.
    return ImageFont.load_default(size=size)


def _text_colour(background: RGB) -> RGB:
    # Relative luminance (ITU-R BT.601): dark text on the light amber, white on the rest.
    red, green, blue = background
    return _DARK_TEXT if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else _LIGHT_TEXT


def _decode(jpeg: bytes, max_width: int) -> Image.Image:
    """Decode to RGB no wider than max_width; raises ValueError for anything not an image."""
    try:
        with warnings.catch_warnings():
            # A decompression bomb warning becomes an error: such a frame is refused, not drawn.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(jpeg))
            width, height = source.size
            if width > max_width and source.format == "JPEG":
                # The DCT scales by 1/2, 1/4 or 1/8, never below the size asked for.
                source.draft("RGB", (max_width, math.ceil(height * max_width / width)))
            image = source.convert("RGB")  # forces the decode: truncation surfaces here
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as err:
        raise ValueError(f"not a decodable image: {err}") from err
    if image.width > max_width:
        new_height = max(1, round(image.height * max_width / image.width))
        # BOX is area averaging: after the draft step the factor is below 2, where it looks as
        # good as bilinear at about two thirds of the time.
        image = image.resize((max_width, new_height), Image.Resampling.BOX)
    return image


def _pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box in pixels, ordered and clipped to the frame; None when nothing of it is visible."""
    coords = (box.x_min, box.y_min, box.x_max, box.y_max)
    if not all(math.isfinite(v) for v in coords):
        return None
    x0, x1 = sorted((box.x_min, box.x_max))
    y0, y1 = sorted((box.y_min, box.y_max))
    if x1 < 0 or y1 < 0 or x0 > 1 or y0 > 1:
        return None

    def clip(value: float, size: int) -> int:
        return min(max(round(value * size), 0), size - 1)

    return clip(x0, width), clip(y0, height), clip(x1, width), clip(y1, height)


def annotate(
    jpeg: bytes,
    boxes: Sequence[AnnotatedBox],
    *,
    max_width: int = 1280,
    quality: int = 80,
) -> bytes:
    """The frame as a JPEG with every box outlined and tagged; ValueError if it is no image."""
    if max_width < 1:
        raise ValueError("max_width must be positive")
    image = _decode(jpeg, max_width)
    width, height = image.size
    line = max(_MIN_LINE, round(width / _LINE_DIVISOR))
    font = _font(max(_MIN_FONT, round(width / _FONT_DIVISOR)))
    pad = max(2, line)
    draw = ImageDraw.Draw(image)
    # Most certain first; drawn in reverse so they end up on top. A hostile detector's thousands
    # of boxes are capped: rendering a tag costs about a millisecond.
    ranked = sorted(boxes, key=_score, reverse=True)[:MAX_OUTLINES]
    placed = [(item, _pixels(item.box, width, height)) for item in ranked]
    for item, pixels in reversed(placed):
        if pixels is not None:
            draw.rectangle(pixels, outline=colour_for(item.label), width=line)
    for item, pixels in reversed(placed[:MAX_TAGS]):
        if pixels is None:
            continue
        x0, y0, _, _ = pixels
        colour = colour_for(item.label)
        text = tag_text(item)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 2 * pad, bottom - top + 2 * pad
        # Above the box when there is room, otherwise just inside its top; never off the frame.
        tag_x = min(x0, max(width - tag_w, 0))
        tag_y = y0 - tag_h if y0 >= tag_h else min(y0, max(height - tag_h, 0))
        draw.rectangle((tag_x, tag_y, tag_x + tag_w - 1, tag_y + tag_h - 1), fill=colour)
        draw.text(
            (tag_x + pad - left, tag_y + pad - top), text, fill=_text_colour(colour), font=font
        )
    out = io.BytesIO()
    # 4:4:4: with chroma subsampling, thin coloured lines and tag text bleed into the picture.
    image.save(out, format="JPEG", quality=quality, subsampling=0)
    return out.getvalue()
