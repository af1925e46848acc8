"""Builders shared by the security layer's tests: tracked objects as the pipeline makes them."""

from __future__ import annotations

from custom_components.home_security_intel.detection.model import Box, label_group
from custom_components.home_security_intel.pipeline.tracker import TrackedObject

BOX = Box(0.4, 0.2, 0.6, 0.9)


def tracked(
    object_id: str,
    label: str = "person",
    *,
    zones: frozenset[str] = frozenset(),
    first_seen: float = 0.0,
    last_seen: float = 0.0,
    stationary: bool = False,
    score: float = 0.9,
    box: Box = BOX,
    visible: bool = True,
) -> TrackedObject:
    """A confirmed track (the only kind the state stage counts)."""
    group = label_group(label)
    assert group is not None
    return TrackedObject(
        object_id=object_id,
        label=label,
        group=group,
        score=score,
        median_score=score,
        box=box,
        zones=zones,
        first_seen=first_seen,
        last_seen=last_seen,
        frames_seen=10,
        confirmed=True,
        stationary=stationary,
        visible=visible,
    )
