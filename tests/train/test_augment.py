"""Training augmentation: shapes and dtype kept, input untouched, strengths do what they say."""

from __future__ import annotations

import numpy as np

from train.augment import AUGMENTS, Augment


def _faces(n=32, seed=0):
    rng = np.random.default_rng(seed)
    faces = np.full((n, 48, 48), 100, np.uint8)
    faces[:, 10:20, 5:15] = rng.integers(180, 255, (n, 1, 1))  # an off-centre bright patch
    return faces


def test_output_is_a_new_uint8_batch_and_the_input_is_untouched():
    faces = _faces()
    before = faces.copy()
    out = Augment()(faces, np.random.default_rng(1))
    assert out.shape == faces.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(faces, before)
    assert not np.array_equal(out, faces)


def test_none_is_the_identity():
    faces = _faces()
    np.testing.assert_array_equal(AUGMENTS["none"](faces, np.random.default_rng(1)), faces)


def test_light_moves_pixels_but_never_changes_brightness():
    flat = np.full((16, 48, 48), 90, np.uint8)
    rng = np.random.default_rng(2)
    # Geometry on a flat face (reflected borders) leaves it flat; brightness/contrast/erasing would not.
    np.testing.assert_array_equal(AUGMENTS["light"](flat, rng), flat)
    assert not np.array_equal(AUGMENTS["default"](flat, rng), flat)
    moved = AUGMENTS["light"](_faces(), rng)
    assert not np.array_equal(moved, _faces())


def test_flip_mirrors_the_face():
    faces = _faces(4)
    flip_only = Augment(flip=True, rotation_deg=0, shift=0, zoom=0, brightness=0, contrast=0, erase_prob=0)
    out = flip_only(faces, np.random.default_rng(3))
    for face, aug in zip(faces, out, strict=True):
        assert np.array_equal(aug, face) or np.array_equal(aug, face[:, ::-1])
    assert any(np.array_equal(aug, face[:, ::-1]) for face, aug in zip(faces, out, strict=True))
