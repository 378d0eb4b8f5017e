"""The face verifier's int8 build: train's float verifier, built by convert's one model-file builder.

train.verifier trains the float model and measures a build; this module sits between the two, so that
train never imports convert (docs/architecture.md). `fer-edge verifier train` runs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from convert.build import build_model_file
from convert.calibration import CalibrationSet
from edge_runtime.classifier import Classifier
from edge_runtime.metadata import sidecar_path, write_json_atomic
from train.verifier import ARCH, VerifierConfig, measure, train_verifier


def build_verifier(train_faces: np.ndarray, val_faces: np.ndarray | None, out: Path,
                   cfg: VerifierConfig | None = None, *, command: str = "", data_path: str = "",
                   verbose: int = 2) -> dict:
    """Train OUT/face_verifier.keras, build OUT/face_verifier_int8.tflite calibrated on generated crops,
    measure the int8 build and write its figures into its card; returns the figures."""
    cfg = cfg or VerifierConfig()
    # SavedModel export logs every asset it writes at INFO.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    trained = train_verifier(train_faces, out, cfg, command=command, data_path=data_path, verbose=verbose)
    calibration = CalibrationSet(out / "calibration (generated crops)", trained.calibration_crops, (), None)
    built = build_model_file(trained.keras_path, out / f"{ARCH}_int8.tflite", "int8", io="int8",
                             calibration=calibration)
    figures = measure(Classifier(built.path, batch_size=256).predict, trained, val_faces, cfg.threshold)
    write_json_atomic(sidecar_path(built.path), {**built.meta, "threshold": cfg.threshold, "evaluation": figures,
                                                 "training": trained.meta["training"]})
    return figures
