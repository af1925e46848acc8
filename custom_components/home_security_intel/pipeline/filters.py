"""The first stage after the detector: drop what is not wanted, say which zones each object is in.

Detections are kept when their label belongs to a tracked group (person, vehicle, animal), their
score reaches the group's minimum, their box covers a plausible share of the frame and where the
object stands (the box's bottom centre) is outside every exclusion mask. Zones are tested at that
same point.

Zones and masks are typed by the user as text in the options form; `parse_zones` / `parse_masks`
turn that text into polygons and explain every mistake with the line and point it is on.

Pure Python, no Home Assistant imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import hashlib
import math
import re
from types import MappingProxyType
import unicodedata

from ..detection.model import GROUPS, Detection, label_group

type Point = tuple[float, float]
type Polygon = tuple[Point, ...]
type Mask = Polygon

MAX_DETECTIONS_PER_FRAME = 300
"""Detections kept per frame (highest scores first): a broken or hostile detector answering
thousands of boxes must not cost the tracker more than this."""
MAX_POINTS = 64
"""Points per zone or mask polygon: every kept detection is tested against every edge."""
MAX_ZONES = 32
"""Zones (and, separately, masks) per camera."""
MAX_ZONE_NAME = 40

_EDGE_EPSILON = 1e-9
"""Distance under which a point counts as on a polygon's edge (inside)."""
_MIN_POLYGON_AREA = 1e-9
"""Twice this is the shoelace sum below which a polygon is degenerate (its points on one line)."""
_COMMA_SPACES = re.compile(r"\s*,\s*")


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Whether the point is inside the polygon (even-odd rule); points on an edge are inside."""
    x, y = point
    count = len(polygon)
    inside = False
    for index in range(count):
        x1, y1 = polygon[index]
        x2, y2 = polygon[index - 1]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        # Half-open rule on y so a ray through a vertex is counted once.
        if (y1 > y) != (y2 > y):
            crossing = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < crossing:
                inside = not inside
    return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    if not (
        min(x1, x2) - _EDGE_EPSILON <= x <= max(x1, x2) + _EDGE_EPSILON
        and min(y1, y2) - _EDGE_EPSILON <= y <= max(y1, y2) + _EDGE_EPSILON
    ):
        return False
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    length = math.hypot(x2 - x1, y2 - y1)
    if length == 0:
        return True  # a zero-length edge: the bounding check above already matched the point
    return abs(cross) / length <= _EDGE_EPSILON


def polygon_area(polygon: Sequence[Point]) -> float:
    """The polygon's area (shoelace formula; self-intersecting parts may cancel out)."""
    total = 0.0
    for index in range(len(polygon)):
        x1, y1 = polygon[index - 1]
        x2, y2 = polygon[index]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def zone_slug(name: str) -> str:
    """The entity key of a zone name: lowercase ASCII letters, digits and underscores.

    Accents are dropped ("Café" -> "cafe"); a name with no ASCII letter or digit at all (say
    "车道") gets a stable "zone_" + hash slug so it can still be an entity key.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if slug:
        return slug
    return "zone_" + hashlib.sha256(name.strip().encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Zone:
    """A named area of the frame; objects of `groups` (empty: all) standing in it are in it."""

    name: str
    polygon: Polygon
    groups: frozenset[str] = frozenset()

    @property
    def slug(self) -> str:
        """The zone's entity key."""
        return zone_slug(self.name)

    def tracks(self, group: str) -> bool:
        """Whether objects of this group are listed in this zone."""
        return not self.groups or group in self.groups


def _all_groups() -> frozenset[str]:
    return frozenset(GROUPS)


