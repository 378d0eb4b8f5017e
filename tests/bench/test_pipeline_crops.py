"""bench/pipeline_crops.py: faces drawn into frames, found by the runtime's detector and cropped from its box."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pipeline_crops import MIN_IOU, pipeline_crops, placed
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


class _Shifted:
    """A detector that finds one face box where the face was drawn, moved by `shift` pixels in x and y."""

    def __init__(self, shift: int):
        self.shift, self.drawn = shift, None

    def detect(self, gray):
        from bench.pipeline_crops import Box

        d = self.drawn
        return [Box(d.x + self.shift, d.y + self.shift, d.w, d.h)]

    def verify(self, gray, box):
        return True


def test_a_box_must_overlap_where_the_face_was_drawn(sample, monkeypatch):
    from bench import pipeline_crops as pc

    faces, labels = sample
    real_placed = pc.placed
    for shift, kept in ((20, 1), (60, 0)):  # for a 110-170 px face: IoU 0.50-0.64, and 0.12-0.27 (under MIN_IOU)
        detector = _Shifted(shift)

        def spy(face, rng, detector=detector):
            frame, drawn = real_placed(face, rng)
            detector.drawn = drawn
            return frame, drawn

        monkeypatch.setattr(pc, "placed", spy)
        assert len(pipeline_crops(faces[:1], labels[:1], detector=detector)[2]) == kept
    assert MIN_IOU == 0.3


def test_the_frame_holds_the_face_where_it_says(sample):
    faces, _ = sample
    frame, box = placed(faces[0], np.random.default_rng(0))
    x, y, w, h = box.as_list()
    assert frame.ndim == 3 and frame.shape[2] == 3 and 110 <= w == h <= 170
    assert x >= 0 and x + w <= frame.shape[1] and y >= 0 and y + h <= frame.shape[0]
