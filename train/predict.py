"""Float Keras and int8 TFLite models behind one predict(faces) call, and the metrics every report uses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.interpreter import ModelError
from edge_runtime.labels import LABELS
from edge_runtime.metadata import labels_of, preprocessing_of, read_metadata


class KerasPredictor:
    """A float Keras model behind the same predict(faces) -> probabilities call as the TFLite Classifier."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 256):
        import keras

        self.path = Path(path)
        self.meta = read_metadata(self.path)
        self.labels = labels_of(self.meta)
        self.preprocessing = preprocessing_of(self.meta)
        try:
            self.model = keras.saving.load_model(self.path)
        except Exception as exc:  # Keras raises many types for a bad file
            raise ModelError(f"{self.path}: cannot load Keras model: {exc}") from exc
        self.batch_size = batch_size

    def predict(self, faces: np.ndarray) -> np.ndarray:
        x = np.asarray(faces, dtype=np.float32)[..., None]
        return np.asarray(self.model.predict(x, batch_size=self.batch_size, verbose=0), dtype=np.float32)


def load_predictor(path: str | os.PathLike, *, num_threads: int | None = None, device: str | None = None):
    """KerasPredictor for .keras, edge_runtime's Classifier (the one interpreter loader) for .tflite."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return KerasPredictor(path)
    if suffix == ".tflite":
        from edge_runtime.classifier import Classifier

        return Classifier(path, num_threads=num_threads, device=device, batch_size=64)
    raise ModelError(f"{path}: unknown model type {suffix!r}; expected .keras or .tflite")


def predict_probs(predictor, faces: np.ndarray, tta: str | None = None) -> np.ndarray:
    """Probabilities; with tta='flip' the mean over each face and its mirror image (edge_runtime's flip_average, as
    the device runs it)."""
    from edge_runtime.classifier import flip_average

    return flip_average(predictor.predict, faces, tta or "none")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels=LABELS) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def evaluate(predictor, faces: np.ndarray, labels: np.ndarray, tta: str | None = None) -> dict:
    probs = predict_probs(predictor, faces, tta)
    return classification_metrics(labels, probs.argmax(axis=1), predictor.labels)


def default_split(splits: dict) -> str:
    for name in ("val", "test", "train"):
        if name in splits:
            return name
    return next(iter(splits))


def load_split(data: Path, split: str | None = None):
    """(split name, Split) of labelled faces, 48x48 through the shared preprocessing."""
    from train.data import load_dataset

    ds = load_dataset(data)
    name = split or default_split(ds.splits)
    found = ds.split(name)
    if not found.labelled:
        raise ValueError(f"{data} [{name}]: the faces are not labelled, so accuracy cannot be measured")
    return name, found
