"""The face verifier's training data, model and figures (its train -> int8 -> runtime path: tests/convert)."""

from __future__ import annotations

import numpy as np

from edge_runtime.detector import HaarDetector, HaarOptions
from train.verifier import build_model, multiply_adds, rates
from train.verifier_data import backdrop, cascade_windows, make_verifier_data


def test_the_data_holds_faces_and_about_as_many_non_faces(val_sample):
    faces = val_sample.images[:120]
    data = make_verifier_data(faces, size=32, seed=1)
    assert data.crops.shape[1:] == (32, 32) and data.crops.dtype == np.uint8
    assert int(data.labels.sum()) == len(faces)
    assert abs(int((data.labels == 0).sum()) - len(faces)) <= 24
    # Shuffled: neither class sits in one block.
    assert 0.2 < data.labels[: len(data) // 2].mean() < 0.8
    # The same seed gives the same data; another seed other data.
    again = make_verifier_data(faces, size=32, seed=1)
    assert np.array_equal(again.crops, data.crops) and np.array_equal(again.labels, data.labels)
    assert not np.array_equal(make_verifier_data(faces, size=32, seed=2).crops, data.crops)


def test_the_hard_negatives_are_windows_the_cascade_accepts():
    rng = np.random.default_rng(0)
    raw = HaarDetector(HaarOptions(min_neighbors=0, detect_width=0, min_size=24, verify_model=""))
    found = [cascade_windows(backdrop(rng), raw, 12, rng) for _ in range(6)]
    assert sum(len(f) for f in found) >= 12
    assert all(len(f) <= 12 for f in found)


def test_backdrops_vary_and_use_the_whole_range():
    rng = np.random.default_rng(3)
    images = [backdrop(rng, (120, 160)) for _ in range(8)]
    assert all(im.shape == (120, 160) and im.dtype == np.uint8 for im in images)
    assert len({round(float(im.std()), 1) for im in images}) == 8


def test_rates_at_the_threshold():
    r = rates(np.array([0.2, 0.19, 0.9, 0.2]), np.array([1, 1, 0, 0]), 0.2)
    assert r["faces_kept"] == 0.5 and r["non_faces_passed"] == 1.0 and r["faces"] == 2


def test_the_model_is_small():
    model = build_model(32)
    assert model.input_shape == (None, 32, 32, 1) and model.output_shape == (None, 2)
    assert 300_000 < multiply_adds(model) < 2_000_000
