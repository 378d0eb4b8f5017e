"""Fixtures shared by every test area: repository paths, the shipped models, the in-repo val sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
VAL_SAMPLE = REPO / "convert" / "val_sample"
# Every shipped model pair (float .keras, int8 .tflite). fer_cnn is the accurate one, fer_mobile the fast one (a
# seventh of the time per face), fer_blend (0.6 fer_cnn + 0.4 fer_mobile in one graph, class weights for photographs'
# class frequencies folded in) the device default since 2026-12-06, fer_faceapi the one for real photographs
# (face-api's real-face weights, trained on FER2013 after).
SHIPPED = {name: (MODELS / f"{name}.keras", MODELS / f"{name}_int8.tflite")
           for name in ("fer_mobile", "fer_cnn", "fer_blend", "fer_faceapi")}
SHIPPED_FLOAT, SHIPPED_INT8 = SHIPPED["fer_blend"]


@pytest.fixture(autouse=True, scope="session")
def _private_face_cache(tmp_path_factory):
    """Tests never read or fill the user's decoded-faces cache."""
    os.environ["FER_EDGE_CACHE"] = str(tmp_path_factory.mktemp("face-cache"))


@pytest.fixture(scope="session")
def val_sample():
    """350 FER2013 PublicTest faces, stratified by class in val proportions, via the folder loader."""
    from train.data import load_dataset

    return load_dataset(VAL_SAMPLE).split("train")
