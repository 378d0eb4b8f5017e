"""`fer-edge train --train-on-val`: the final cycle of issue 23 trains on train + val for the epochs asked and keeps
the last one; it refuses early stopping (val selects nothing then) and says its val figures are not held out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge_runtime.labels import LABELS

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path, class_coded_faces):
    root = tmp_path / "fer"
    for split, seed, n in (("train", 0, 21), ("val", 1, 14)):
        images, labels = class_coded_faces(n, seed=seed)
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            path = root / split / LABELS[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), img)
    return root


def _train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = ["train", "--data", str(data), "--arch", "shallow_cnn", "--epochs", "2", "--batch-size", "7",
            "--warmup-epochs", "0", "--out", str(out), *extra]
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *argv], cwd=REPO, text=True,
                          capture_output=True, timeout=600)


def test_train_on_val_trains_on_both_splits_and_keeps_the_last_epoch(data, tmp_path):
    done = _train(data, tmp_path / "run", "--train-on-val", "--patience", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["training"]["train_faces"] == 21 + 14
    assert card["training"]["config"]["keep"] == "last"
    assert "val was trained on" in done.stdout


def test_train_on_val_refuses_early_stopping(data, tmp_path):
    done = _train(data, tmp_path / "run", "--train-on-val")  # --patience keeps its default, 15
    assert done.returncode == 2, done.stderr[-3000:]
    assert "--patience 0" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "model.keras").exists()
