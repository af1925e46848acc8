"""Drawing detections for the image entity: real JPEGs in, real JPEGs out, pixels checked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
import warnings

from PIL import Image
import pytest

from custom_components.home_security_intel.detection.model import Box
from custom_components.home_security_intel.pipeline import draw
from custom_components.home_security_intel.pipeline.draw import (
    GROUP_COLOURS,
    OTHER_COLOUR,
    AnnotatedBox,
    annotate,
    colour_for,
    tag_text,
)

IMAGES = Path(__file__).parents[1] / "support" / "onvif_sim" / "images"
GREY = (128, 128, 128)
# JPEG moves colours a little; a drawn line must still be clearly its group's colour.
TOLERANCE = 40


def jpeg(width: int, height: int, colour: tuple[int, int, int] = GREY, fmt: str = "JPEG") -> bytes:
    """A plain frame of one colour."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format=fmt)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    """Decode the output, proving it is a complete JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        image.load()
        return image.convert("RGB")


def close(pixel: Any, colour: tuple[int, int, int]) -> bool:
    """Whether a pixel (an RGB tuple from getpixel) is the colour, give or take JPEG's error."""
    return all(abs(a - b) <= TOLERANCE for a, b in zip(pixel, colour, strict=True))


def person(
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    object_id: str | None = None,
    zones: tuple[str, ...] = (),
) -> AnnotatedBox:
    """A person box."""
    return AnnotatedBox("person", 0.87, Box(x0, y0, x1, y1), object_id, zones)


def test_output_is_a_jpeg_of_the_input_size() -> None:
    """A frame no wider than max_width keeps its size."""
    out = annotate(jpeg(640, 360), [person(0.1, 0.1, 0.5, 0.9, object_id="3")])
    assert out[:3] == b"\xff\xd8\xff"
    assert decode(out).size == (640, 360)


@pytest.mark.parametrize(
    ("size", "max_width", "expected"),
    [
        ((1920, 1080), 1280, (1280, 720)),  # scaled, no draft step fits
        ((3840, 2160), 1280, (1280, 720)),  # draft to 1/2, then scaled
        ((2560, 1440), 640, (640, 360)),  # draft to 1/4 lands exactly
        ((1280, 720), 1280, (1280, 720)),
    ],
)
def test_large_frames_are_reduced_to_max_width(
    size: tuple[int, int], max_width: int, expected: tuple[int, int]
) -> None:
    """Wide frames come out max_width wide with the aspect ratio kept."""
    out = annotate(jpeg(*size), [person(0.2, 0.2, 0.6, 0.8)], max_width=max_width)
    assert decode(out).size == expected


def test_png_input_is_drawn_too() -> None:
    """A camera that serves PNG still gets its frame drawn (no draft step for PNG)."""
    out = annotate(jpeg(1600, 900, fmt="PNG"), [person(0.2, 0.2, 0.6, 0.8)], max_width=800)
    assert decode(out).size == (800, 450)


@pytest.mark.parametrize(
    ("label", "group"),
    [("person", "person"), ("car", "vehicle"), ("Truck", "vehicle"), ("dog", "animal")],
)
def test_outline_has_the_group_colour(label: str, group: str) -> None:
    """Pixels on the drawn outline are the group's colour; the inside stays untouched."""
    colour = GROUP_COLOURS[group]
    assert colour_for(label) == colour
    # 1000 px wide: lines 3 px, exact pixel positions from the normalised box.
    out = decode(annotate(jpeg(1000, 1000), [AnnotatedBox(label, 0.9, Box(0.2, 0.3, 0.7, 0.8))]))
    left, top, right, bottom = 200, 300, 700, 800
    for x, y in [(left + 1, 550), (right - 1, 550), (450, bottom - 1), (450, top + 1)]:
        assert close(out.getpixel((x, y)), colour), (x, y, out.getpixel((x, y)))
    assert close(out.getpixel((450, 550)), GREY)


def test_other_labels_are_grey_and_groups_differ() -> None:
    """Objects outside the groups get the neutral colour; the groups are told apart."""
    assert colour_for("umbrella") == OTHER_COLOUR
    assert len({*GROUP_COLOURS.values(), OTHER_COLOUR}) == 4
    out = decode(
        annotate(jpeg(1000, 1000, (0, 0, 0)), [AnnotatedBox("kite", 0.5, Box(0, 0.5, 1, 1))])
    )
    assert close(out.getpixel((500, 998)), OTHER_COLOUR)


def test_tag_text() -> None:
    """Label, score in percent, track id and zones; odd scores never break the text."""
    assert tag_text(person(0, 0, 1, 1, object_id="3")) == "person 87% #3"
    assert tag_text(person(0, 0, 1, 1)) == "person 87%"
    # A tracker id (uuid hex) is shortened to its start.
    long_id = "6fc99cb17fd44e1384c8d91e900d678c"
    assert tag_text(person(0, 0, 1, 1, object_id=long_id)) == "person 87% #6fc99c"
    assert (
        tag_text(AnnotatedBox("car", 0.5, Box(0, 0, 1, 1), "7", ("drive", "gate")))
        == "car 50% #7 (drive, gate)"
    )
    assert tag_text(AnnotatedBox("cat", float("nan"), Box(0, 0, 1, 1))) == "cat 0%"
    assert tag_text(AnnotatedBox("cat", 7.0, Box(0, 0, 1, 1))) == "cat 100%"


