"""Scenes for the simulated camera: snapshot images that follow a looping timeline.

A `Scene` is a list of steps (an image and how long it shows) played in a loop on a clock that tests
may replace. `demo_scene()` is what `scripts/develop` plays: an empty street, a person walks in,
stands for a while, walks out, and the street is empty again. Its frames are composed at run time
from the two sample pictures (no extra binary files in the repository): a building front and the
pavement from `bus.jpg` make the empty street, and the man on the left of `bus.jpg` is pasted onto
it at the positions of his walk.

The positions and sizes were chosen with the real SSD MobileNet TFLite model (the detector's
`--engine tflite`): every frame with the person scores about 0.8 for "person", the empty street
scores nothing as a person; tests/test_demo_scene.py checks both with that model.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
import io
from itertools import accumulate
import time

from PIL import Image, ImageDraw

from .config import IMAGES_DIR

type Clock = Callable[[], float]

DEMO_SIZE = (1920, 1080)
"""The main profile's resolution."""
DEMO_QUALITY = 85
# Timeline of the demo, in seconds: one loop is 100 s.
DEMO_EMPTY_BEFORE = 20.0
DEMO_STEP = 1.0
"""Each position of the walk shows this long (the integration samples a frame per second)."""
DEMO_STAND = 40.0
DEMO_EMPTY_AFTER = 30.0
# Left edge of the person (pixels) along the walk. About 100 px a step: a third of the person's
# width, so consecutive boxes overlap well (IoU about 0.5) and the tracker keeps one id. The
# exact columns avoid the few offsets where the model's 300x300 input grid scores him lower.
DEMO_WALK_IN = (0, 120, 200, 320, 400, 520)
DEMO_STAND_AT = 560
DEMO_WALK_OUT = (480, 360, 280, 160)
# Where the pieces come from in bus.jpg (810x1080), as (left, top, right, bottom).
_FACADE = (0, 0, 810, 230)  # the building above the bus: no people, no vehicles
_PAVEMENT = (0, 905, 810, 1080)  # the paving below everyone's feet
_PERSON = (40, 370, 240, 910)  # the man in the cream coat, head to shoes
_PERSON_SCALE = (1.3 * 1.15, 1.3)  # slightly wider than tall scaling: SSD sees 16:9 squeezed
_HORIZON = 600  # where the building meets the pavement
_KERB = 30
_FEET = 1050  # the person stands with his shoes at this row


@dataclass(frozen=True, slots=True)
class SceneStep:
    """One image of a scene and how long it is shown."""

    image: bytes
    seconds: float
    name: str = ""
    people: int = 0
    """How many people the image shows (what a detector should find)."""


class Scene:
    """Steps that loop forever, timed by `clock` (seconds, e.g. time.monotonic) from `started`."""

    def __init__(self, steps: Sequence[SceneStep], clock: Clock = time.monotonic) -> None:
        if not steps:
            raise ValueError("a scene needs at least one step")
        if any(not step.seconds > 0 for step in steps):
            raise ValueError("every step must last a positive number of seconds")
        self.steps = tuple(steps)
        self.clock = clock
        self.duration = sum(step.seconds for step in self.steps)
        self._ends = list(accumulate(step.seconds for step in self.steps))
        self.started = clock()

    def restart(self) -> None:
        """Play from the first step again, now."""
        self.started = self.clock()

    def step_at(self, elapsed: float) -> SceneStep:
        """The step shown `elapsed` seconds after the start (looping)."""
        position = elapsed % self.duration
        return self.steps[min(bisect_right(self._ends, position), len(self.steps) - 1)]

    def current(self) -> SceneStep:
        """The step shown now."""
        return self.step_at(self.clock() - self.started)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=DEMO_QUALITY)
    return out.getvalue()


def _street(bus: Image.Image) -> Image.Image:
    width, height = DEMO_SIZE
    resample = Image.Resampling.BICUBIC
    street = Image.new("RGB", DEMO_SIZE)
    street.paste(bus.crop(_FACADE).resize((width, _HORIZON), resample), (0, 0))
    street.paste(bus.crop(_PAVEMENT).resize((width, height - _HORIZON), resample), (0, _HORIZON))
    # A kerb between wall and paving: without it the stretched paving reads as a bed to SSD.
    draw = ImageDraw.Draw(street)
    top, bottom = _HORIZON - _KERB // 2, _HORIZON + _KERB // 2
    draw.rectangle((0, top, width, bottom), fill=(128, 124, 118))
    draw.rectangle((0, bottom, width, bottom + 6), fill=(70, 68, 66))
    return street


@cache
def demo_steps() -> tuple[SceneStep, ...]:
    """The demo's timeline (about 4 MB of JPEGs, built once per process in about a second)."""
    with Image.open(IMAGES_DIR / "bus.jpg") as source:
        bus = source.convert("RGB")
    street = _street(bus)
    crop = bus.crop(_PERSON)
    person = crop.resize(
        (round(crop.width * _PERSON_SCALE[0]), round(crop.height * _PERSON_SCALE[1])),
        Image.Resampling.BICUBIC,
    )

    def with_person(left: int) -> bytes:
        frame = street.copy()
        frame.paste(person, (left, _FEET - person.height))
        return _encode(frame)

    empty = _encode(street)
    steps = [SceneStep(empty, DEMO_EMPTY_BEFORE, "empty")]
    steps += [
        SceneStep(with_person(x), DEMO_STEP, f"walk-in-{i}", people=1)
        for i, x in enumerate(DEMO_WALK_IN, start=1)
    ]
    steps.append(SceneStep(with_person(DEMO_STAND_AT), DEMO_STAND, "standing", people=1))
    steps += [
        SceneStep(with_person(x), DEMO_STEP, f"walk-out-{i}", people=1)
        for i, x in enumerate(DEMO_WALK_OUT, start=1)
    ]
    # The same bytes as the first step: one image of the empty street in memory.
    steps.append(SceneStep(empty, DEMO_EMPTY_AFTER, "empty"))
    return tuple(steps)


def demo_scene(clock: Clock = time.monotonic) -> Scene:
    """The demo scene, starting now on `clock`."""
    return Scene(demo_steps(), clock)


SCENES: dict[str, Callable[[Clock], Scene]] = {"demo": demo_scene}
"""Scenes by the name `--scene` takes."""
