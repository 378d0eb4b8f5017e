"""Box arithmetic: areas, overlaps and the transforms the detector and tracker rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_runtime.boxes import Box

boxes = st.builds(Box, st.integers(-50, 50), st.integers(-50, 50), st.integers(1, 60), st.integers(1, 60))


def test_area_center_and_list():
    box = Box(1, 2, 3, 5)
    assert box.area == 15 and box.center == (2.5, 4.5) and box.as_list() == [1, 2, 3, 5]
    assert Box(0, 0, -3, 4).area == 0 and Box(0, 0, 3, -4).area == 0


def test_scaled_shifted_grown():
    assert Box(10, 20, 30, 40).scaled(0.5) == Box(5, 10, 15, 20)
    assert Box(10, 20, 30, 40).scaled(2, 3) == Box(20, 60, 60, 120)
    assert Box(1, 2, 3, 4).shifted(1.6, -2.4) == Box(3, 0, 3, 4)
    # A quarter of the width (5) and of the height (2.5) on every side, around the same centre.
    grown = Box(10, 10, 20, 10).grown(0.25)
    assert grown == Box(5, 8, 30, 15)
    assert Box(10, 10, 20, 20).grown(0.0) == Box(10, 10, 20, 20)


def test_clipped_to_the_image():
    assert Box(-5, -5, 20, 20).clipped(100, 100) == Box(0, 0, 15, 15)
    assert Box(90, 95, 20, 20).clipped(100, 100) == Box(90, 95, 10, 5)
    assert Box(10, 10, 20, 20).clipped(100, 100) == Box(10, 10, 20, 20)
    assert Box(100, 10, 5, 5).clipped(100, 100) is None  # starts at the right edge: nothing inside
    assert Box(10, 100, 5, 5).clipped(100, 100) is None
    assert Box(-5, 10, 5, 5).clipped(100, 100) is None  # ends at the left edge
    assert Box(10, -5, 5, 5).clipped(100, 100) is None


def test_intersection_iou_and_overlap():
    a, b = Box(0, 0, 10, 10), Box(5, 0, 10, 10)
    assert a.intersection(b) == 50 and b.intersection(a) == 50
    assert a.iou(b) == pytest.approx(50 / 150)
    assert a.overlap(b) == 0.5
    assert a.iou(a) == 1.0
    # Boxes that only touch share no area.
    assert a.intersection(Box(10, 0, 5, 5)) == 0 and a.iou(Box(10, 0, 5, 5)) == 0.0
    assert a.intersection(Box(0, 10, 5, 5)) == 0
    assert a.intersection(Box(9, 9, 5, 5)) == 1 and a.intersection(Box(-4, 9, 5, 5)) == 1
    # A small box inside a large one: overlap 1, IoU the ratio of the areas.
    inner = Box(2, 2, 4, 5)
    assert inner.overlap(a) == 1.0 and a.overlap(inner) == 1.0 and a.iou(inner) == pytest.approx(0.2)
    assert a.intersection(Box(3, -2, 2, 20)) == 20  # a tall thin box across a square one
    assert a.iou(Box(50, 50, 5, 5)) == 0.0 and a.overlap(Box(50, 50, 5, 5)) == 0.0
    assert Box(0, 0, 0, 0).iou(a) == 0.0


@given(boxes, boxes)
def test_iou_is_symmetric_bounded_and_one_only_for_the_same_box(a, b):
    iou = a.iou(b)
    assert iou == b.iou(a) and 0.0 <= iou <= 1.0
    assert (iou == 1.0) == (a == b)
    assert a.overlap(b) >= iou
    assert a.intersection(b) <= min(a.area, b.area)
    clipped = a.clipped(40, 30)
    if clipped is not None:
        assert clipped.area == a.intersection(Box(0, 0, 40, 30)) and clipped.overlap(a) == 1.0


def test_moving_or_scaling_a_box_keeps_its_detector_score():
    box = Box(10, 20, 30, 40, score=5.5)
    assert box.scaled(0.5).score == 5.5 and box.scaled(2, 3).score == 5.5 and box.shifted(1, 1).score == 5.5
    assert Box(10, 20, 30, 40, score=1.0) == box  # the score is no part of the box's identity


def test_empty_boxes_overlap_nothing():
    empty = Box(5, 5, 0, 0)
    assert empty.iou(empty) == 0.0 and empty.overlap(empty) == 0.0
    assert empty.overlap(Box(0, 0, 10, 10)) == 0.0
