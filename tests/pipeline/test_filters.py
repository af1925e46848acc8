"""Filters, zones and masks: the geometry, the detection filter and the text the user types."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from custom_components.home_security_intel.detection.model import Box, Detection
from custom_components.home_security_intel.pipeline.filters import (
    MAX_DETECTIONS_PER_FRAME,
    MAX_POINTS,
    MAX_ZONES,
    FilterConfig,
    PolygonSyntaxError,
    Zone,
    ZonedDetection,
    filter_detections,
    format_masks,
    format_zones,
    parse_masks,
    parse_zones,
    point_in_polygon,
    polygon_area,
    zone_slug,
    zones_at,
)

from .common import det

SQUARE = ((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6))
# A "U": the notch between the arms (x 0.4..0.6, y 0..0.6) is outside.
U_SHAPE = (
    (0.2, 0.0),
    (0.4, 0.0),
    (0.4, 0.6),
    (0.6, 0.6),
    (0.6, 0.0),
    (0.8, 0.0),
    (0.8, 1.0),
    (0.2, 1.0),
)
TRIANGLE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))


# --- point in polygon -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.4, 0.4), True),
        ((0.1, 0.4), False),
        ((0.7, 0.4), False),
        ((0.4, 0.1), False),
        ((0.4, 0.7), False),
        # Edges and corners count as inside.
        ((0.2, 0.4), True),
        ((0.6, 0.4), True),
        ((0.4, 0.2), True),
        ((0.4, 0.6), True),
        ((0.2, 0.2), True),
        ((0.6, 0.6), True),
        # Just off an edge is outside.
        ((0.6 + 1e-6, 0.4), False),
    ],
)
def test_point_in_square(point: tuple[float, float], inside: bool) -> None:
    """Inside, outside, and on the edges of an axis-aligned square."""
    assert point_in_polygon(point, SQUARE) is inside


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.3, 0.3), True),  # left arm
        ((0.7, 0.3), True),  # right arm
        ((0.5, 0.3), False),  # the notch
        ((0.5, 0.8), True),  # the base
        ((0.5, 0.6), True),  # on the notch's bottom edge
        # A horizontal ray from here passes exactly through the vertices (0.4, 0.6) and (0.6, 0.6).
        ((0.1, 0.6), False),
        ((0.3, 0.6), True),
        ((0.9, 0.6), False),
    ],
)
def test_point_in_concave_polygon(point: tuple[float, float], inside: bool) -> None:
    """Even-odd counting in a concave polygon, including rays through vertices."""
    assert point_in_polygon(point, U_SHAPE) is inside


def test_point_on_diagonal_edge_and_frame_border() -> None:
    """A slanted edge counts as inside; a zone reaching the frame's bottom holds y == 1.0."""
    assert point_in_polygon((0.5, 0.5), TRIANGLE)
    assert not point_in_polygon((0.5, 0.5 + 1e-6), TRIANGLE)
    driveway = ((0.1, 0.55), (0.95, 0.55), (0.95, 1.0), (0.1, 1.0))
    assert point_in_polygon((0.5, 1.0), driveway)
    assert not point_in_polygon((0.05, 1.0), driveway)


def test_point_in_polygon_with_repeated_vertex() -> None:
    """A zero-length edge (a point typed twice) does not break the test."""
    polygon = ((0.2, 0.2), (0.6, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6))
    assert point_in_polygon((0.6, 0.2), polygon)
    assert point_in_polygon((0.4, 0.4), polygon)
    assert not point_in_polygon((0.7, 0.2), polygon)


def test_point_in_polygon_closed_by_repeating_the_first_point() -> None:
    """Users often close a polygon by typing the first point again: it still works."""
    closed = (*SQUARE, SQUARE[0])
    assert point_in_polygon((0.2, 0.2), closed)
    assert point_in_polygon((0.4, 0.4), closed)
    assert not point_in_polygon((0.1, 0.2), closed)
    assert polygon_area(closed) == pytest.approx(0.16)


