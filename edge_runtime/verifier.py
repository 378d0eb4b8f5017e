"""The face verifier: a second opinion on each detection that would start a new track.

The Haar cascade fires on rectangles and texture as readily as on faces (its features are contrast
differences between rectangles), and a background patch it takes for a face is found again in every
frame, so waiting for a second detection does not remove it. The verifier, a tiny int8 CNN shipped
inside this package (like OpenCV's cascade files inside cv2), looks at the crop once and says whether
it is a face. It runs through the same interpreter loader and preprocessing as the emotion model;
`fer-edge verifier train` makes it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_runtime.interpreter import ModelError
from edge_runtime.preprocess import preprocess_faces

FACE = "face"
LABELS = ("not_face", FACE)
SHIPPED_VERIFIER = Path(__file__).resolve().parent / "models" / "face_verifier_int8.tflite"
# P(face) below which a detection does not start a track. Measured on the shipped verifier (2026-12-06, trained
# with real photos): on Haar's boxes in the photos of the held-out half of wild_dev's people it kept 99.71 % of
# the faces (the same from 0.1 to 0.5) and let through 1.06 % of real non-face windows (hair, clothes, walls and
# the cascade's hits there; 0.42 % at 0.5), and kept 99.92 % of FER2013 val faces (99.80 % at 0.3 and 0.5);
# docs/face_verifier.md has the figures.
DEFAULT_THRESHOLD = 0.2


class FaceVerifier:
    """A face / not-face TFLite model: boxes in a grayscale frame in, P(face) out."""

    def __init__(self, model_path: str | os.PathLike = SHIPPED_VERIFIER, threshold: float = DEFAULT_THRESHOLD,
                 num_threads: int | None = 1):
        from edge_runtime.classifier import Classifier

        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"verifier threshold must be between 0 and 1, got {threshold}")
        self.path = Path(model_path)
        self.model = Classifier(self.path, num_threads=num_threads)
        if FACE not in self.model.labels:
            raise ModelError(f"{self.path}: not a face verifier (its labels {list(self.model.labels)} have no "
                             f"{FACE!r}; the emotion model goes to --model, not here)")
        self.face = self.model.labels.index(FACE)
        self.threshold = threshold

    def scores(self, gray: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """P(face) of each box's crop."""
        if not len(boxes):
            return np.zeros(0, np.float32)
        p = self.model.preprocessing
        return self.model.predict(preprocess_faces(gray, boxes, size=p.size, margin=p.margin))[:, self.face]

    def is_face(self, gray: np.ndarray, box: Sequence[float]) -> bool:
        return bool(self.scores(gray, [box])[0] >= self.threshold)
