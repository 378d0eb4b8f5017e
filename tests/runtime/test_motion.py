"""The change detector: a cut, not a lamp; motion outside the tracked faces, not inside them."""

import cv2
import numpy as np
import pytest

from bench.scenes import background
from edge_runtime.boxes import Box
from edge_runtime.motion import Change, ChangeDetector


def scene(seed: int) -> np.ndarray:
    return cv2.cvtColor(background(640, 480, np.random.default_rng(seed)), cv2.COLOR_BGR2GRAY)


def noisy(gray: np.ndarray, seed: int, gain: float = 1.0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 3.0, gray.shape)
    return np.clip(gray * gain + noise, 0, 255).astype(np.uint8)


def test_a_cut_is_a_cut_and_a_change_of_light_is_not():
    change = ChangeDetector()
    a, b = scene(1), scene(2)
    assert change.update(noisy(a, 0)).cut  # the first frame: nothing to compare with
    assert change.update(noisy(a, 1)) == Change(False, None)
    assert not change.update(noisy(a, 2, gain=0.6)).cut
    assert not change.update(noisy(a, 3, gain=1.3)).cut
    assert change.update(noisy(b, 4)).cut
    assert not change.update(noisy(b, 5)).cut


def test_motion_is_found_outside_tracked_boxes_only():
    change = ChangeDetector()
    still = scene(3)
    change.update(noisy(still, 0))
    assert change.update(noisy(still, 1)).moving is None
    moved = still.copy()
    moved[300:400, 500:600] = 255 - moved[300:400, 500:600]
    found = change.update(noisy(moved, 2)).moving
    assert found is not None and found.overlap(Box(500, 300, 100, 100)) > 0.8
    assert found.iou(Box(500, 300, 100, 100)) > 0.5
    # The same change inside a tracked face is that face moving: no motion to look at.
    change.update(noisy(still, 3))
    assert change.update(noisy(moved, 4), [Box(490, 290, 120, 120)]).moving is None


def test_motion_off_and_bad_settings():
    change = ChangeDetector(motion=0.0)
    still = scene(4)
    moved = still.copy()
    moved[300:400, 500:600] = 255 - moved[300:400, 500:600]
    change.update(still)
    assert change.update(moved) == Change(False, None)
    assert change.update(255 - still).cut
    with pytest.raises(ValueError, match="cut_below"):
        ChangeDetector(cut_below=1.5)


@pytest.mark.parametrize("cut_below, motion", [(-1.01, 0.25), (1.01, 0.25), (0.6, -0.01)])
def test_settings_just_past_their_bounds_are_refused(cut_below, motion):
    with pytest.raises(ValueError, match="bad change settings"):
        ChangeDetector(cut_below=cut_below, motion=motion)
    ChangeDetector(cut_below=max(-1.0, min(1.0, cut_below)), motion=max(0.0, motion))  # the bound itself is fine


def test_only_a_fifth_of_a_face_around_it_is_left_out_of_motion():
    """Motion one face-width beside a tracked face is something else (a second person): it is looked at."""
    change = ChangeDetector()
    still = scene(5)
    face = Box(200, 180, 100, 100)
    beside = still.copy()
    beside[180:280, 330:430] = 255 - beside[180:280, 330:430]  # 30 px right of the face: outside its 20 % margin
    change.update(noisy(still, 0), [face])
    found = change.update(noisy(beside, 1), [face]).moving
    assert found is not None and found.overlap(Box(330, 180, 100, 100)) > 0.6


def test_a_tracked_face_that_turns_bright_is_no_cut_and_no_motion():
    """Both thumbnails are normalised over the same cells, the picture outside the tracked faces: a face that
    flares (a lamp on it, a white shirt lifted into it) changes neither statistic."""
    change = ChangeDetector()
    still = scene(6)
    face = Box(240, 160, 200, 200)
    dark, bright = still.copy(), still.copy()
    dark[160:360, 240:440] = 0
    bright[160:360, 240:440] = 255
    change.update(noisy(dark, 0), [face])
    assert change.update(noisy(bright, 1), [face]) == Change(False, None)


def test_when_tracked_faces_fill_the_picture_nothing_is_judged():
    """A close-up: under a tenth of the picture is background, too little to call a cut or motion, whatever it does."""
    change = ChangeDetector()
    a, b = scene(7), scene(8)
    faces = [Box(0, 0, 640, 230), Box(0, 230, 640, 250)]
    change.update(noisy(a, 0), faces)
    assert change.update(noisy(b, 1), faces) == Change(False, None)  # a different picture, but only behind faces
    change.update(noisy(a, 2))
    assert change.update(noisy(b, 3)).cut is True  # without the faces, the same change is a cut