def test_polygon_area() -> None:
    """Shoelace area, either winding."""
    assert polygon_area(SQUARE) == pytest.approx(0.16)
    assert polygon_area(tuple(reversed(SQUARE))) == pytest.approx(0.16)
    assert polygon_area(TRIANGLE) == pytest.approx(0.5)
    assert polygon_area(((0, 0), (0.5, 0.5), (1, 1))) == 0


# --- slugs and zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Driveway", "driveway"),
        ("Front door", "front_door"),
        ("  Front -- Door! ", "front_door"),
        ("Café Terrasse", "cafe_terrasse"),
        ("Zone 2", "zone_2"),
        ("Straße", "strae"),
    ],
)
def test_zone_slug(name: str, slug: str) -> None:
    """Lowercase ASCII with underscores, accents dropped."""
    assert zone_slug(name) == slug


def test_zone_slug_without_ascii_letters() -> None:
    """A name with no ASCII letter still gets a stable, distinct key."""
    slug = zone_slug("车道")
    assert slug.startswith("zone_")
    assert slug == zone_slug("车道")
    assert slug != zone_slug("花园")
    assert slug.isascii()


def test_zone_tracks_groups() -> None:
    """Empty groups means every group."""
    everything = Zone("All", SQUARE)
    cars = Zone("Cars", SQUARE, frozenset({"vehicle"}))
    assert everything.tracks("person")
    assert everything.tracks("animal")
    assert cars.tracks("vehicle")
    assert not cars.tracks("person")
    assert cars.slug == "cars"


def test_zones_at_lists_only_zones_of_the_group() -> None:
    """A point in two zones, one of which only tracks vehicles."""
    zones = (
        Zone("Garden", SQUARE),
        Zone("Driveway", SQUARE, frozenset({"vehicle"})),
        Zone("Far", ((0.7, 0.7), (0.9, 0.7), (0.9, 0.9))),
    )
    assert zones_at((0.4, 0.4), "person", zones) == {"Garden"}
    assert zones_at((0.4, 0.4), "vehicle", zones) == {"Garden", "Driveway"}
    assert zones_at((0.1, 0.1), "vehicle", zones) == frozenset()


# --- filter_detections ------------------------------------------------------------------------


def test_filter_drops_unknown_and_untracked_groups() -> None:
    """Labels without a group, and groups the camera does not track, are dropped."""
    detections = (
        det("person", 0.9, 0.1, 0.1, 0.2, 0.4),
        det("chair", 0.99, 0.3, 0.3, 0.4, 0.4),
        det("dog", 0.9, 0.5, 0.5, 0.6, 0.6),
        det("Truck", 0.9, 0.6, 0.6, 0.9, 0.9),
    )
    kept = filter_detections(detections, FilterConfig(groups=frozenset({"person", "vehicle"})))
    assert [(z.detection.label, z.group) for z in kept] == [
        ("person", "person"),
        ("Truck", "vehicle"),
    ]
    assert all(z.zones == frozenset() for z in kept)


def test_filter_scores_global_and_per_group() -> None:
    """The per-group minimum replaces the global one; the minimum itself passes."""
    detections = (
        det("person", 0.5, 0.1, 0.1, 0.2, 0.4),
        det("person", 0.49, 0.1, 0.1, 0.2, 0.4),
        det("car", 0.6, 0.3, 0.3, 0.5, 0.5),
        det("car", 0.75, 0.3, 0.3, 0.5, 0.5),
        det("cat", 0.3, 0.6, 0.6, 0.7, 0.7),
        det("cat", float("nan"), 0.6, 0.6, 0.7, 0.7),
    )
    config = FilterConfig(
        min_score=0.5, min_score_by_group=MappingProxyType({"vehicle": 0.7, "animal": 0.3})
    )
    kept = filter_detections(detections, config)
    assert [(z.detection.label, z.detection.score) for z in kept] == [
        ("person", 0.5),
        ("car", 0.75),
        ("cat", 0.3),
    ]
    assert config.min_score_for("person") == 0.5
    assert config.min_score_for("vehicle") == 0.7


