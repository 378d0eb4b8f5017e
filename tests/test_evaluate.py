"""`fer-edge evaluate` / `predict` against scikit-learn and against the model itself."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from edge_runtime.cli import main
from edge_runtime.labels import LABELS
from edge_runtime.metadata import write_json_atomic
from tests.conftest import REPO, SHIPPED_FLOAT, SHIPPED_INT8

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained but deterministic model: its predictions are varied enough to test the metrics."""
    from train.architectures import build_model

    keras.utils.set_random_seed(7)
    model = build_model("shallow_cnn")
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    write_json_atomic(path.with_suffix(".json"), {"labels": list(LABELS), "preprocessing": {"size": 48}})
    return path, model


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("faces")
    images, labels = [], []
    for i in range(42):
        label = i % 7
        img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        img[: 6 * (label + 1)] //= 3  # class-dependent structure, so predictions differ
        folder = root / "val" / LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), img)
        images.append(img)
        labels.append(label)
    return root, np.stack(images), np.array(labels)


def test_evaluate_json_agrees_with_sklearn(tiny_model, faces, capsys):
    path, model = tiny_model
    root, images, labels = faces
    assert main(["evaluate", "--model", str(path), "--data", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # The metrics do not depend on the order the loader reads files in, only on (truth, prediction) pairs.
    y_true = labels
    y_pred = model.predict(images[..., None].astype(np.float32), verbose=0).argmax(1)
    assert out["n"] == len(labels)
    assert out["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert out["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=range(7), average="macro",
                                                     zero_division=0))
    assert out["confusion"] == confusion_matrix(y_true, y_pred, labels=range(7)).tolist()
    assert set(out["per_class"]) == set(LABELS)
    assert sum(c["support"] for c in out["per_class"].values()) == len(labels)


def test_evaluate_report_writes_files(tiny_model, faces, tmp_path, capsys):
    path, _ = tiny_model
    root, _, _ = faces
    assert main(["evaluate", "--model", str(path), "--data", str(root), "--report", str(tmp_path / "r")]) == 0
    assert "accuracy" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["n"] == 42
    png = cv2.imread(str(tmp_path / "r" / "confusion_matrix.png"))
    assert png is not None and png.shape[0] > 100


def test_predict_mode_writes_submission(tiny_model, faces, tmp_path):
    path, model = tiny_model
    _, images, _ = faces
    csv_path = tmp_path / "test.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pixels"])
        for img in images[:5]:
            w.writerow([" ".join(map(str, img.ravel()))])
    sub = tmp_path / "sub.csv"
    assert main(["evaluate", "--model", str(path), "--data", str(csv_path), "--submission", str(sub)]) == 0
    rows = list(csv.DictReader(sub.read_text().splitlines()))
    expected = model.predict(images[:5, ..., None].astype(np.float32), verbose=0).argmax(1)
    assert [int(r["emotion"]) for r in rows] == expected.tolist()
    assert [r["label"] for r in rows] == [LABELS[i] for i in expected]


def test_predict_prints_probabilities(tiny_model, faces, tmp_path, capsys):
    path, model = tiny_model
    _, images, _ = faces
    face = cv2.resize(images[3], (96, 96), interpolation=cv2.INTER_NEAREST)  # any size goes through preprocessing
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    assert main(["predict", "--model", str(path), "--json", str(tmp_path / "face.png")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert set(line["probabilities"]) == set(LABELS)
    assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_evaluate_bad_model_is_a_clear_error(faces, tmp_path, capsys):
    root, _, _ = faces
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a model")
    write_json_atomic(bogus.with_suffix(".json"), {"labels": list(LABELS)})
    assert main(["evaluate", "--model", str(bogus), "--data", str(root)]) == 1
    err = capsys.readouterr().err
    assert "bogus.keras" in err and "Traceback" not in err


def test_evaluate_missing_metadata_is_named(tiny_model, faces, tmp_path, capsys):
    path, _ = tiny_model
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(path.read_bytes())
    root, _, _ = faces
    assert main(["evaluate", "--model", str(lonely), "--data", str(root)]) == 1
    assert "lonely.json" in capsys.readouterr().err


def _fer_edge(*argv):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *argv], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_predict_with_a_keras_model_keeps_tensorflows_native_lines_in_the_log(tmp_path):
    """TensorFlow's import prints absl/oneDNN lines on fd 2 (six, with a .keras model): only -v shows them."""
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 120, np.uint8))
    quiet = _fer_edge("predict", "--model", str(SHIPPED_FLOAT), str(face))
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.startswith(f"{face}: ")
    verbose = _fer_edge("-v", "predict", "--model", str(SHIPPED_FLOAT), str(face))
    assert verbose.returncode == 0 and "fer_edge.tensorflow" in verbose.stderr


def test_predict_names_a_truncated_jpeg_and_libjpeg_stays_quiet(tmp_path):
    ok, jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8))
    cut, missing = tmp_path / "cut.jpg", tmp_path / "missing.jpg"
    cut.write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    proc = _fer_edge("predict", "--model", str(SHIPPED_INT8), str(cut))
    assert proc.returncode == 1 and proc.stderr == (f"fer-edge predict: {cut}: truncated JPEG: the file ends before "
                                                    "the image does (an interrupted copy?)\n")
    proc = _fer_edge("predict", "--model", str(SHIPPED_INT8), str(missing))
    assert proc.returncode == 1
    assert proc.stderr == f"fer-edge predict: {missing}: cannot read: No such file or directory\n"
