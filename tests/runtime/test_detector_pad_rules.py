"""The rules of the Haar detector's padded pass, with the cascade's answers scripted: which passes run, which
padded finds are kept (at least half inside the frame), which plain finds they replace (the same face), and that
the padded pass keeps to the sizes asked for. tests/runtime/test_detector_pad.py runs the real cascade."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.detector import HaarDetector, HaarOptions, _same_face

WILD = Path(__file__).resolve().parents[1] / "data" / "wild"
PADDED = HaarDetector(HaarOptions(verify_model=""))

FRAME = np.full((100, 100), 128, np.uint8)  # pad 0.25: a 150x150 padded frame, the frame at (25, 25)


@pytest.fixture(scope="module")
def close_up():
    """A face that fills a 350x350 photo (tests/data/wild/README.md)."""
    return cv2.cvtColor(cv2.imread(str(WILD / "Jennifer_Capriati_0030.jpg")), cv2.COLOR_BGR2GRAY)


class Scripted(HaarDetector):
    """The cascade's answers given: `plain` on the frame itself, `padded` (in the padded frame's pixels) on the
    frame with its border; every pass is recorded."""

    def __init__(self, plain=(), padded=(), **options):
        super().__init__(HaarOptions(verify_model="", **options))
        self.answers = {"plain": list(plain), "padded": list(padded)}
        self.calls: list[tuple[str, int, int]] = []
        self.pictures: list[np.ndarray] = []

    def _run(self, gray, min_side, max_side=0):
        kind = "plain" if gray.shape == FRAME.shape else "padded"
        self.calls.append((kind, min_side, max_side))
        self.pictures.append(gray)
        return list(self.answers[kind])


def test_no_pad_or_no_frame_edge_is_one_plain_pass():
    for detector, edges in ((Scripted(pad=0.0), (True,) * 4), (Scripted(), (False,) * 4)):
        detector._find(FRAME, 24, 0, edges, 100)
        assert [c[0] for c in detector.calls] == ["plain"]


def test_pad_from_zero_is_one_padded_pass_and_otherwise_both_run():
    only = Scripted(pad_from=0.0)
    only._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [c[0] for c in only.calls] == ["padded"]
    both = Scripted(pad_from=0.5)
    both._find(FRAME, 24, 0, (True,) * 4, 100)
    assert both.calls == [("plain", 24, 0), ("padded", 50, 0)]
    # A padded pass whose least face is exactly the least size asked for does not repeat the plain pass.
    same = Scripted(pad_from=0.24)
    same._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [c[0] for c in same.calls] == ["padded"]


def test_the_padded_pass_runs_when_the_largest_size_asked_is_its_least():
    # pad_from 0.5 of a 100-pixel side: the padded pass looks for faces of 50 pixels and up.
    at = Scripted()
    at._find(FRAME, 24, 50, (True,) * 4, 100)
    assert at.calls == [("plain", 24, 50), ("padded", 50, 50)]
    below = Scripted()
    below._find(FRAME, 24, 49, (True,) * 4, 100)
    assert below.calls == [("plain", 24, 49)]


def test_the_padded_picture_is_the_frame_with_its_edges_replicated():
    frame = np.tile(np.arange(100, 200, dtype=np.uint8), (100, 1))  # a ramp: left column 100, right 199
    detector = Scripted()
    detector._find(frame, 24, 0, (True, False, True, True), 100)  # the top edge is not the frame's
    padded = detector.pictures[-1]
    assert np.array_equal(padded, cv2.copyMakeBorder(frame, 0, 25, 25, 25, cv2.BORDER_REPLICATE))
    assert padded.shape == (125, 150) and padded[:, 0].min() == 100 and padded[:, -1].max() == 199


def test_a_padded_find_is_kept_when_at_least_half_inside_the_frame():
    half = Box(0, 50, 50, 50)  # the frame's x from -25: 25 of its 50 columns inside
    less = Box(-5, 50, 50, 50)  # 20 of 50 inside
    for padded in ([half, less], [less, half]):  # a find dropped does not end the look at the others
        found = Scripted(padded=padded)._find(FRAME, 24, 0, (True,) * 4, 100)
        assert [b.as_list() for b in found] == [[0, 25, 25, 50]]


# A padded find (in the frame's pixels) that touches each edge of the 100x100 frame, and the same one a pixel past it.
AT_THE_EDGE = {"left": ((0, 20), (-1, 20)), "top": ((20, 0), (20, -1)), "right": ((40, 20), (41, 20)),
               "bottom": ((20, 40), (20, 41))}


@pytest.mark.parametrize("edge", AT_THE_EDGE)
def test_a_padded_find_replaces_the_plain_one_only_when_it_reaches_past_the_frame(edge):
    inner = Box(30, 30, 40, 40)  # the plain find of the same face
    (x, y), (px, py) = AT_THE_EDGE[edge]
    touching = Scripted(plain=[inner], padded=[Box(x + 25, y + 25, 60, 60)])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in touching] == [[30, 30, 40, 40]]
    past = Scripted(plain=[inner], padded=[Box(px + 25, py + 25, 60, 60)])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in past] == [Box(px, py, 60, 60).clipped(100, 100).as_list()]


def test_a_padded_find_within_the_frame_does_not_end_the_look_at_the_others():
    inner = Box(30, 30, 40, 40)
    within = Box(50, 50, 50, 50)  # (25, 25, 50, 50): the plain find's face, within the frame
    corner = Box(95, 15, 40, 40)  # (70, -10, 40, 40): another face, past the top-right corner
    found = Scripted(plain=[inner], padded=[within, corner])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in found] == [[30, 30, 40, 40], [70, 0, 30, 30]]


def test_a_padded_find_past_the_frame_replaces_the_plain_finds_of_its_face_only():
    face = Box(10, 10, 100, 100)  # in the frame: (-15, -15, 100, 100), past its top-left corner
    inner = Box(5, 5, 70, 70)  # the plain pass's cut-short box of the same face
    other = Box(88, 88, 10, 10)  # another, small face
    found = Scripted(plain=[inner, other], padded=[face])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in found] == [[88, 88, 10, 10], [0, 0, 85, 85]]


def test_a_padded_find_within_the_frame_leaves_the_plain_box():
    # The padded pass tries only large windows: within the frame its box of a face the plain pass found is no
    # better (a face near its least size comes out larger) and the plain box stays.
    face = Box(40, 40, 60, 60)  # in the frame: (15, 15, 60, 60), inside it
    inner = Box(18, 18, 52, 52)
    found = Scripted(plain=[inner], padded=[face])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in found] == [[18, 18, 52, 52]]
    edge = Box(25, 40, 75, 60)  # (0, 15, 75, 60): reaching the frame's edge but not past it
    found = Scripted(plain=[inner], padded=[edge])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in found] == [[18, 18, 52, 52]]
    # A face the plain pass did not find is the padded pass's, within the frame or not.
    found = Scripted(plain=[], padded=[face])._find(FRAME, 24, 0, (True,) * 4, 100)
    assert [b.as_list() for b in found] == [[15, 15, 60, 60]]


def test_same_face_at_the_bounds():
    a = Box(0, 0, 10, 10)
    assert _same_face(a, Box(4, 0, 16, 10))  # IoU exactly 0.3, overlap 0.6
    assert not _same_face(a, Box(5, 0, 16, 10))  # IoU 0.24, overlap 0.5
    big = Box(3, -5, 20, 20)
    assert _same_face(big, a)  # overlap exactly 0.7 (70 of the small box's 100), IoU 0.16
    assert not _same_face(Box(4, -5, 20, 20), a)  # overlap 0.6, IoU 0.13


@settings(max_examples=60, deadline=None)
@given(x=st.integers(-30, 30), y=st.integers(-30, 30), w=st.integers(1, 40), h=st.integers(1, 40))
def test_same_face_is_iou_or_overlap(x, y, w, h):
    a, b = Box(0, 0, 20, 20), Box(x, y, w, h)
    assert _same_face(a, b) == (a.iou(b) >= 0.3 or a.overlap(b) >= 0.7)


def test_the_padded_pass_is_the_cascade_on_a_replicated_border(close_up):
    # The close-up's face found on the frame bordered by replication, as the padded pass promises; a black
    # border (another border type) gives another box.
    h, w = close_up.shape
    top, left = round(0.25 * h), round(0.25 * w)
    plain = HaarDetector(HaarOptions(verify_model="", pad=0.0, detect_width=0))
    border = cv2.copyMakeBorder(close_up, top, top, left, left, cv2.BORDER_REPLICATE)
    expected = max(plain._run(border, round(0.5 * min(h, w))), key=lambda b: b.area)
    (found,) = HaarDetector(HaarOptions(verify_model="", detect_width=0)).detect(close_up)
    clipped = expected.shifted(-left, -top).clipped(w, h)
    assert found.as_list() == clipped.as_list()


def test_a_region_look_keeps_the_padded_pass_to_the_largest_size_asked(close_up):
    h, w = close_up.shape
    # The face that fills the picture is ~350 px: asked for 150-200 px faces, the padded pass (faces of at least
    # half the side, 175 px) must not answer with it.
    found = PADDED.detect_in(close_up, Box(0, 0, w, h), (150, 200))
    assert all(b.w <= 200 for b in found), [b.as_list() for b in found]
    assert PADDED.detect_in(close_up, Box(0, 0, w, h))  # and it is there when any size is asked for