def test_filter_area_bounds_inclusive() -> None:
    """Boxes smaller than min_area or larger than max_area are dropped; the bounds pass."""
    detections = (
        det("person", 0.9, 0.0, 0.0, 0.1, 0.1),  # 0.01
        det("person", 0.9, 0.0, 0.0, 0.1, 0.05),  # 0.005
        det("person", 0.9, 0.0, 0.0, 0.5, 1.0),  # 0.5
        det("person", 0.9, 0.0, 0.0, 0.6, 1.0),  # 0.6
    )
    kept = filter_detections(detections, FilterConfig(min_area=0.01, max_area=0.5))
    assert [z.detection.box.area for z in kept] == [pytest.approx(0.01), pytest.approx(0.5)]


def test_filter_masks_test_the_bottom_centre() -> None:
    """An object whose feet are in a mask is dropped, even if most of its box is outside."""
    mask = ((0.0, 0.0), (0.3, 0.0), (0.3, 0.2), (0.0, 0.2))
    detections = (
        det("person", 0.9, 0.1, 0.0, 0.2, 0.15),  # feet (0.15, 0.15): masked
        det("person", 0.9, 0.1, 0.0, 0.2, 0.5),  # box overlaps the mask, feet below it: kept
        det("person", 0.9, 0.25, 0.1, 0.35, 0.2),  # feet (0.3, 0.2): on the mask's corner
    )
    kept = filter_detections(detections, FilterConfig(masks=(mask,)))
    assert [z.detection.box.y_max for z in kept] == [0.5]


def test_filter_assigns_zones() -> None:
    """Zones come from the bottom centre, and only zones tracking the object's group."""
    driveway = Zone(
        "Driveway", ((0.1, 0.55), (0.95, 0.55), (0.95, 1.0), (0.1, 1.0)), frozenset({"vehicle"})
    )
    porch = Zone("Porch", ((0.0, 0.3), (0.3, 0.3), (0.3, 0.7), (0.0, 0.7)))
    config = FilterConfig(zones=(driveway, porch))
    detections = (
        det("car", 0.9, 0.3, 0.6, 0.7, 0.9),
        det("person", 0.9, 0.3, 0.6, 0.7, 0.9),
        det("person", 0.9, 0.1, 0.2, 0.2, 0.6),  # feet (0.15, 0.6): porch only
        det("car", 0.9, 0.1, 0.2, 0.2, 0.6),  # feet in both
    )
    kept = filter_detections(detections, config)
    assert [z.zones for z in kept] == [
        {"Driveway"},
        frozenset(),
        {"Porch"},
        {"Driveway", "Porch"},
    ]


def test_filter_caps_detections_keeping_the_best_in_order() -> None:
    """Above the cap, the highest scores survive, in the detector's order."""
    detections = [det("person", 0.5 + i / 100, 0.0, 0.0, 0.1, 0.1) for i in range(10)]
    kept = filter_detections(detections, FilterConfig(max_detections=3))
    assert [z.detection.score for z in kept] == [pytest.approx(s) for s in (0.57, 0.58, 0.59)]


def test_filter_default_cap_with_ten_thousand_boxes() -> None:
    """A hostile answer of 10,000 boxes leaves at most MAX_DETECTIONS_PER_FRAME."""
    detections = [
        det("person", 0.5 + (i % 500) / 1000, (i % 90) / 100, 0.1, (i % 90) / 100 + 0.05, 0.3)
        for i in range(10_000)
    ]
    kept = filter_detections(detections, FilterConfig())
    assert len(kept) == MAX_DETECTIONS_PER_FRAME
    assert min(z.detection.score for z in kept) >= 0.5 + 480 / 1000 - 1e-9


