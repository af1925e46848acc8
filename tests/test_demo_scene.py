"""The demo scene of scripts/develop: the real TFLite model sees the person, and only then.

The model runs in the detector's own virtual environment (.venv-detector, made by scripts/setup):
a child process decodes each distinct frame exactly as the detector server does and runs the
SSD MobileNet model on it. The snapshot endpoint is checked against a clock the test moves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess

import aiohttp
import pytest

from tests.support.onvif_sim import OnvifSimulator
from tests.support.onvif_sim.__main__ import _parse_args
from tests.support.onvif_sim.scene import (
    DEMO_EMPTY_AFTER,
    DEMO_EMPTY_BEFORE,
    DEMO_SIZE,
    DEMO_STAND,
    DEMO_STEP,
    DEMO_WALK_IN,
    DEMO_WALK_OUT,
    SCENES,
    Scene,
    SceneStep,
    demo_steps,
)

ROOT = Path(__file__).parents[1]
DETECTOR_PYTHON = ROOT / ".venv-detector" / "bin" / "python"
# What the integration needs: a person confirmed at the default threshold (median >= 0.7),
# and nothing on the empty street above the default minimum score.
CONFIRM = 0.7
MIN_SCORE = 0.5
# Runs in .venv-detector: the server's own decode (draft scaling included) and engine.
_DETECT = """
import json, sys
from pathlib import Path
from hsi_detector.config import parse_settings
from hsi_detector.engines.tflite import TfliteEngine
from hsi_detector.imaging import decode_image

settings = parse_settings(["--engine", "tflite"], env={})
engine = TfliteEngine(settings)
found = {}
for name in sys.argv[1:]:
    image = decode_image(
        Path(name).read_bytes(), settings.max_pixels, engine.input_size, letterbox=engine.letterbox
    )
    found[name] = [
        [d.label, d.confidence, d.x_min, d.y_min, d.x_max, d.y_max]
        for d in engine.infer([image.pixels], 0.3)[0]
    ]