def _no_minimums() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """What one camera keeps of a detector's answer."""

    groups: frozenset[str] = field(default_factory=_all_groups)
    min_score: float = 0.5
    min_score_by_group: Mapping[str, float] = field(default_factory=_no_minimums)
    """Per-group minimum score, replacing `min_score` for that group."""
    min_area: float = 0.0
    """Smallest box, as a fraction of the frame (0..1)."""
    max_area: float = 1.0
    zones: tuple[Zone, ...] = ()
    masks: tuple[Mask, ...] = ()
    """Exclusion polygons: an object standing in one is dropped."""
    max_detections: int = MAX_DETECTIONS_PER_FRAME

    def min_score_for(self, group: str) -> float:
        """The minimum score of a group's detections."""
        return self.min_score_by_group.get(group, self.min_score)


@dataclass(frozen=True, slots=True)
class ZonedDetection:
    """A detection that passed the filters, with its group and the zones it stands in."""

    detection: Detection
    group: str
    zones: frozenset[str]
    """Names of the zones the object stands in (only zones that track its group)."""


def zones_at(point: Point, group: str, zones: Iterable[Zone]) -> frozenset[str]:
    """Names of the zones tracking `group` that contain the point."""
    return frozenset(
        zone.name for zone in zones if zone.tracks(group) and point_in_polygon(point, zone.polygon)
    )


def filter_detections(
    detections: Iterable[Detection], config: FilterConfig
) -> tuple[ZonedDetection, ...]:
    """Keep the wanted detections of one frame (in the detector's order), with their zones.

    Cheap tests (group, score, area) run first; only the `config.max_detections` best survivors
    are tested against masks and zones, so the cost per frame is bounded whatever the detector says.
    """
    candidates: list[tuple[Detection, str]] = []
    for detection in detections:
        group = label_group(detection.label)
        if group is None or group not in config.groups:
            continue
        # Written as "not >=" so a NaN score is dropped too.
        if not detection.score >= config.min_score_for(group):
            continue
        if not config.min_area <= detection.box.area <= config.max_area:
            continue
        candidates.append((detection, group))
    if len(candidates) > config.max_detections:
        best = sorted(
            range(len(candidates)), key=lambda index: candidates[index][0].score, reverse=True
        )
        candidates = [candidates[index] for index in sorted(best[: config.max_detections])]
    kept: list[ZonedDetection] = []
    for detection, group in candidates:
        foot = detection.box.bottom_center
        if any(point_in_polygon(foot, mask) for mask in config.masks):
            continue
        kept.append(ZonedDetection(detection, group, zones_at(foot, group, config.zones)))
    return tuple(kept)


# --- The text the user types -----------------------------------------------------------------


