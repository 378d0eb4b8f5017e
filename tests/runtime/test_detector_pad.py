"""The padded pass of the Haar detector (HaarOptions.pad): a face that fills the picture is found, and every box
it gives lies inside the frame, from full-frame detection and from region looks alike."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.detector import DetectorError, HaarDetector, HaarOptions

WILD = Path(__file__).resolve().parents[1] / "data" / "wild"
PADDED = HaarDetector(HaarOptions(verify_model=""))
PLAIN = HaarDetector(HaarOptions(verify_model="", pad=0))


@pytest.fixture(scope="module")
def close_up():
    """A face that fills a 350x350 photo (tests/data/wild/README.md)."""
    return cv2.cvtColor(cv2.imread(str(WILD / "Jennifer_Capriati_0030.jpg")), cv2.COLOR_BGR2GRAY)


def inside(box: Box, shape) -> bool:
    return box.w > 0 and box.h > 0 and box.x >= 0 and box.y >= 0 and box.x + box.w <= shape[1] \
        and box.y + box.h <= shape[0]


def test_a_face_that_fills_the_picture_is_found_only_with_the_padded_pass(close_up):
    assert PLAIN.detect(close_up) == []
    boxes = PADDED.detect(close_up)
    assert len(boxes) == 1
    face = boxes[0]
    # The face, not a corner: most of the picture, around its centre, and inside it.
    assert inside(face, close_up.shape) and face.w >= 0.5 * close_up.shape[1]
    assert abs(face.center[0] - 175) < 60 and abs(face.center[1] - 175) < 60
    assert face.score > 0


def test_one_padded_pass_for_every_size_finds_it_too(close_up):
    boxes = HaarDetector(HaarOptions(verify_model="", pad_from=0)).detect(close_up)
    assert len(boxes) == 1 and boxes[0].iou(PADDED.detect(close_up)[0]) > 0.7


def test_the_padded_pass_looks_only_for_large_faces(close_up):
    # With pad_from at 1 only windows at least as large as the picture's side are tried (then clipped to it).
    for box in HaarDetector(HaarOptions(verify_model="", pad_from=1.0)).detect(close_up):
        assert box.w >= 0.95 * close_up.shape[1] and box.h >= 0.95 * close_up.shape[0]
    # A crop of a frame-filling face found by both passes is in the answer once.
    assert len(PADDED.detect(close_up)) == 1


def test_a_region_look_at_the_frame_edge_pads_and_one_inside_does_not(close_up):
    h, w = close_up.shape
    whole = PADDED.detect_in(close_up, Box(0, 0, w, h))
    assert len(whole) == 1 and whole[0].iou(PADDED.detect(close_up)[0]) > 0.5
    assert PLAIN.detect_in(close_up, Box(0, 0, w, h)) == []
    # The same picture inside a larger frame of the same border: no edge of the region is the frame's, and the
    # frame around it is the context the plain pass needs; the padded pass is not run there.
    framed = cv2.copyMakeBorder(close_up, 90, 90, 90, 90, cv2.BORDER_REPLICATE)
    found = PADDED.detect_in(framed, Box(60, 60, w + 60, h + 60))
    assert all(inside(b, framed.shape) for b in found)


def test_pad_bounds():
    for bad in (dict(pad=-0.1), dict(pad=1.5), dict(pad_from=-0.01), dict(pad_from=1.01)):
        with pytest.raises(DetectorError, match=next(iter(bad))):
            HaarOptions(**bad).check()
    for good in (dict(pad=0.0), dict(pad=1.0), dict(pad_from=0.0), dict(pad_from=1.0)):
        HaarOptions(**good).check()


@settings(max_examples=25, deadline=None)
@given(width=st.integers(40, 640), height=st.integers(40, 480), x=st.integers(-200, 200), y=st.integers(-200, 200),
       zoom=st.floats(0.3, 1.6), pad=st.sampled_from((0.1, 0.25, 0.5, 1.0)), pad_from=st.sampled_from((0.0, 0.3)))
def test_padded_boxes_lie_inside_the_frame(close_up, width, height, x, y, zoom, pad, pad_from):
    # The close-up, zoomed and moved so that the face is cut by any edge, in frames of any size.
    side = max(8, round(350 * zoom))
    face = cv2.resize(close_up, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width), 128, np.uint8)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + side), min(height, y + side)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = face[y0 - y : y1 - y, x0 - x : x1 - x]
    detector = HaarDetector(HaarOptions(verify_model="", pad=pad, pad_from=pad_from, min_size=24))
    for box in detector.detect(frame):
        assert inside(box, frame.shape), box
    for region in (Box(0, 0, width, height), Box(-10, height // 3, width // 2, height)):
        for box in detector.detect_in(frame, region):
            assert inside(box, frame.shape), box


def test_a_face_low_in_a_tall_frame_keeps_its_box():
    # Clipping to the frame is by its height and width each: a face below the frame's width stays whole.
    photo = cv2.cvtColor(cv2.imread(str(WILD / "Billy_Crystal_0004.jpg")), cv2.COLOR_BGR2GRAY)
    frame = np.full((800, 360), 128, np.uint8)
    frame[430:780, 5:355] = photo
    boxes = PADDED.detect(frame)
    assert boxes and all(inside(b, frame.shape) for b in boxes)
    low = max(boxes, key=lambda b: b.area)
    assert low.y + low.h > 600 and low.y >= 400


def test_a_face_both_passes_find_takes_the_padded_pass_box():
    # The plain pass finds this close-up too, but only with the windows the frame can hold: its box is cut short.
    # The padded pass's box (every window size grouped) replaces it: one face, the larger box, around the other.
    photo = cv2.cvtColor(cv2.imread(str(WILD / "Billy_Crystal_0004.jpg")), cv2.COLOR_BGR2GRAY)
    (plain,) = PLAIN.detect(photo)
    (padded,) = PADDED.detect(photo)
    assert padded.w >= 1.1 * plain.w and padded.overlap(plain) >= 0.95
    # Only the plain find of the same face is replaced: a second, smaller face in the frame keeps its plain box.
    frame = np.full((350, 800), 128, np.uint8)
    frame[:, :350] = photo
    frame[120:240, 560:680] = cv2.resize(photo, (120, 120), interpolation=cv2.INTER_AREA)
    boxes = sorted(PADDED.detect(frame), key=lambda b: b.x)
    plain_boxes = sorted(PLAIN.detect(frame), key=lambda b: b.x)
    assert len(boxes) == 2 and len(plain_boxes) == 2
    assert boxes[1].as_list() == plain_boxes[1].as_list() and boxes[1].x > 500
    assert boxes[0].w > plain_boxes[0].w and boxes[0].overlap(plain_boxes[0]) >= 0.95


def test_region_looks_keep_to_the_sizes_asked_for_with_and_without_the_padded_pass():
    photo = cv2.cvtColor(cv2.imread(str(WILD / "Billy_Crystal_0004.jpg")), cv2.COLOR_BGR2GRAY)
    whole = Box(0, 0, photo.shape[1], photo.shape[0])
    for detector in (PLAIN, PADDED):
        face = max(detector.detect_in(photo, whole), key=lambda b: b.area)
        assert face.w > 150
        assert detector.detect_in(photo, whole, (24, 100)) == []
        assert detector.detect_in(photo, whole, (face.w - 40, face.w + 40))
    # The same inside a larger frame, where the region meets no edge of it: the plain pass alone, sizes kept.
    framed = cv2.copyMakeBorder(photo, 50, 50, 50, 50, cv2.BORDER_REPLICATE)
    assert PADDED.detect_in(framed, Box(20, 20, 410, 410), (24, 100)) == []