print(json.dumps(found))
"""


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _distinct() -> list[SceneStep]:
    seen: set[bytes] = set()
    steps = []
    for step in demo_steps():
        if step.image not in seen:
            seen.add(step.image)
            steps.append(step)
    return steps


def test_demo_timeline() -> None:
    """Empty, walking in (a new position every second), standing, walking out, empty: 100 s."""
    steps = demo_steps()
    assert [s.name for s in steps] == [
        "empty",
        *(f"walk-in-{i}" for i in range(1, len(DEMO_WALK_IN) + 1)),
        "standing",
        *(f"walk-out-{i}" for i in range(1, len(DEMO_WALK_OUT) + 1)),
        "empty",
    ]
    assert [s.people for s in steps] == [0] + [1] * (len(steps) - 2) + [0]
    assert sum(s.seconds for s in steps) == 100
    assert steps[0].seconds == DEMO_EMPTY_BEFORE
    assert steps[-1].seconds == DEMO_EMPTY_AFTER
    assert max(s.seconds for s in steps) == DEMO_STAND
    assert {s.seconds for s in steps[1:-1]} == {DEMO_STEP, DEMO_STAND}
    # Every position differs (the box moves), the two empty steps share one image.
    assert len(_distinct()) == len(steps) - 1
    assert steps[0].image == steps[-1].image
    assert demo_steps() is steps  # built once per process
    for step in _distinct():
        assert step.image[:3] == b"\xff\xd8\xff"
        assert len(step.image) < 600_000


def _detect(tmp_path: Path, steps: list[SceneStep]) -> dict[str, list[list[object]]]:
    if not DETECTOR_PYTHON.exists():
        pytest.skip("no .venv-detector: run scripts/setup (without HSI_SKIP_DETECTOR)")
    files = []
    for index, step in enumerate(steps):
        path = tmp_path / f"{index:02d}-{step.name}.jpg"
        path.write_bytes(step.image)
        files.append(str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HSI_")}
    env["PYTHONPATH"] = str(ROOT / "detector")
    result = subprocess.run(
        [str(DETECTOR_PYTHON), "-c", _DETECT, *files],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if result.returncode != 0 and "No module named 'fhempy'" in result.stderr:
        pytest.skip("the packaged TFLite model (fhempy) is not installed")
    assert result.returncode == 0, result.stderr
    found: dict[str, list[list[object]]] = json.loads(result.stdout)
    return {Path(name).stem: detections for name, detections in found.items()}


def test_real_model_sees_the_person_only_when_there(tmp_path: Path) -> None:
    """Every frame with the person: a person well above 0.7; the empty street: none above 0.5."""
    steps = _distinct()
    found = _detect(tmp_path, steps)
    scores: dict[str, list[float]] = {}
    boxes: list[tuple[float, float]] = []
    for index, step in enumerate(steps):
        people = [d for d in found[f"{index:02d}-{step.name}"] if d[0] == "person"]
        scores[step.name] = sorted((float(d[1]) for d in people), reverse=True)  # type: ignore[arg-type]
        print(step.name, scores[step.name])  # the raw scores, for the record
        if step.people:
            assert scores[step.name][0] >= CONFIRM, (step.name, scores[step.name])
            # Exactly one person counts: any other candidate is below the minimum score.
            assert all(s < MIN_SCORE for s in scores[step.name][1:]), scores[step.name]
            best = max(people, key=lambda d: float(d[1]))  # type: ignore[arg-type]
            boxes.append((float(best[2]), float(best[4])))  # type: ignore[arg-type]
        else:
            assert all(s < MIN_SCORE for s in scores[step.name]), scores[step.name]
    # The box moves: right while walking in, left while walking out.
    lefts = [left for left, _ in boxes]
    walk_in = lefts[: len(DEMO_WALK_IN) + 1]
    walk_out = lefts[len(DEMO_WALK_IN) :]
    assert walk_in == sorted(walk_in)
    assert walk_out == sorted(walk_out, reverse=True)
    assert all(right > left for left, right in boxes)
    assert max(right for _, right in boxes) < DEMO_SIZE[0]


def test_scene_steps_follow_the_clock() -> None:
    """Steps change at their boundaries and the timeline loops; restart starts over."""
    clock = FakeClock()
    steps = [SceneStep(b"a", 2.0, "a"), SceneStep(b"b", 1.0, "b"), SceneStep(b"c", 3.0, "c")]
    scene = Scene(steps, clock)
    assert scene.duration == 6.0
    seen = []
    for tenth in range(0, 130, 5):
        clock.now = 1000.0 + tenth / 10
        seen.append(scene.current().name)
    assert "".join(seen) == "aaaabbcccccc" * 2 + "aa"
    assert scene.step_at(-0.5).name == "c"  # before the start: the loop's end
    clock.now = 2000.0
    scene.restart()
    assert scene.current().name == "a"
    clock.now = 2002.0
    assert scene.current().name == "b"


@pytest.mark.parametrize(
    "steps", [[], [SceneStep(b"a", 0.0)], [SceneStep(b"a", 1.0), SceneStep(b"b", -1.0)]]
)
def test_scene_refuses_empty_or_timeless_steps(steps: list[SceneStep]) -> None:
    """A scene that could not play is refused when it is made."""
    with pytest.raises(ValueError, match="step"):
        Scene(steps)


def test_cli_offers_the_demo_scene() -> None:
    """`--scene demo` is what scripts/develop passes; no scene by default."""
    assert _parse_args(["--scene", "demo"]).scene == "demo"
    assert _parse_args([]).scene is None
    assert sorted(SCENES) == ["demo"]


async def test_snapshot_endpoint_plays_the_scene(onvif_sim: OnvifSimulator) -> None:
    """The camera's snapshot is the step the scene's clock points at, for every profile."""
    clock = FakeClock()
    scene = SCENES["demo"](clock)
    onvif_sim.config.scene = scene
    onvif_sim.snapshot_auth = "none"
    steps = demo_steps()
    url = f"{onvif_sim.url}/snapshot/profile_main.jpg"
    async with aiohttp.ClientSession() as session:

        async def snapshot(at: float, profile: str = "profile_main") -> bytes:
            clock.now = scene.started + at
            async with session.get(url.replace("profile_main", profile)) as response:
                assert response.status == 200
                assert response.content_type == "image/jpeg"
                return await response.read()

        assert await snapshot(0) == steps[0].image
        assert await snapshot(19.9) == steps[0].image
        assert await snapshot(20.0) == steps[1].image  # the person walks in
        assert await snapshot(21.5) == steps[2].image
        assert await snapshot(26.0, "profile_sub") == steps[7].image  # standing
        assert await snapshot(65.9) == steps[7].image
        assert await snapshot(69.5) == steps[11].image  # last step out
        assert await snapshot(70.0) == steps[0].image  # gone
        assert await snapshot(100.0 + 20.0) == steps[1].image  # and again, next loop
    assert onvif_sim.snapshot_requests == 9
    # Without a scene the sample images rotate as before.
    onvif_sim.config.scene = None
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert await response.read() in {p.read_bytes() for p in onvif_sim.config.images}
