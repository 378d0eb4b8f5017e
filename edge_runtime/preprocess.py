"""The one preprocessing: crop (with margin), grayscale, resize; uint8 out.

Models take uint8-range grayscale input and normalise inside the graph, so training,
conversion, evaluation and the daemon all feed exactly what this module returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

INPUT_SIZE = 48


@dataclass(frozen=True)
class Preprocessing:
    """Parameters that travel with a model in its metadata."""

    size: int = INPUT_SIZE
    # Extra context around a detector box, as a fraction of the box side on each side.
    margin: float = 0.0
    color: str = "gray"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(**{k: data[k] for k in ("size", "margin", "color") if k in data})


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 view of a gray, BGR or BGRA image (any numeric dtype)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = cv2.cvtColor(_as_uint8(img), cv2.COLOR_BGR2GRAY)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(_as_uint8(img), cv2.COLOR_BGRA2GRAY)
        else:
            raise ValueError(f"image has {img.shape[2]} channels; expected 1, 3 or 4")
    elif img.ndim != 2:
        raise ValueError(f"image has shape {img.shape}; expected HxW or HxWxC")
    return _as_uint8(img)


def _as_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
        img = img * 255.0
    return np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)


def square_box(box: Sequence[float], margin: float) -> tuple[int, int, int, int]:
    """A square (x, y, side, side) around box (x, y, w, h), grown by margin on each side."""
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"face box {tuple(box)} has no area")
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    s = max(1, int(round(side)))
    return x0, y0, s, s


def preprocess_face(
    image: np.ndarray,
    box: Sequence[float] | None = None,
    *,
    size: int = INPUT_SIZE,
    margin: float = 0.0,
) -> np.ndarray:
    """Model input (size x size uint8 grayscale) for one face.

    With a box, the crop is made square around it with `margin`; the parts that fall
    outside the frame are filled by replicating the border, so a face at the edge keeps
    its proportions. Without a box, the whole image is the face.
    """
    gray = to_gray(image)
    if gray.size == 0:
        raise ValueError("image is empty")
    if box is not None:
        x0, y0, s, _ = square_box(box, margin)
        h, w = gray.shape
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
        if cx0 >= cx1 or cy0 >= cy1:
            raise ValueError(f"face box {tuple(box)} lies outside the {w}x{h} image")
        crop = gray[cy0:cy1, cx0:cx1]
        pads = (cy0 - y0, y0 + s - cy1, cx0 - x0, x0 + s - cx1)
        if any(pads):
            crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
        gray = crop
    if gray.shape != (size, size):
        # INTER_AREA when shrinking avoids aliasing; INTER_LINEAR when growing tiny crops.
        shrinking = gray.shape[0] > size or gray.shape[1] > size
        gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(gray, dtype=np.uint8)


def preprocess_faces(
    image: np.ndarray, boxes: Sequence[Sequence[float]], *, size: int = INPUT_SIZE, margin: float = 0.0
) -> np.ndarray:
    """A (N, size, size) uint8 batch, one crop per box."""
    gray = to_gray(image)
    out = np.empty((len(boxes), size, size), dtype=np.uint8)
    for i, box in enumerate(boxes):
        out[i] = preprocess_face(gray, box, size=size, margin=margin)
    return out
