"""Deployment corruptions (robustness report and augmentation): each does what its name says, at the
strength it states, deterministically for a seed, without touching its input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train import corruptions as c
from train.augment import AUGMENTS, Augment


def _faces(n=12, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth random faces: a coarse random pattern upscaled, so blur and resolution changes are visible.
    import cv2

    coarse = rng.integers(40, 216, (n, 12, 12)).astype(np.uint8)
    return np.stack([cv2.resize(f, (48, 48), interpolation=cv2.INTER_CUBIC) for f in coarse])


@pytest.mark.parametrize("name", list(c.CONDITIONS))
def test_every_condition_is_a_new_deterministic_uint8_batch_that_changes_the_faces(name):
    faces = _faces()
    before = faces.copy()
    fn = c.CONDITIONS[name]
    a, b = fn(faces, np.random.default_rng(7)), fn(faces, np.random.default_rng(7))
    np.testing.assert_array_equal(faces, before)
    assert a.shape == faces.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(x, f) for x, f in zip(a, faces)]
    assert all(changed), f"{name} left {changed.count(False)} faces unchanged"


def test_a_detector_crop_of_exactly_the_face_is_the_face():
    faces = _faces()
    np.testing.assert_array_equal(c.haar_crop(faces, np.random.default_rng(0), scale=(1.0, 1.0), shift=0.0), faces)


def test_a_crop_twice_the_face_shows_it_at_half_size_in_the_middle_with_replicated_border():
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, :, :24] = 200  # left half bright
    out = c.haar_crop(face, np.random.default_rng(0), scale=(2.0, 2.0), shift=0.0)[0]
    # The face now spans columns 12..35; the replicated border continues its edge values outwards.
    assert out[:, :12].min() >= 190 and out[:, 37:].max() <= 10
    assert out[:, 13:23].min() >= 190 and out[:, 25:35].max() <= 10


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_a_detector_crop_keeps_the_face_within_its_stated_scale_and_shift(seed):
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, 20:28, 20:28] = 255  # an 8-pixel square at the centre
    out = c.haar_crop(face, np.random.default_rng(seed), scale=(0.85, 1.2), shift=0.1)[0]
    ys, xs = np.nonzero(out > 127)
    side = np.sqrt(len(ys))
    assert 8 / 1.2 - 1.5 <= side <= 8 / 0.85 + 1.5
    # A shift of up to 10 % of the side (4.8 px), seen through a crop up to 1/0.85 times larger.
    assert abs(xs.mean() - 23.5) <= 4.8 / 0.85 + 1.0 and abs(ys.mean() - 23.5) <= 4.8 / 0.85 + 1.0


def test_rotation_of_zero_degrees_is_the_identity_and_its_magnitude_is_bounded():
    faces = _faces()
    np.testing.assert_array_equal(c.rotate(faces, np.random.default_rng(0), degrees=(0.0, 0.0)), faces)
    bar = np.zeros((1, 48, 48), np.uint8)
    bar[0, 23:25, 4:44] = 255  # a horizontal bar through the centre
    for seed in range(10):
        out = c.rotate(bar, np.random.default_rng(seed), degrees=(5.0, 15.0))[0]
        ys, xs = np.nonzero(out > 127)
        slope = np.polyfit(xs, ys, 1)[0]
        assert 3.0 <= abs(np.degrees(np.arctan(slope))) <= 17.0


def test_blur_removes_detail_and_noise_adds_it_at_the_stated_strength():
    faces = _faces()
    blurred = c.blur(faces, np.random.default_rng(0))
    lap = lambda x: np.abs(np.diff(x.astype(float), axis=2)).mean()  # noqa: E731
    assert lap(blurred) < 0.8 * lap(faces)
    flat = np.full((4, 48, 48), 128, np.uint8)
    noisy = c.noise(flat, np.random.default_rng(0), sigma=(10.0, 10.0)).astype(float)
    assert 9.0 < noisy.std() < 11.0 and abs(noisy.mean() - 128) < 1.0


def test_jpeg_at_low_quality_loses_some_detail_but_keeps_the_picture():
    faces = _faces()
    out = c.jpeg(faces, np.random.default_rng(0)).astype(float)
    err = np.abs(out - faces).mean()
    assert 0.3 < err < 12.0


def test_dim_darkens_by_at_least_its_gain_and_keeps_black_black():
    faces = _faces()
    faces[:, 0, 0] = 0
    out = c.dim(faces, np.random.default_rng(0), gamma=(1.0, 1.0), gain=(0.5, 0.5))
    np.testing.assert_allclose(out.astype(float), np.rint(faces * 0.5), atol=1)
    darker = c.dim(faces, np.random.default_rng(0))
    assert (darker.reshape(len(faces), -1).mean(1) <= 0.75 * faces.reshape(len(faces), -1).mean(1) + 1).all()
    assert (darker[:, 0, 0] == 0).all()


def test_uneven_light_keeps_one_side_and_dims_the_other_to_the_floor():
    flat = np.full((20, 48, 48), 200, np.uint8)
    out = c.uneven_light(flat, np.random.default_rng(0), floor=(0.4, 0.4)).astype(float)
    assert (out.reshape(20, -1).max(1) == 200).all()
    assert np.allclose(out.reshape(20, -1).min(1), 80, atol=1)


def test_bright_multiplies_and_lifts_then_clips_highlights_to_white():
    faces = _faces()
    out = c.bright(faces, np.random.default_rng(0), gain=(1.5, 1.5), lift=(10.0, 10.0))
    np.testing.assert_allclose(out.astype(float), np.clip(np.rint(faces * 1.5 + 10), 0, 255), atol=1)
    default = c.bright(faces, np.random.default_rng(0)).astype(float)
    # Never darker, and at its weakest (gain 1.3, no lift) a 200-grey pixel is already clipped to white.
    assert (default >= faces).all()
    assert (default[faces >= 200] == 255).all()


def test_adding_bright_last_kept_the_other_conditions_seeds():
    # The report seeds each condition by its position: the conditions before it keep their faces.
    assert list(c.CONDITIONS)[-1] == "bright"
    assert c.bright in c.TRAINING_CORRUPTIONS


def test_low_resolution_removes_what_a_24_pixel_face_cannot_show():
    checker = (np.indices((48, 48)).sum(0) % 2 * 255).astype(np.uint8)[None]  # 1-pixel checkerboard
    out = c.low_resolution(checker, np.random.default_rng(0), width=(24, 24))[0]
    assert out.std() < 0.1 * checker.std()
    smooth = _faces(1)  # features about 4 px wide: a 24 px face keeps them, blurred (mean error ~6 grey levels)
    assert np.abs(c.low_resolution(smooth, np.random.default_rng(0), width=(24, 24)).astype(float) - smooth).mean() < 9


def test_corrupt_some_corrupts_the_stated_share_and_leaves_the_rest_exact():
    faces = _faces(400, seed=3)
    np.testing.assert_array_equal(c.corrupt_some(faces, np.random.default_rng(0), 0.0), faces)
    out = c.corrupt_some(faces, np.random.default_rng(0), 0.5)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(out, faces)])
    assert 0.42 < changed.mean() < 0.58


def test_the_robust_preset_corrupts_and_zero_strength_corruption_changes_nothing():
    faces = _faces(64)
    assert AUGMENTS["robust"].corrupt_prob > 0
    flip_only = Augment(True, 0, 0, 0, 0, 0, 0)
    a = flip_only(faces, np.random.default_rng(5))
    b = Augment(True, 0, 0, 0, 0, 0, 0, corrupt_prob=0.0)(faces, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    corrupted = Augment(False, 0, 0, 0, 0, 0, 0, corrupt_prob=1.0)(faces, np.random.default_rng(5))
    assert all(not np.array_equal(x, f) for x, f in zip(corrupted, faces))
