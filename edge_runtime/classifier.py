"""Emotion classification of face crops with a TFLite model (float, int8 or uint8 I/O)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.interpreter import (
    ModelError,
    dequantize,
    input_info,
    is_edgetpu_model,
    make_interpreter,
    output_info,
    quantize,
)
from edge_runtime.metadata import labels_of, preprocessing_of, read_metadata
from edge_runtime.preprocess import preprocess_faces

SHIPPED_MODEL = Path("models") / "fer_blend_int8.tflite"
# Test-time augmentation: "flip" averages each face's probabilities with its mirror image's (a face's expression is
# the same mirrored). Measured with the shipped fer_cnn_int8 (2026-12-06): FER2013 val 67.18 -> 67.54 %; wild_dev
# photos through `fer-edge detect`, right label on faces found 57.4 -> 58.2 %; it costs a second inference per face.
TTA = ("none", "flip")


def check_tta(tta: str) -> str:
    if tta not in TTA:
        raise ValueError(f"unknown test-time augmentation {tta!r}; expected one of {', '.join(TTA)}")
    return tta


def flip_average(predict, faces: np.ndarray, tta: str) -> np.ndarray:
    """predict(faces), and with tta 'flip' its mean with predict(the mirrored faces); the one place this is done."""
    check_tta(tta)
    faces = np.asarray(faces)
    probs = predict(faces)
    if tta == "flip":
        probs = (probs + predict(np.ascontiguousarray(faces[..., ::-1]))) / 2.0
    return probs


def default_model_path() -> Path:
    """The shipped int8 model: models/ beside the edge_runtime package (a checkout), else on a device the
    model of the installed release the command runs from (its package lies in a venv, away from models/)."""
    shipped = Path(__file__).resolve().parent.parent / SHIPPED_MODEL
    if shipped.exists():
        return shipped
    from edge_runtime.release.installed import installed_model

    return installed_model() or shipped


@dataclass(frozen=True)
class Emotion:
    """One face's result: the top label, its score and every class probability."""

    label: str
    score: float
    probabilities: tuple[float, ...]

    def as_dict(self, labels: Sequence[str]) -> dict[str, float]:
        return {name: round(float(p), 6) for name, p in zip(labels, self.probabilities)}


class Classifier:
    """A TFLite emotion model with its metadata: crops in, probabilities out.

    The model's input must be what its metadata promises (N x S x S x 1 with S the
    preprocessing size; an int8/uint8 input must carry quantisation parameters).
    """

    def __init__(self, model_path: str | os.PathLike, *, num_threads: int | None = 1,
                 device: str | None = None, batch_size: int = 1, tta: str = "none"):
        self.tta = check_tta(tta)
        self.path = Path(model_path)
        # The model first: a missing model is reported as such, not as its missing .json.
        self.interpreter = make_interpreter(self.path, num_threads=num_threads, device=device)
        self.meta = read_metadata(self.path)
        self.labels = labels_of(self.meta)
        self.preprocessing = preprocessing_of(self.meta)
        self._check_io()
        # Edge TPU models are compiled for a static batch of one.
        self.batch_size = 1 if is_edgetpu_model(self.path) else max(1, int(batch_size))
        if self.batch_size != self.input.shape[0]:
            self.interpreter.resize_tensor_input(self.input.index, [self.batch_size, *self.input.shape[1:]])
            self.interpreter.allocate_tensors()
            self.input, self.output = input_info(self.interpreter), output_info(self.interpreter)

    def _check_io(self) -> None:
        self.input, self.output = input_info(self.interpreter), output_info(self.interpreter)
        size = self.preprocessing.size
        expected = (size, size, 1)
        if len(self.input.shape) != 4 or self.input.shape[1:] != expected:
            raise ModelError(f"{self.path}: model input shape {self.input.shape} does not take {size}x{size} "
                             f"grayscale faces (expected [N, {size}, {size}, 1] from its metadata)")
        if self.input.dtype not in (np.float32, np.int8, np.uint8):
            raise ModelError(f"{self.path}: model input type {self.input.dtype} is not float32, int8 or uint8")
        if self.input.dtype != np.float32 and not self.input.quantized:
            raise ModelError(f"{self.path}: {self.input.dtype} input without quantisation parameters")
        if self.output.shape[-1] != len(self.labels):
            raise ModelError(f"{self.path}: model has {self.output.shape[-1]} outputs but its metadata names "
                             f"{len(self.labels)} labels")
        for name, tensor in (("input", self.input), ("output", self.output)):
            promised = self.meta.get("quantization", {}).get(name)
            if promised is not None and not (isinstance(promised, dict) and {"scale", "zero_point"} <= set(promised)):
                raise ModelError(f"{self.path}: metadata quantization.{name} must have scale and zero_point, "
                                 f"got {promised!r}")
            if promised and not tensor.quantized:
                raise ModelError(f"{self.path}: metadata gives {name} quantisation {promised} but the model's "
                                 f"{name} is {np.dtype(tensor.dtype).name}, not quantised (wrong model or metadata?)")
            if promised and (
                abs(promised["scale"] - tensor.scale) > 1e-6 or promised["zero_point"] != tensor.zero_point
            ):
                raise ModelError(f"{self.path}: {name} quantisation (scale {tensor.scale}, zero point "
                                 f"{tensor.zero_point}) differs from its metadata {promised}")

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, S, S) uint8 preprocessed faces -> (N, classes) float32 probabilities (averaged with the mirrored
        faces' when the classifier was made with tta='flip')."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        return flip_average(self._predict, faces, self.tta).astype(np.float32, copy=False)

    def _predict(self, faces: np.ndarray) -> np.ndarray:
        n, bs = len(faces), self.batch_size
        out = np.empty((n, len(self.labels)), dtype=np.float32)
        # uint8 faces stay uint8 up to quantize(), which maps them onto an exact int8/uint8 input for free.
        dtype = np.uint8 if faces.dtype == np.uint8 else np.float32
        for start in range(0, n, bs):
            chunk = faces[start : start + bs]
            batch = np.zeros(self.input.shape, dtype=dtype)
            batch[: len(chunk), ..., 0] = chunk
            self.interpreter.set_tensor(self.input.index, quantize(batch, self.input))
            self.interpreter.invoke()
            probs = dequantize(self.interpreter.get_tensor(self.output.index), self.output)
            out[start : start + len(chunk)] = probs[: len(chunk)]
        return out

    def classify(self, faces: np.ndarray) -> list[Emotion]:
        return [self.to_emotion(p) for p in self.predict(faces)]

    def classify_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[Emotion]:
        """Crop each box from a frame with the model's own preprocessing, then classify."""
        if not len(boxes):
            return []
        p = self.preprocessing
        return self.classify(preprocess_faces(image, boxes, size=p.size, margin=p.margin))

    def to_emotion(self, probabilities: np.ndarray) -> Emotion:
        top = int(np.argmax(probabilities))
        return Emotion(self.labels[top], float(probabilities[top]), tuple(float(v) for v in probabilities))
