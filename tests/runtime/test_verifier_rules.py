"""The face verifier's rules at their edges, on a photo in tests/data (no FER2013 download): the threshold's bounds
and its inclusive cut, what `scores` gives for no box and for several, and a model without a face label refused in
one sentence that names the file and its labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.interpreter import ModelError
from edge_runtime.preprocess import preprocess_faces
from edge_runtime.verifier import SHIPPED_VERIFIER, FaceVerifier

PHOTO = Path(__file__).resolve().parents[1] / "data" / "wild_steve_o_0001.jpg"
FACE_BOX = [50, 75, 235, 205]  # drawn by hand, eyebrows to chin (tests/runtime/test_blazeface.py's HAND)


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return cv2.imread(str(PHOTO), cv2.IMREAD_GRAYSCALE)


@pytest.fixture(scope="module")
def verifier() -> FaceVerifier:
    return FaceVerifier()


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_the_threshold_may_be_0_or_1(threshold):
    assert FaceVerifier(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("threshold", [-1e-9, 1.0000001, 1.5])
def test_a_threshold_outside_0_to_1_is_refused_with_its_value(threshold):
    with pytest.raises(ValueError) as info:
        FaceVerifier(threshold=threshold)
    assert str(info.value) == f"verifier threshold must be between 0 and 1, got {threshold}"


def test_a_box_scoring_exactly_the_threshold_is_a_face_and_one_step_above_is_not(gray, verifier):
    p = float(verifier.scores(gray, [FACE_BOX])[0])
    assert 0.5 < p < 1.0  # a face, and not so sure that no threshold lies above it
    at = FaceVerifier(threshold=p).is_face(gray, FACE_BOX)
    assert at is True
    assert FaceVerifier(threshold=float(np.nextafter(np.float32(p), np.float32(2)))).is_face(gray, FACE_BOX) is False
    assert FaceVerifier(threshold=0.0).is_face(np.zeros_like(gray), FACE_BOX) is True


def test_scores_are_p_face_of_each_crop_as_the_model_reads_it(gray, verifier):
    blank = [0, 0, 40, 40]
    p = verifier.scores(gray, [FACE_BOX, blank, FACE_BOX])
    assert p.shape == (3,) and p.dtype == np.float32
    assert p[0] == p[2] and p[0] > 0.5 > p[1]
    # The face column of the model's probabilities, for crops made as the model's metadata says (32x32, no margin).
    pre = verifier.model.preprocessing
    assert (pre.size, pre.margin) == (32, 0.0) and verifier.face == verifier.model.labels.index("face") == 1
    crops = preprocess_faces(gray, [FACE_BOX, blank], size=32, margin=0.0)
    np.testing.assert_array_equal(p[:2], verifier.model.predict(crops)[:, 1])
    none = verifier.scores(gray, [])
    assert none.shape == (0,) and none.dtype == np.float32


def test_crops_are_cut_with_the_margin_the_models_metadata_gives(gray, verifier, tmp_path):
    # The shipped verifier was trained without a margin; one trained with a margin must be given crops with it.
    path = tmp_path / "wide.tflite"
    shutil.copyfile(SHIPPED_VERIFIER, path)
    meta = json.loads(SHIPPED_VERIFIER.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "preprocessing": {**meta["preprocessing"],
                                                                                "margin": 0.25}}))
    wide = FaceVerifier(path)
    part = [100, 120, 120, 100]  # eyes to mouth, inside the face: what a margin adds around it changes the answer
    expected = wide.model.predict(preprocess_faces(gray, [FACE_BOX, part], size=32, margin=0.25))[:, 1]
    np.testing.assert_array_equal(wide.scores(gray, [FACE_BOX, part]), expected)
    assert wide.scores(gray, [part])[0] != verifier.scores(gray, [part])[0]


def test_a_model_without_a_face_label_is_refused_naming_the_file_and_its_labels(tmp_path):
    path = tmp_path / "person.tflite"
    shutil.copyfile(SHIPPED_VERIFIER, path)
    meta = json.loads(SHIPPED_VERIFIER.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "labels": ["background", "person"]}))
    with pytest.raises(ModelError) as info:
        FaceVerifier(path)
    assert str(info.value) == (f"{path}: not a face verifier (its labels ['background', 'person'] have no 'face'; "
                               "the emotion model goes to --model, not here)")
    assert FaceVerifier(str(SHIPPED_VERIFIER)).path == SHIPPED_VERIFIER
