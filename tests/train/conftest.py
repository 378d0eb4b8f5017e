"""Tiny FER2013 fixtures in every format `train.data` reads, written into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

# Quiet TensorFlow before any test imports it; tests must not depend on log levels.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SIDE = 48


@pytest.fixture
def faces():
    """faces(n, seed) -> (n, 48, 48) uint8 random faces, each different from the others."""

    def make(n: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (n, SIDE, SIDE), dtype=np.uint8)

    return make


def pixels_text(image: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in np.asarray(image).reshape(-1))


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(name, header, rows) -> path; a row is a list of fields, an image field is an array."""

    def write(name: str, header: str, rows: list[list]) -> Path:
        lines = [header]
        for row in rows:
            lines.append(",".join(pixels_text(f) if isinstance(f, np.ndarray) else str(f) for f in row))
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


@pytest.fixture
def write_bin(tmp_path):
    """write_bin(name, labels, images, tail=b"") -> path of 1-label-byte + 2304-pixel-byte records."""

    def write(name: str, labels, images, tail: bytes = b"") -> Path:
        records = [bytes([int(lab)]) + np.asarray(img, np.uint8).tobytes()
                   for lab, img in zip(labels, images, strict=True)]
        data = b"".join(records)
        path = tmp_path / name
        path.write_bytes(data + tail)
        return path

    return write


@pytest.fixture
def write_image():
    """write_image(path, image) -> path; encodes by the suffix, creating parent folders."""

    def write(path: Path, image: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image), path
        return path

    return write


@pytest.fixture
def class_coded_faces():
    """coded(n, num_classes, seed) -> (images, labels): dark noisy faces with a bright square whose
    position is the class, so a tiny CNN can learn it in a few steps."""

    def make(n: int, num_classes: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % num_classes
        images = rng.integers(0, 60, (n, SIDE, SIDE), dtype=np.uint8)
        for img, label in zip(images, labels, strict=True):
            row, col = divmod(int(label), 3)
            img[4 + 14 * row : 16 + 14 * row, 4 + 14 * col : 16 + 14 * col] = 230
        return images, labels.astype(np.int64)

    return make
