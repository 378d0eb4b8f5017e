"""haar+blazeface: every face of the first detector, and the second's where the first found none."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.detector import EitherDetector, FaceDetector
from edge_runtime.face_path import DetectionSettings, build_pipeline

boxes = st.lists(st.builds(Box, st.integers(0, 300), st.integers(0, 200), st.integers(20, 120), st.integers(20, 120)),
                 max_size=5)


class Fixed(FaceDetector):
    """A detector that finds the given boxes in any picture (and says no to vetting when told to)."""

    def __init__(self, found, vets=True):
        self.found, self.vets = found, vets

    def detect(self, gray):
        return list(self.found)

    def verify(self, gray, box):
        return self.vets


@given(first=boxes, second=boxes)
def test_the_union_keeps_the_first_and_adds_only_what_it_missed(first, second):
    gray = np.zeros((320, 420), np.uint8)
    found = EitherDetector(Fixed(first), Fixed(second)).detect(gray)
    assert found[: len(first)] == first
    for b in second:
        overlapped = any(b.iou(a) >= 0.3 or (b.overlap(a) >= 0.5 and 2 * max(a.w, a.h) >= max(b.w, b.h))
                         for a in first)
        assert (b in found[len(first):]) == (not overlapped) or b in first


def test_a_small_find_of_the_first_inside_a_large_face_of_the_second_does_not_hide_it():
    gray = np.zeros((400, 400), np.uint8)
    face = Box(50, 50, 300, 300)  # BlazeFace's face filling a close-up
    for small, hides in ((Box(150, 150, 149, 149), False), (Box(150, 150, 150, 150), True)):
        found = EitherDetector(Fixed([small]), Fixed([face])).detect(gray)
        assert found == ([small] if hides else [small, face])  # just under half its side: both kept


@given(first=boxes, second=boxes, share=st.floats(0.05, 1.0))
def test_a_near_face_of_the_second_takes_the_place_of_the_first_ones(first, second, share):
    gray = np.zeros((320, 420), np.uint8)
    least = share * 320
    found = EitherDetector(Fixed(first), Fixed(second), second_from=share).detect(gray)
    plain = EitherDetector(Fixed(first), Fixed(second)).detect(gray)
    # Every face is there either way: only which box stands for it changes (one near box of the second may stand
    # for two boxes of the first on one face), and nothing comes from elsewhere.
    assert len(found) <= len(plain) and all(b in first or b in second for b in found)
    for a in first:
        if a not in found:  # replaced by a near box of the second that is the same face
            assert any(b in found and max(b.w, b.h) >= least and
                       (a.iou(b) >= 0.3 or a.overlap(b) >= 0.5 and 2 * max(a.w, a.h) >= max(b.w, b.h))
                       for b in second)
    if not any(max(b.w, b.h) >= least for b in second):
        assert found == plain


def test_a_face_both_find_keeps_the_second_box_from_second_from_of_the_shorter_side():
    gray = np.zeros((400, 600), np.uint8)  # shorter side 400: second_from 0.5 -> 200 px
    haar = Box(105, 95, 190, 190)
    for side, kept in ((199, haar), (200, None)):
        blaze = Box(100, 100, side, side)
        near = blaze if kept is None else kept
        other = Box(450, 20, 40, 40)  # a second face of the first, farther: stays, in its place
        found = EitherDetector(Fixed([other, haar]), Fixed([blaze]), second_from=0.5).detect(gray)
        assert found == [other, near]
    # Off (None, the default), the first's box stands.
    assert EitherDetector(Fixed([haar]), Fixed([Box(100, 100, 300, 300)])).detect(gray) == [haar]


def test_two_near_boxes_of_the_second_on_one_face_of_the_first_are_one_face():
    gray = np.zeros((200, 100), np.uint8)
    haar = Box(0, 111, 20, 20)
    upper, lower = Box(0, 101, 20, 20), Box(0, 119, 20, 20)  # each the cascade's face (IoU >= 0.3), not each other
    assert upper.iou(haar) >= 0.3 and lower.iou(haar) >= 0.3 and upper.iou(lower) < 0.3
    found = EitherDetector(Fixed([haar]), Fixed([upper, lower]), second_from=0.1).detect(gray)
    assert found == [upper]  # the first near box stands for the face; the second is that face again, not a new one
    # A box of the second on another face of the first still takes that one's place.
    other, near_other = Box(60, 10, 30, 30), Box(62, 12, 30, 30)
    found = EitherDetector(Fixed([haar, other]), Fixed([upper, lower, near_other]), second_from=0.1).detect(gray)
    assert found == [upper, near_other]


def test_the_default_detector_keeps_blazefaces_box_of_a_near_face():
    import cv2

    assert build_pipeline(DetectionSettings()).detector.second_from == DetectionSettings().pad_from == 0.5
    detector = build_pipeline(DetectionSettings(pad_from=0.3)).detector
    assert detector.second_from == 0.3
    gray = cv2.imread("tests/data/wild/Billy_Crystal_0004.jpg", cv2.IMREAD_GRAYSCALE)
    (haar,), (blaze,) = detector.first.detect(gray), detector.second.detect(gray)
    assert haar != blaze and haar.iou(blaze) >= 0.3 and max(blaze.w, blaze.h) >= 0.3 * min(gray.shape)
    assert detector.detect(gray) == [blaze]


def test_a_box_just_under_the_overlap_bar_is_added():
    a = Box(0, 0, 100, 100)
    under = Box(54, 0, 100, 100)  # IoU 4600 / 15400 = 0.299: a face the first did not find
    over = Box(53, 0, 100, 100)  # IoU 4700 / 15300 = 0.307: the first's face again
    inside = Box(10, 10, 40, 40)  # IoU 0.16, but wholly inside: overlap 1
    found = EitherDetector(Fixed([a]), Fixed([under, over, inside])).detect(np.zeros((200, 300), np.uint8))
    assert found == [a, under]


def test_a_box_at_exactly_either_bar_is_the_first_detectors_face():
    a = Box(0, 0, 13, 10)
    at = Box(7, 0, 13, 10)  # IoU 60 / 200 = 0.3 exactly; 60 of its 130 pixels (under half) on the first's box
    assert EitherDetector(Fixed([a]), Fixed([at])).detect(np.zeros((100, 100), np.uint8)) == [a]
    big = Box(0, 0, 100, 100)
    half = Box(90, 0, 20, 10)  # exactly half of it on the first's box (100 of 200 pixels), IoU 0.01
    assert EitherDetector(Fixed([big]), Fixed([half])).detect(np.zeros((200, 200), np.uint8)) == [big]


def test_new_faces_are_vetted_by_the_first_detectors_verifier():
    gray = np.zeros((100, 100), np.uint8)
    assert EitherDetector(Fixed([], vets=False), Fixed([], vets=True)).verify(gray, Box(0, 0, 10, 10)) is False


def test_haar_plus_blazeface_finds_the_close_up_and_keeps_the_verifier():
    import cv2

    pipeline = build_pipeline(DetectionSettings(detector="haar+blazeface", pad=0))  # the cascade alone misses it
    gray = cv2.imread("tests/data/wild_surprise_2868585k.jpg", cv2.IMREAD_GRAYSCALE)
    assert pipeline.detector.first.detect(gray) == []
    (face,) = pipeline.detector.detect(gray)
    assert face.w >= 250 and pipeline.detector.first.verifier is not None


class Counting(Fixed):
    """Fixed, counting its region looks."""

    looks = 0

    def detect_in(self, gray, region, sizes=None, fine=False):
        self.looks += 1
        return super().detect_in(gray, region, sizes, fine)


def test_region_looks_ask_the_second_detector_only_when_told_to():
    gray = np.zeros((320, 420), np.uint8)
    region = Box(0, 0, 420, 320)
    first, second = Counting([Box(10, 10, 40, 40)]), Counting([Box(200, 100, 60, 60)])
    assert EitherDetector(first, second).detect_in(gray, region) == [Box(10, 10, 40, 40), Box(200, 100, 60, 60)]
    assert second.looks == 1
    whole_frames = EitherDetector(first, second, regions=False)
    assert whole_frames.detect_in(gray, region, fine=True) == [Box(10, 10, 40, 40)] and second.looks == 1
    # Whole frames still ask both.
    assert whole_frames.detect(gray) == [Box(10, 10, 40, 40), Box(200, 100, 60, 60)]


def test_the_default_detector_leaves_region_looks_to_the_cascade():
    detector = build_pipeline(DetectionSettings()).detector
    assert isinstance(detector, EitherDetector) and detector.regions is False
