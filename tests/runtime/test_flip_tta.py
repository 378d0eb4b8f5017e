"""Test-time flip averaging: the Classifier's `tta`, the face path's `--tta` setting, and the workstation's
evaluate all average a face with its mirror image through one function (edge_runtime.classifier.flip_average)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge_runtime.classifier import Classifier, flip_average
from edge_runtime.face_path import DetectionSettings, build_pipeline
from tests.conftest import SHIPPED_INT8

PLAIN = Classifier(SHIPPED_INT8)
FLIP = Classifier(SHIPPED_INT8, tta="flip")
faces = arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(48), st.just(48)))


@settings(max_examples=25, deadline=None)
@given(faces)
def test_flip_is_the_mean_of_a_face_and_its_mirror(batch):
    expected = (PLAIN.predict(batch) + PLAIN.predict(batch[:, :, ::-1].copy())) / 2
    np.testing.assert_array_equal(FLIP.predict(batch), expected.astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(faces)
def test_a_face_and_its_mirror_get_the_same_label_with_flip(batch):
    np.testing.assert_allclose(FLIP.predict(batch), FLIP.predict(batch[:, :, ::-1].copy()), atol=1e-7)


def test_the_default_classifier_runs_one_inference_and_tells_a_face_from_its_mirror(val_sample):
    images = val_sample.images[:40]
    plain, mirrored = PLAIN.predict(images), PLAIN.predict(images[:, :, ::-1].copy())
    # The shipped model is not mirror-symmetric: without tta the two differ, so the flip tests above mean something.
    assert np.abs(plain - mirrored).max() > 0.05
    assert PLAIN.tta == "none"


def test_flip_keeps_a_single_face_and_its_dtype():
    face = np.full((48, 48), 128, np.uint8)
    face[:, :24] = 20
    out = FLIP.predict(face)
    assert out.shape == (1, 7) and out.dtype == np.float32
    assert out.sum() == pytest.approx(1.0, abs=0.02)


def test_flip_average_rejects_an_unknown_augmentation_by_name():
    with pytest.raises(ValueError, match="'rotate'.*none, flip"):
        flip_average(PLAIN.predict, np.zeros((1, 48, 48), np.uint8), "rotate")
    with pytest.raises(ValueError, match="'mirror'.*none, flip"):
        Classifier(SHIPPED_INT8, tta="mirror")


def test_the_face_path_flips_by_default_and_not_with_tta_none():
    assert build_pipeline(DetectionSettings()).classifier.tta == "flip"
    assert build_pipeline(DetectionSettings(tta="none")).classifier.tta == "none"
    with pytest.raises(ValueError, match="tta"):
        DetectionSettings(tta="mirror")


def test_evaluate_flips_as_the_device_does(val_sample):
    from train.predict import predict_probs

    images = val_sample.images[:20]
    np.testing.assert_array_equal(predict_probs(PLAIN, images, "flip"), FLIP.predict(images))
    np.testing.assert_array_equal(predict_probs(PLAIN, images, None), PLAIN.predict(images))
    with pytest.raises(ValueError, match="'crop'"):
        predict_probs(PLAIN, images, "crop")
