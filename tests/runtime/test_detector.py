"""Haar face detector: downscaled detection mapped back, options, cascade files, bad input."""

import cv2
import numpy as np
import pytest

from bench.scenes import SceneOptions, render
from edge_runtime.boxes import Box
from edge_runtime.detector import DEFAULT_CASCADE, DetectorError, HaarDetector, HaarOptions, cascade_path


@pytest.fixture(scope="module")
def scene(frontal_faces):
    frame, placements = next(render(frontal_faces[:3], SceneOptions(frames=1, sizes=(110, 150), seed=8)))
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), [p.box for p in placements]


def found(boxes, truth, iou=0.5):
    return sum(any(t.iou(b) >= iou for b in boxes) for t in truth)


def test_downscaled_detection_finds_the_faces_in_input_pixels(scene):
    gray, truth = scene
    full = HaarDetector(HaarOptions(detect_width=0)).detect(gray)
    small = HaarDetector(HaarOptions(detect_width=320)).detect(gray)
    assert found(full, truth) == found(small, truth) == 3
    assert len(small) == 3
    # Boxes from the half-size frame land where the full-size ones do, within a few pixels.
    for box in small:
        twin = max(full, key=box.iou)
        assert abs(box.x - twin.x) <= 6 and abs(box.w - twin.w) <= 12


def test_min_size_drops_small_faces(scene):
    gray, truth = scene
    smallest = min(t.w for t in truth)
    boxes = HaarDetector(HaarOptions(min_size=int(smallest * 1.3))).detect(gray)
    assert found(boxes, truth) < 3


def test_detection_in_a_region_finds_the_faces_there_at_the_sizes_asked_for(scene):
    gray, truth = scene
    detector = HaarDetector()
    whole = detector.detect(gray)
    target = truth[1]
    region = target.grown(0.3)
    near = detector.detect_in(gray, region)
    assert found(near, [target]) == 1 and found(near, [truth[0], truth[2]]) == 0
    # In frame coordinates, where the full-frame pass put it; with a score, as every Haar box has.
    twin = max(whole, key=target.iou)
    assert max(near, key=target.iou).iou(twin) > 0.8 and all(b.score > 0 for b in near + whole)
    # Only the sizes asked for are tried: none of them the face's.
    assert found(detector.detect_in(gray, region, (target.w * 2, target.w * 3)), [target]) == 0
    assert detector.detect_in(gray, Box(-100, -100, 50, 50)) == []


def test_a_second_cascade_confirms_the_faces_and_not_what_is_no_face(scene):
    gray, truth = scene
    # The cascade alone (no face verifier), so the refusal below is the second cascade's.
    detector = HaarDetector(HaarOptions(verify_cascade="haarcascade_frontalface_alt2.xml", verify_model=""))
    boxes = [max(detector.detect(gray), key=t.iou) for t in truth]
    assert all(detector.verify(gray, b) for b in boxes)
    # The same place with the face's pixels shuffled (same brightness and contrast, no face).
    shuffled = gray.copy()
    b = boxes[0]
    patch = shuffled[b.y : b.y + b.h, b.x : b.x + b.w]
    patch[:] = np.random.default_rng(0).permutation(patch.ravel()).reshape(patch.shape)
    assert not detector.verify(shuffled, b)
    assert HaarDetector(HaarOptions(verify_cascade="", verify_model="")).verify(shuffled, b)
    with pytest.raises(DetectorError, match="nope.xml"):
        HaarDetector(HaarOptions(verify_cascade="nope.xml"))


def test_cascade_by_path_and_by_bundled_name(scene, tmp_path):
    gray, truth = scene
    copy = tmp_path / "my_cascade.xml"
    copy.write_bytes(cascade_path(None).read_bytes())
    assert cascade_path(None).name == DEFAULT_CASCADE
    assert found(HaarDetector(HaarOptions(cascade=str(copy))).detect(gray), truth) == 3
    alt = HaarDetector(HaarOptions(cascade="haarcascade_frontalface_alt2.xml"))
    assert alt.path.parent == cascade_path(None).parent


def test_missing_or_broken_cascade_is_refused(tmp_path):
    with pytest.raises(DetectorError, match=r"nowhere\.xml: Haar cascade file not found"):
        HaarDetector(HaarOptions(cascade=str(tmp_path / "nowhere.xml")))
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage><cascade>nonsense</cascade></opencv_storage>")
    with pytest.raises(DetectorError, match=r"broken\.xml: not an OpenCV cascade"):
        HaarDetector(HaarOptions(cascade=str(broken)))


@pytest.mark.parametrize("options, message", [
    (HaarOptions(scale_factor=1.0), "scale_factor must be > 1"),
    (HaarOptions(min_neighbors=-1), "min_neighbors must be >= 0"),
    (HaarOptions(min_size=0), "min_size must be >= 1"),
    (HaarOptions(detect_width=-5), "detect_width must be >= 0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(DetectorError, match=message):
        HaarDetector(options)


def test_detector_wants_grayscale():
    with pytest.raises(ValueError, match="2-D uint8 grayscale"):
        HaarDetector().detect(np.zeros((48, 48, 3), np.uint8))


def test_blank_frame_has_no_faces():
    assert HaarDetector().detect(np.full((480, 640), 127, np.uint8)) == []
