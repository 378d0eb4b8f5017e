"""bench/models.py: which finished runs the accuracy table adds beside the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.models import ModelEntry, presets
from edge_runtime.metadata import sha256_file


def _run(runs, name, content: bytes, *, backup=False):
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(content)
    (folder / "model.json").write_text(json.dumps({"name": "model", "arch": "fer_vgg"}))
    if backup:
        (folder / "backup").mkdir()
    return folder / "model.keras"


def test_runs_that_a_shipped_card_was_published_from_are_not_listed_twice(tmp_path):
    runs, models = tmp_path / "runs", tmp_path / "models"
    models.mkdir()
    published_from = _run(runs, "vgg_c3r", b"the run, with its optimiser state")
    _run(runs, "wide_d1", b"a candidate that was never shipped")
    _run(runs, "still_training", b"half done", backup=True)
    shipped = models / "fer_cnn.keras"
    shipped.write_bytes(b"the shipped bytes, optimiser stripped")
    card = {"format": "keras", "run_model_sha256": sha256_file(published_from)}
    (models / "fer_cnn.json").write_text(json.dumps(card))
    _run(runs, "copied", shipped.read_bytes())  # the shipped bytes themselves
    entries = presets(runs, [ModelEntry("fer_cnn.keras", shipped, "keras", "shipped", "fer_cnn")])
    assert [(e.name, e.group) for e in entries] == [("runs/wide_d1/model.keras (fer_vgg)", "run")]


def test_a_float32_build_made_now_carries_the_full_card(tmp_path):
    """bench builds a missing float32 TFLite with convert's one builder, card and all (issue 22, item 3)."""
    from bench.models import float32_tflite
    from edge_runtime.classifier import Classifier
    from edge_runtime.metadata import read_metadata

    keras_path = Path(__file__).resolve().parents[2] / "models" / "fer_mobile.keras"
    entry = float32_tflite(ModelEntry("fer_mobile.keras", keras_path, "keras", "shipped", "fer_mobile"), [], tmp_path)
    assert (entry.path, entry.kind, entry.family) == (tmp_path / "fer_mobile_float32.tflite", "float32", "fer_mobile")
    card = read_metadata(entry.path)
    assert card["precision"] == "float32" and card["source_model"]["sha256"] == sha256_file(keras_path)
    assert card["labels"] == read_metadata(keras_path)["labels"]
    assert Classifier(entry.path).predict(np.zeros((2, 48, 48), np.uint8)).shape == (2, len(card["labels"]))
