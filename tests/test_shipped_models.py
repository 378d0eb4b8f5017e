"""The shipped models on the in-repo val sample: a guard against preprocessing and label drift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.classifier import Classifier
from edge_runtime.labels import LABELS
from edge_runtime.metadata import read_metadata, sha256_file
from tests.conftest import SHIPPED_FLOAT, SHIPPED_INT8


@pytest.fixture(scope="module")
def float_probs(val_sample):
    pytest.importorskip("keras")
    from train.evaluate import load_predictor

    return load_predictor(SHIPPED_FLOAT).predict(val_sample.images)


@pytest.fixture(scope="module")
def int8_probs(val_sample):
    return Classifier(SHIPPED_INT8, batch_size=50).predict(val_sample.images)


def test_model_card_describes_the_float_model():
    card = json.loads(SHIPPED_FLOAT.with_suffix(".json").read_text())
    assert card["tflite"]["int8"]["sha256"] == sha256_file(SHIPPED_INT8)
    assert card["tflite"]["int8"]["parity"]["split"] == "val"
    assert card["labels"] == list(LABELS)
    assert card["sha256"] == sha256_file(SHIPPED_FLOAT)
    assert card["parameters"] <= 2_000_000
    assert set(card["evaluation"]["per_class"]) == set(LABELS)
    assert card["training"]["command"].startswith("fer-edge train")


def test_shipped_float_model_scores_on_val_sample(float_probs, val_sample):
    accuracy = float((float_probs.argmax(1) == val_sample.labels).mean())
    assert accuracy >= 0.62, f"shipped float model: {accuracy:.3f} on the val sample"


def test_shipped_int8_model_scores_on_val_sample(int8_probs, val_sample):
    accuracy = float((int8_probs.argmax(1) == val_sample.labels).mean())
    assert accuracy >= 0.62, f"shipped int8 model: {accuracy:.3f} on the val sample"


def test_int8_keeps_the_float_accuracy(float_probs, int8_probs, val_sample):
    float_acc = (float_probs.argmax(1) == val_sample.labels).mean()
    int8_acc = (int8_probs.argmax(1) == val_sample.labels).mean()
    agreement = (float_probs.argmax(1) == int8_probs.argmax(1)).mean()
    assert (float_acc - int8_acc) * 100 <= 1.0
    assert agreement >= 0.97
    assert np.abs(float_probs - int8_probs).mean() < 0.02


def test_int8_metadata_matches_the_model():
    meta = read_metadata(SHIPPED_INT8)
    assert meta["labels"] == list(LABELS)
    assert meta["sha256"] == sha256_file(SHIPPED_INT8)
    # uint8-range input normalised in the graph: int8 input is exactly pixel - 128.
    assert (meta["quantization"]["input"]["scale"], meta["quantization"]["input"]["zero_point"]) == (1.0, -128)
    assert meta["source_model"]["sha256"] == sha256_file(SHIPPED_FLOAT)


def test_converting_the_shipped_model_reproduces_the_shipped_int8(tmp_path, val_sample, int8_probs):
    """The whole conversion journey on the real model: calibrate on calibration_data/, gate on parity."""
    pytest.importorskip("tensorflow")
    import shutil

    from edge_runtime.cli import main
    from tests.conftest import REPO, VAL_SAMPLE

    source = tmp_path / "fer_cnn.keras"
    shutil.copyfile(SHIPPED_FLOAT, source)
    shutil.copyfile(SHIPPED_FLOAT.with_suffix(".json"), source.with_suffix(".json"))
    status = main(["convert", "--model", str(source), "--int8", "--calibration", str(REPO / "calibration_data"),
                   "--parity-data", str(VAL_SAMPLE), "--parity-split", "train"])
    assert status == 0  # the parity gate (drop <= 1 pp) passed
    rebuilt = Classifier(tmp_path / "fer_cnn_int8.tflite", batch_size=50).predict(val_sample.images)
    assert (rebuilt.argmax(1) == int8_probs.argmax(1)).mean() >= 0.99
    assert read_metadata(tmp_path / "fer_cnn_int8.tflite")["parity"]["passed"] is True