def test_zoned_detection_is_frozen() -> None:
    """Pipeline data cannot be changed behind a stage's back."""
    zoned = ZonedDetection(Detection("person", 0.9, Box(0, 0, 1, 1)), "person", frozenset())
    with pytest.raises(AttributeError):
        zoned.group = "vehicle"  # type: ignore[misc]


# --- parsing ----------------------------------------------------------------------------------

ZONES_TEXT = """
# my zones
Driveway: 0.10,0.55 0.95,0.55 0.95,1.0 0.10,1.0 | vehicle, person

Front door: 0.4,0.2 0.6,0.2 0.6, 0.5 0.4 , 0.5
Garden:0,0 1,0 1,1|Animal
"""


def test_parse_zones() -> None:
    """Names, points (spaces around commas tolerated), optional groups, comments, blanks."""
    zones = parse_zones(ZONES_TEXT)
    assert zones == (
        Zone(
            "Driveway",
            ((0.10, 0.55), (0.95, 0.55), (0.95, 1.0), (0.10, 1.0)),
            frozenset({"vehicle", "person"}),
        ),
        Zone("Front door", ((0.4, 0.2), (0.6, 0.2), (0.6, 0.5), (0.4, 0.5)), frozenset()),
        Zone("Garden", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)), frozenset({"animal"})),
    )
    assert parse_zones("") == ()
    assert parse_zones("\n# nothing\n   \n") == ()


def test_parse_zone_with_empty_group_list_means_all() -> None:
    """Nothing after the bar is the same as no bar."""
    (zone,) = parse_zones("Yard: 0,0 1,0 1,1 |  ")
    assert zone.groups == frozenset()


def test_zones_round_trip() -> None:
    """format_zones writes what parse_zones reads back identically."""
    zones = parse_zones(ZONES_TEXT)
    text = format_zones(zones)
    assert text.splitlines()[0] == "Driveway: 0.1,0.55 0.95,0.55 0.95,1 0.1,1 | person, vehicle"
    assert text.splitlines()[1] == "Front door: 0.4,0.2 0.6,0.2 0.6,0.5 0.4,0.5"
    assert parse_zones(text) == zones
    odd = (Zone("Tiny", ((1e-05, 0.0), (0.123456789012, 0.0), (0.5, 1 / 3))),)
    assert parse_zones(format_zones(odd)) == odd


def test_masks_round_trip() -> None:
    """Masks: one polygon per line, no names."""
    masks = parse_masks("0,0 0.3,0 0.3,0.2 0,0.2\n# tree\n0.7,0 1,0 1,0.3")
    assert masks == (
        ((0.0, 0.0), (0.3, 0.0), (0.3, 0.2), (0.0, 0.2)),
        ((0.7, 0.0), (1.0, 0.0), (1.0, 0.3)),
    )
    assert format_masks(masks) == "0,0 0.3,0 0.3,0.2 0,0.2\n0.7,0 1,0 1,0.3"
    assert parse_masks(format_masks(masks)) == masks
    assert format_masks(()) == ""


@pytest.mark.parametrize("name", ["A: B", "", "  ", "#hidden", "two\nlines"])
def test_format_zones_refuses_unwritable_names(name: str) -> None:
    """A zone built in code with a name the text format cannot hold is refused."""
    with pytest.raises(ValueError, match="cannot be written as text"):
        format_zones((Zone(name, SQUARE),))


