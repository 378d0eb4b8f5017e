"""bench/pipeline_crops.py: faces drawn into frames, found by the runtime's detector and cropped from its box."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pipeline_crops import MIN_IOU, _iou, pipeline_crops, placed
from edge_runtime.detector import HaarDetector, HaarOptions


@pytest.fixture(scope="module")
def sample(val_sample):
    return val_sample.images[:60], val_sample.labels[:60]


def test_most_real_faces_are_found_and_the_crop_is_the_face_not_the_backdrop(sample):
    faces, labels = sample
    crops, kept_labels, index = pipeline_crops(faces, labels, seed=3)
    # The full val set: 2,451 of 3,589 found (68 %); the sample is small, so a wide floor.
    assert 0.45 * len(faces) <= len(index) <= len(faces)
    assert crops.shape == (len(index), 48, 48) and crops.dtype == np.uint8
    np.testing.assert_array_equal(kept_labels, labels[index])
    assert (np.diff(index) > 0).all()
    # The crop shows the face it came from: it correlates with that face far better than with the others.
    def corr(a, b):
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])
    own = [corr(c, faces[i]) for c, i in zip(crops, index)]
    others = [corr(c, faces[(i + 7) % len(faces)]) for c, i in zip(crops, index)]
    assert np.median(own) > 0.6 and np.median(own) > np.median(others) + 0.3


def test_the_same_seed_gives_the_same_crops_and_another_seed_other_frames(sample):
    faces, labels = sample
    a = pipeline_crops(faces[:10], labels[:10], seed=1)
    b = pipeline_crops(faces[:10], labels[:10], seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    f1, _ = placed(faces[0], np.random.default_rng(1))
    f2, _ = placed(faces[0], np.random.default_rng(2))
    assert f1.shape != f2.shape or not np.array_equal(f1, f2)


def test_a_face_the_detector_does_not_find_is_left_out_not_guessed():
    flat = np.full((3, 48, 48), 128, np.uint8)  # no face in it: nothing to find
    crops, labels, index = pipeline_crops(flat, np.array([0, 3, 6]), seed=0,
                                          detector=HaarDetector(HaarOptions(detect_width=0)))
    assert len(crops) == len(labels) == len(index) == 0 and crops.shape[1:] == (48, 48)


def test_a_box_must_overlap_where_the_face_was_drawn():
    drawn = (100, 100, 120, 120)
    assert _iou(drawn, drawn) == 1.0
    # Shifted by a third of its side in x and y: IoU (80*80)/(2*120*120-80*80) = 0.286, just under the bar.
    assert _iou((140, 140, 120, 120), drawn) < MIN_IOU < _iou((130, 130, 120, 120), drawn)


def test_the_frame_holds_the_face_where_it_says(sample):
    faces, _ = sample
    frame, (x, y, w, h) = placed(faces[0], np.random.default_rng(0))
    assert frame.ndim == 3 and frame.shape[2] == 3 and 110 <= w == h <= 170
    assert x >= 0 and x + w <= frame.shape[1] and y >= 0 and y + h <= frame.shape[0]
