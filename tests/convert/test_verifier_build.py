"""The face verifier's train -> int8 -> runtime path: train.verifier trains, convert builds the int8 file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convert.verifier import build_verifier
from edge_runtime.verifier import FaceVerifier
from train.verifier import VerifierConfig


@pytest.mark.slow
def test_train_convert_and_load_in_the_runtime(val_sample, tmp_path):
    figures = build_verifier(val_sample.images[:300], val_sample.images[300:], tmp_path,
                             VerifierConfig(epochs=20, batch_size=32), verbose=0)
    meta = json.loads((tmp_path / "face_verifier_int8.json").read_text())
    assert meta["labels"] == ["not_face", "face"] and meta["precision"] == "int8"
    assert meta["preprocessing"]["size"] == 32 and meta["threshold"] == 0.2
    assert meta["evaluation"] == figures and figures["fer_val_faces"]["faces"] == 50
    assert meta["training"]["multiply_adds"] > 0
    # The card convert's one builder writes: the generated calibration set, the float model it came from.
    calibration = meta["calibration"]
    assert calibration["path"] == str(tmp_path / "calibration (generated crops)") and 0 < calibration["faces"] <= 600
    assert calibration["manifest_sha256"] is None
    assert meta["source_model"]["file"] == "face_verifier.keras" and meta["source_model"]["arch"] == "face_verifier"
    assert meta["quantization"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face_verifier.json", "face_verifier.keras",
                                                          "face_verifier_int8.json", "face_verifier_int8.tflite"]
    verifier = FaceVerifier(tmp_path / "face_verifier_int8.tflite")
    # A few epochs on 300 faces already tell a face from a flat wall.
    faces = verifier.scores(np.hstack(list(val_sample.images[300:340])), [(48 * i, 0, 48, 48) for i in range(40)])
    walls = verifier.scores(np.full((48, 48 * 40), 128, np.uint8), [(48 * i, 0, 48, 48) for i in range(40)])
    assert faces.mean() > walls.mean() + 0.3