@pytest.mark.parametrize(
    ("text", "message", "line", "point", "zone"),
    [
        (
            "Driveway: 0,0 1,0 1,1\nFront door: 0.4,0.2 0.6,0.2 0.6;0.3",
            "line 2 (Front door), point 3: '0.6;0.3' is not x,y",
            2,
            3,
            "Front door",
        ),
        (
            "Front door: 0.4,0.2 1.4,0.2 0.6,0.3",
            "line 1 (Front door), point 2: 1.4 is outside 0..1",
            1,
            2,
            "Front door",
        ),
        (
            "Front door: 0.4,0.2 0.5,-0.1 0.6,0.3",
            "line 1 (Front door), point 2: -0.1 is outside 0..1",
            1,
            2,
            "Front door",
        ),
        (
            "Porch: 0.4,0.2 0.5,nan 0.6,0.3",
            "line 1 (Porch), point 2: nan is outside 0..1",
            1,
            2,
            "Porch",
        ),
        (
            "Porch: 0.4,0.2 0.5,abc 0.6,0.3",
            "line 1 (Porch), point 2: 'abc' is not a number",
            1,
            2,
            "Porch",
        ),
        ("Porch: 0.4,0.2 0.5 0.6,0.3", "line 1 (Porch), point 2: '0.5' is not x,y", 1, 2, "Porch"),
        # Spaces around commas are tolerated, so a stray comma joins two points.
        (
            "Porch: 0.4,0.2 ,0.5 0.6,0.3",
            "line 1 (Porch), point 1: '0.4,0.2,0.5' is not x,y",
            1,
            1,
            "Porch",
        ),
        (
            "Porch: 0.4, 0.6,0.3 0,0",
            "line 1 (Porch), point 1: '0.4,0.6,0.3' is not x,y",
            1,
            1,
            "Porch",
        ),
        ("Porch: ,0.4 0.6,0.3 0,0", "line 1 (Porch), point 1: ',0.4' is not x,y", 1, 1, "Porch"),
        (
            "Porch: 0.1,0.2,0.3 0,0 1,1",
            "line 1 (Porch), point 1: '0.1,0.2,0.3' is not x,y",
            1,
            1,
            "Porch",
        ),
        ("Porch: 0,0 1,1", "line 1 (Porch): needs at least 3 points, found 2", 1, None, "Porch"),
        ("Porch:", "line 1 (Porch): needs at least 3 points, found 0", 1, None, "Porch"),
        (
            "Porch: 0,0 0.5,0.5 1,1",
            "line 1 (Porch): the polygon has zero area (its points lie on one line)",
            1,
            None,
            "Porch",
        ),
        (
            "Porch: 0.2,0.2 0.2,0.2 0.2,0.2",
            "line 1 (Porch): the polygon has zero area (its points lie on one line)",
            1,
            None,
            "Porch",
        ),
        (
            "Porch: 0,0 1,0 1,1\n\n# c\nporch: 0,0 1,0 0,1",
            "line 4 (porch): duplicate zone name (already on line 1)",
            4,
            None,
            "porch",
        ),
        (
            "Front door: 0,0 1,0 1,1\nfront-door: 0,0 1,0 0,1",
            "line 2 (front-door): duplicate zone name: it gives the same key 'front_door' as "
            "'Front door' on line 1",
            2,
            None,
            "front-door",
        ),
        (
            "Driveway: 0,0 1,0 1,1 | car",
            "line 1 (Driveway): unknown group 'car' (use person, vehicle, animal)",
            1,
            None,
            "Driveway",
        ),
        (
            "Driveway: 0,0 1,0 1,1 | person, People",
            "line 1 (Driveway): unknown group 'People' (use person, vehicle, animal)",
            1,
            None,
            "Driveway",
        ),
        (
            "0.1,0.5 0.9,0.5 0.9,1",
            "line 1: missing name (write 'Name: x,y x,y x,y')",
            1,
            None,
            None,
        ),
        (
            "Ok: 0,0 1,0 1,1\n  : 0.1,0.5 0.9,0.5 0.9,1",
            "line 2: missing name (write 'Name: x,y x,y x,y')",
            2,
            None,
            None,
        ),
        (
            "A" * 41 + ": 0,0 1,0 1,1",
            f"line 1 ({'A' * 41}): the name is longer than 40 characters",
            1,
            None,
            "A" * 41,
        ),
    ],
)
def test_parse_zones_errors(
    text: str, message: str, line: int, point: int | None, zone: str | None
) -> None:
    """Every mistake names its line, zone and point, and exposes them as attributes."""
    with pytest.raises(PolygonSyntaxError) as caught:
        parse_zones(text)
    assert str(caught.value) == message
    assert caught.value.line == line
    assert caught.value.point == point
    assert caught.value.zone == zone
    assert isinstance(caught.value, ValueError)