class PolygonSyntaxError(ValueError):
    """Zone or mask text the user typed is wrong; the message says where and why."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        point: int | None = None,
        zone: str | None = None,
    ) -> None:
        """Say what is wrong and, when known, on which line (1-based), point (1-based) and zone."""
        where = ""
        if line is not None:
            where = f"line {line}"
            if zone:
                where += f" ({zone})"
            if point is not None:
                where += f", point {point}"
            where += ": "
        super().__init__(where + message)
        self.line = line
        self.point = point
        self.zone = zone


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _parse_coordinate(text: str, line: int, point: int, zone: str | None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PolygonSyntaxError(
            f"{text!r} is not a number", line=line, point=point, zone=zone
        ) from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise PolygonSyntaxError(f"{text} is outside 0..1", line=line, point=point, zone=zone)
    return value


def _parse_polygon(text: str, line: int, zone: str | None) -> Polygon:
    # "0.1, 0.5" is accepted as well as "0.1,0.5": spaces separate points, commas coordinates.
    tokens = _COMMA_SPACES.sub(",", text.strip()).split()
    if len(tokens) > MAX_POINTS:
        raise PolygonSyntaxError(
            f"has {len(tokens)} points, at most {MAX_POINTS} are allowed", line=line, zone=zone
        )
    points: list[Point] = []
    for number, token in enumerate(tokens, start=1):
        parts = token.split(",")
        if len(parts) != 2 or not all(parts):
            raise PolygonSyntaxError(f"{token!r} is not x,y", line=line, point=number, zone=zone)
        points.append(
            (
                _parse_coordinate(parts[0], line, number, zone),
                _parse_coordinate(parts[1], line, number, zone),
            )
        )
    if len(points) < 3:
        raise PolygonSyntaxError(
            f"needs at least 3 points, found {len(points)}", line=line, zone=zone
        )
    if polygon_area(points) < _MIN_POLYGON_AREA:
        raise PolygonSyntaxError(
            "the polygon has zero area (its points lie on one line)", line=line, zone=zone
        )
    return tuple(points)


def _parse_groups(text: str, line: int, zone: str) -> frozenset[str]:
    groups: set[str] = set()
    for item in text.split(","):
        group = item.strip().lower()
        if not group:
            continue
        if group not in GROUPS:
            raise PolygonSyntaxError(
                f"unknown group {item.strip()!r} (use {', '.join(GROUPS)})", line=line, zone=zone
            )
        groups.add(group)
    return frozenset(groups)


def parse_zones(text: str) -> tuple[Zone, ...]:
    """Zones from text, one per line: ``Name: x,y x,y x,y [| group, group]``.

    Coordinates are fractions of the frame (0..1, origin top left). Without ``| groups`` (or
    with nothing after the bar) a zone lists objects of every group. Blank lines and lines
    starting with # are ignored. Raises PolygonSyntaxError on the first mistake.
    """
    zones: list[Zone] = []
    names: dict[str, int] = {}
    slugs: dict[str, tuple[int, str]] = {}
    for number, line in _lines(text):
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise PolygonSyntaxError("missing name (write 'Name: x,y x,y x,y')", line=number)
        if len(name) > MAX_ZONE_NAME:
            raise PolygonSyntaxError(
                f"the name is longer than {MAX_ZONE_NAME} characters", line=number, zone=name
            )
        folded = name.casefold()
        if folded in names:
            raise PolygonSyntaxError(
                f"duplicate zone name (already on line {names[folded]})", line=number, zone=name
            )
        slug = zone_slug(name)
        if slug in slugs:
            other_line, other = slugs[slug]
            raise PolygonSyntaxError(
                f"duplicate zone name: it gives the same key {slug!r} as {other!r} "
                f"on line {other_line}",
                line=number,
                zone=name,
            )
        points_text, _, groups_text = rest.partition("|")
        polygon = _parse_polygon(points_text, number, name)
        groups = _parse_groups(groups_text, number, name)
        if len(zones) == MAX_ZONES:
            raise PolygonSyntaxError(f"at most {MAX_ZONES} zones are allowed", line=number)
        names[folded] = number
        slugs[slug] = (number, name)
        zones.append(Zone(name, polygon, groups))
    return tuple(zones)


def parse_masks(text: str) -> tuple[Mask, ...]:
    """Exclusion masks from text, one polygon per line: ``x,y x,y x,y``."""
    masks: list[Mask] = []
    for number, line in _lines(text):
        polygon = _parse_polygon(line, number, None)
        if len(masks) == MAX_ZONES:
            raise PolygonSyntaxError(f"at most {MAX_ZONES} masks are allowed", line=number)
        masks.append(polygon)
    return tuple(masks)


def _format_number(value: float) -> str:
    text = repr(float(value))
    return text.removesuffix(".0")


def _format_polygon(polygon: Iterable[Point]) -> str:
    return " ".join(f"{_format_number(x)},{_format_number(y)}" for x, y in polygon)


def format_zones(zones: Iterable[Zone]) -> str:
    """The text `parse_zones` reads back into the same zones."""
    lines: list[str] = []
    for zone in zones:
        name = zone.name.strip()
        if not name or ":" in name or "\n" in name or "\r" in name or name.startswith("#"):
            raise ValueError(f"zone name {zone.name!r} cannot be written as text")
        line = f"{name}: {_format_polygon(zone.polygon)}"
        if zone.groups:
            line += " | " + ", ".join(group for group in GROUPS if group in zone.groups)
        lines.append(line)
    return "\n".join(lines)


def format_masks(masks: Iterable[Mask]) -> str:
    """The text `parse_masks` reads back into the same masks."""
    return "\n".join(_format_polygon(mask) for mask in masks)
