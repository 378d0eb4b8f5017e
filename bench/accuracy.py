"""Accuracy and macro-F1 of every model on one labelled split, with parameters and file bytes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.models import ModelEntry
from bench.peer import PeerFiles, PeerKeras, PeerTflite
from edge_runtime.interpreter import EdgeTpuError, ModelError
from edge_runtime.metadata import MetadataError
from train.predict import classification_metrics, load_predictor, predict_probs


def _row(name: str, group: str, kind: str, path: Path, params: int | None, probs=None, labels=None,
         seconds: float = 0.0, note: str = "") -> dict:
    row = {"model": name, "group": group, "kind": kind, "parameters": params, "bytes": path.stat().st_size,
           "accuracy": None, "macro_f1": None, "n": 0, "seconds": round(seconds, 2), "note": note}
    if probs is not None:
        metrics = classification_metrics(labels, probs.argmax(axis=1))
        row.update(accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"], n=metrics["n"],
                   per_class_recall={k: v["recall"] for k, v in metrics["per_class"].items()})
    return row


def evaluate(entries: list[ModelEntry], peer: PeerFiles | None, faces: np.ndarray, labels: np.ndarray) -> list[dict]:
    rows, params = [], {}
    for e in sorted(entries, key=lambda e: e.kind != "keras"):  # Keras first: it counts the parameters
        start = time.perf_counter()
        try:
            predictor = load_predictor(e.path)
        except (EdgeTpuError, ModelError, MetadataError) as exc:  # no Coral here; a run still being written
            rows.append(_row(e.name, e.group, e.kind, e.path, params.get(e.family), note=f"not run: {exc}"))
            continue
        if e.kind == "keras":
            params[e.family] = int(predictor.model.count_params())
        probs = predict_probs(predictor, faces)
        rows.append(_row(e.name, e.group, e.kind, e.path, params.get(e.family), probs, labels,
                         time.perf_counter() - start))
    if peer is not None:
        start = time.perf_counter()
        keras_peer = PeerKeras(peer)
        n = int(keras_peer.model.count_params())
        rows.append(_row(f"fer {peer.version} {peer.keras.name}", "peer", "keras", peer.keras, n,
                         keras_peer.predict(faces), labels, time.perf_counter() - start))
        start = time.perf_counter()
        rows.append(_row(f"fer {peer.version} {peer.tflite.name}", "peer", "tflite", peer.tflite, n,
                         PeerTflite(peer, num_threads=None).predict(faces), labels, time.perf_counter() - start))
    return rows