def test_zone_name_of_forty_characters_is_fine() -> None:
    """The limit itself is allowed."""
    (zone,) = parse_zones("B" * 40 + ": 0,0 1,0 1,1")
    assert zone.name == "B" * 40


def test_too_many_points_and_zones() -> None:
    """Polygons and zone lists are bounded (each detection is tested against every edge)."""
    points = " ".join(f"{i / 100},{(i % 2) / 2}" for i in range(MAX_POINTS + 1))
    with pytest.raises(PolygonSyntaxError, match=f"line 1 \\(Big\\): has {MAX_POINTS + 1} points"):
        parse_zones(f"Big: {points}")
    many = "\n".join(f"Zone {i}: 0,0 1,0 1,1" for i in range(MAX_ZONES + 1))
    with pytest.raises(PolygonSyntaxError) as caught:
        parse_zones(many)
    assert str(caught.value) == f"line {MAX_ZONES + 1}: at most {MAX_ZONES} zones are allowed"
    assert len(parse_zones("\n".join(many.splitlines()[:MAX_ZONES]))) == MAX_ZONES
    masks = "\n".join("0,0 1,0 1,1" for _ in range(MAX_ZONES + 1))
    with pytest.raises(PolygonSyntaxError, match=f"at most {MAX_ZONES} masks"):
        parse_masks(masks)


@pytest.mark.parametrize(
    ("text", "message", "line", "point"),
    [
        ("0,0 0.3,0 0.3;0.2", "line 1, point 3: '0.3;0.2' is not x,y", 1, 3),
        ("# c\n0,0 0.3,0 2,0.2", "line 2, point 3: 2 is outside 0..1", 2, 3),
        ("Tree: 0,0 0.3,0 0.3,0.2", "line 1, point 1: 'Tree:' is not x,y", 1, 1),
        ("0,0 1,1", "line 1: needs at least 3 points, found 2", 1, None),
        (
            "0,0 0.5,0 1,0",
            "line 1: the polygon has zero area (its points lie on one line)",
            1,
            None,
        ),
    ],
)
def test_parse_masks_errors(text: str, message: str, line: int, point: int | None) -> None:
    """Mask mistakes name the line and point (masks have no names)."""
    with pytest.raises(PolygonSyntaxError) as caught:
        parse_masks(text)
    assert str(caught.value) == message
    assert (caught.value.line, caught.value.point, caught.value.zone) == (line, point, None)


def test_polygon_syntax_error_without_location() -> None:
    """Raised in code without a line, the message is just the reason."""
    error = PolygonSyntaxError("bad")
    assert str(error) == "bad"
    assert (error.line, error.point, error.zone) == (None, None, None)


def test_parsed_zones_feed_the_filter() -> None:
    """Text typed in the form, straight into the filter."""
    config = FilterConfig(
        zones=parse_zones("Driveway: 0.10,0.55 0.95,0.55 0.95,1.0 0.10,1.0 | vehicle"),
        masks=parse_masks("0,0 0.3,0 0.3,0.2 0,0.2"),
    )
    kept = filter_detections(
        (
            det("car", 0.8, 0.4, 0.6, 0.8, 1.0),
            det("person", 0.8, 0.4, 0.6, 0.5, 1.0),
            det("person", 0.8, 0.05, 0.0, 0.1, 0.1),
        ),
        config,
    )
    assert [(z.group, z.zones) for z in kept] == [
        ("vehicle", frozenset({"Driveway"})),
        ("person", frozenset()),
    ]
