"""Frames analysed per camera per day, with and without motion gating, on a quiet day.

A computed figure, not a timing: the simulator's motion schedule (tests/support/onvif_sim/events.py,
``MotionSchedule``) says when the camera reports motion, and the integration's own rate rule
(``detection_coordinator.target_fps``) says how many frames per second each moment gets. The sum
over a day, second by second, is what reaches the detector.

The quiet day: ``--visits`` visits (default 40: postman, neighbours, a cat or two) of ``--visit``
seconds each (default 50 s, the demo scene's person: walk in, stand, walk out), spread evenly.

    .venv/bin/python benchmarks/motion_gating.py [--visits 40] [--visit 50] [--steady 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.home_security_intel.detection_coordinator import (
    DetectionSettings,
    target_fps,
)
from tests.support.onvif_sim.events import MotionSchedule

DAY_S = 86_400


def frames_per_day(settings: DetectionSettings, schedule: MotionSchedule | None) -> float:
    """Frames analysed in a day: per second, the rate the rule gives for what the camera says."""
    now = [0.0]
    if schedule is not None:
        schedule.clock = lambda: now[0]
    total = 0.0
    for second in range(DAY_S):
        now[0] = second + 0.5
        motion = schedule() if schedule is not None else None
        total += target_fps(settings, motion)
    return total


def main(argv: list[str] | None = None) -> int:
    """Print frames per day for each setting, then the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=40)
    parser.add_argument("--visit", type=float, default=50.0, help="seconds of motion per visit")
    parser.add_argument("--steady", type=float, default=1.0, help="steady rate, frames/s")
    parser.add_argument("--motion-fps", type=float, default=5.0)
    args = parser.parse_args(argv)
    period = DAY_S / args.visits
    schedule = MotionSchedule(((0.0, args.visit),), period, clock=lambda: 0.0, started=0.0)
    motion_s = args.visits * args.visit
    rows = [
        ("no events (steady rate)", DetectionSettings(fps=args.steady), None),
        (
            f"motion {args.motion_fps:g}/s, idle {args.steady:g}/s",
            DetectionSettings(fps=args.steady, motion_fps=args.motion_fps),
            schedule,
        ),
        (
            f"motion {args.motion_fps:g}/s, idle 0.2/s",
            DetectionSettings(fps=0.2, motion_fps=args.motion_fps),
            schedule,
        ),
        (
            f"motion {args.motion_fps:g}/s, idle 0 (only on motion)",
            DetectionSettings(fps=0.0, motion_fps=args.motion_fps),
            schedule,
        ),
    ]
    print(
        f"quiet day: {args.visits} visits x {args.visit:g} s = {motion_s / 3600:.2f} h of motion "
        f"({motion_s / DAY_S:.1%} of the day)"
    )
    results = []
    for name, settings, sched in rows:
        frames = frames_per_day(settings, sched)
        results.append((name, frames))
        print(f"  {name:<40} {frames:>10,.0f} frames/day")
    baseline = results[0][1]
    print("ratios against the steady rate:")
    for name, frames in results[1:]:
        print(f"  {name:<40} {frames / baseline:>9.3f}x  ({1 - frames / baseline:+.1%} saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