def test_tag_is_filled_above_the_box_with_readable_text() -> None:
    """The tag sits on top of the box in the group colour, with text of another colour in it."""
    out = decode(annotate(jpeg(1280, 720), [person(0.25, 0.5, 0.75, 0.9, object_id="3")]))
    colour = GROUP_COLOURS["person"]
    x0, y0 = 320, 360
    tag = out.crop((x0, y0 - 40, x0 + 200, y0))
    pixels = list(tag.get_flattened_data())
    assert sum(close(p, colour) for p in pixels) > len(pixels) // 4  # the fill
    assert any(close(p, (255, 255, 255)) for p in pixels)  # white text on red
    # Nothing above the tag was drawn.
    assert close(out.getpixel((x0 + 10, y0 - 60)), GREY)


def test_light_group_colour_gets_dark_text() -> None:
    """Amber tags carry black text."""
    out = decode(annotate(jpeg(1280, 720), [AnnotatedBox("dog", 0.9, Box(0.3, 0.5, 0.6, 0.9))]))
    tag = out.crop((384, 320, 560, 360))
    assert any(close(p, (0, 0, 0)) for p in tag.get_flattened_data())


@pytest.mark.parametrize(
    "box",
    [
        Box(0.0, 0.0, 1.0, 1.0),  # the whole frame: tag inside the top edge
        Box(0.0, 0.0, 0.01, 0.01),  # top left corner
        Box(0.99, 0.99, 1.0, 1.0),  # bottom right corner: tag pulled back inside
        Box(0.95, 0.0, 1.0, 0.05),  # top right: tag wider than the room left
        Box(-0.5, -0.5, 1.5, 1.5),  # outside the frame: clipped
        Box(0.8, 0.9, 0.2, 0.1),  # corners swapped
        Box(0.5, 0.5, 0.5, 0.5),  # a point
    ],
)
def test_boxes_at_the_edges(box: Box) -> None:
    """Edge and odd boxes draw without error and the tag stays inside the frame."""
    out = decode(annotate(jpeg(640, 360), [AnnotatedBox("person", 0.9, box, "12", ("porch",))]))
    assert out.size == (640, 360)
    reds = [
        (x, y)
        for y in range(0, 360, 2)
        for x in range(0, 640, 2)
        if close(out.getpixel((x, y)), GROUP_COLOURS["person"])
    ]
    assert reds  # something was drawn, inside the frame by construction


def test_boxes_entirely_outside_or_not_finite_are_skipped() -> None:
    """Nothing of these boxes is visible: the frame comes back undrawn."""
    boxes = [
        person(1.2, 1.2, 1.5, 1.5),
        person(-0.5, -0.5, -0.1, -0.1),
        person(float("nan"), 0.1, 0.5, 0.5),
        person(0.1, 0.1, float("inf"), 0.5),
    ]
    out = decode(annotate(jpeg(320, 180), boxes))
    assert all(close(p, GREY) for p in out.get_flattened_data())


def test_no_boxes_is_the_frame_reencoded() -> None:
    """The latest frame without detections is still a valid picture."""
    out = decode(annotate(jpeg(320, 180), [], quality=50))
    assert out.size == (320, 180)


def test_300_boxes() -> None:
    """A crowded frame: every box outlined, the most certain ones tagged."""
    boxes = [
        AnnotatedBox(
            ("person", "car", "dog", "chair")[i % 4],
            (i % 100) / 100,
            Box((i % 20) / 20, (i // 20) / 15, (i % 20) / 20 + 0.04, (i // 20) / 15 + 0.05),
            str(i),
        )
        for i in range(300)
    ]
    out = decode(annotate(jpeg(1920, 1080), boxes))
    assert out.size == (1280, 720)
    # Box 298, a dog low on the right of the grid, has the animal outline.
    assert close(out.getpixel((1153, 690)), GROUP_COLOURS["animal"])


def test_thousands_of_boxes_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """More boxes than the cap: only the most certain are drawn (a hostile detector's flood)."""
    monkeypatch.setattr(draw, "MAX_OUTLINES", 1)
    monkeypatch.setattr(draw, "MAX_TAGS", 1)
    weak = AnnotatedBox("car", 0.1, Box(0.0, 0.0, 0.2, 0.2))
    strong = person(0.5, 0.5, 0.9, 0.9)
    out = decode(annotate(jpeg(1000, 1000), [weak, strong]))
    assert close(out.getpixel((501, 700)), GROUP_COLOURS["person"])
    assert close(out.getpixel((1, 100)), GREY)


def test_real_sample_frame() -> None:
    """The simulator's sample picture, drawn as the image entity would show it."""
    data = (IMAGES / "bus.jpg").read_bytes()
    out = decode(annotate(data, [person(0.07, 0.36, 0.27, 0.83, object_id="1", zones=("stop",))]))
    assert out.size == (810, 1080)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff\xe0" + b"\x00" * 64,  # a JPEG header and nothing else
        jpeg(640, 360)[:200],  # truncated
        jpeg(640, 360)[:-400],  # truncated in the scan data
    ],
)
def test_bad_input_raises_value_error(data: bytes) -> None:
    """The caller skips such a frame; nothing else escapes."""
    with pytest.raises(ValueError, match="not a decodable image"):
        annotate(data, [person(0.1, 0.1, 0.5, 0.5)])


def test_decompression_bomb_raises_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame with absurdly many pixels is refused, not decoded."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="not a decodable image"):
        annotate(jpeg(64, 32), [])  # warning zone: 2048 pixels
    with pytest.raises(ValueError, match="not a decodable image"):
        annotate(jpeg(128, 64), [])  # error zone: over twice the limit


def test_bad_max_width() -> None:
    """A nonsensical width is a programming error, reported as such."""
    with pytest.raises(ValueError, match="max_width"):
        annotate(jpeg(64, 32), [], max_width=0)
