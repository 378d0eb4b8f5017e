"""Model metadata: the JSON that travels beside every model file.

Labels, input size, preprocessing and quantisation travel with the model so nothing is
implied by folder order or by a constant in some script.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from edge_runtime.errors import FerEdgeError
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import Preprocessing


class MetadataError(FerEdgeError, ValueError):
    """A model's metadata file is missing, unreadable or inconsistent."""


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """models/fer_cnn_int8.tflite -> models/fer_cnn_int8.json"""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; published models must be readable like any file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_metadata(model_path: str | os.PathLike, *, required: bool = True) -> dict:
    """The sidecar metadata of a model ({} when absent and not required)."""
    path = sidecar_path(model_path)
    if not path.exists():
        if required:
            raise MetadataError(f"{path}: metadata file missing (every fer-edge model has a .json beside it)")
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: unreadable metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise MetadataError(f"{path}: metadata must be a JSON object")
    problem = metadata_problem(meta)
    if problem:
        raise MetadataError(f"{path}: {problem}")
    return meta


# Bounds of the fields the runtime reads. A margin of 1 crops three times the face's side; 200 would ask
# for a (401 x face)^2 crop (gigabytes per face); NaN or an infinite scale makes every number NaN.
MAX_LABELS = 1000
SIZE_RANGE = (8, 512)
MARGIN_RANGE = (0.0, 1.0)
COLORS = ("gray",)
QUANT_DTYPES = ("int8", "uint8")
STRING_FIELDS = ("name", "format", "precision", "date")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def metadata_problem(meta: dict) -> str | None:
    """What is wrong with a model's metadata, as one phrase naming the field, or None.

    Only the fields the runtime reads are bounded (labels, preprocessing, quantization, sha256); the
    descriptive ones (name, format, precision, date) must be strings when given. Anything else (the
    conversion's report, parity, calibration) is carried, not read."""
    labels = meta.get("labels", list(LABELS))
    if not (isinstance(labels, list) and labels and all(isinstance(s, str) for s in labels)):
        return "'labels' must be a non-empty list of class names"
    if len(labels) > MAX_LABELS or len(set(labels)) != len(labels) or not all(0 < len(s) <= 64 for s in labels):
        return f"'labels' must be at most {MAX_LABELS} distinct names of 1 to 64 characters"
    for key in STRING_FIELDS:
        if key in meta and not isinstance(meta[key], str):
            return f"'{key}' must be a string, got {meta[key]!r:.40}"
    if "sha256" in meta and not (isinstance(meta["sha256"], str) and len(meta["sha256"]) == 64
                                 and all(c in "0123456789abcdefABCDEF" for c in meta["sha256"])):
        return "'sha256' must be 64 hexadecimal digits"
    pre = meta.get("preprocessing", {})
    if not isinstance(pre, dict):
        return "'preprocessing' must be a JSON object"
    unknown = set(pre) - {"size", "margin", "color"}
    if unknown:
        return f"'preprocessing.{sorted(unknown)[0]}' is not a preprocessing field (size, margin, color)"
    size = pre.get("size", SIZE_RANGE[0])
    if not (isinstance(size, int) and not isinstance(size, bool) and SIZE_RANGE[0] <= size <= SIZE_RANGE[1]):
        return f"'preprocessing.size' must be a whole number of pixels from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}, " \
               f"got {size!r:.40}"
    margin = pre.get("margin", 0.0)
    if not (_number(margin) and MARGIN_RANGE[0] <= margin <= MARGIN_RANGE[1]):
        return f"'preprocessing.margin' must be a number from {MARGIN_RANGE[0]:g} to {MARGIN_RANGE[1]:g} " \
               f"(a fraction of the face's side), got {margin!r:.40}"
    if pre.get("color", COLORS[0]) not in COLORS:
        return f"'preprocessing.color' must be one of {', '.join(COLORS)}, got {pre['color']!r:.40}"
    quant = meta.get("quantization", {})
    if not isinstance(quant, dict):
        return "'quantization' must be a JSON object"
    for name, tensor in quant.items():
        where = f"'quantization.{name}'"
        if not isinstance(tensor, dict):
            continue  # the Classifier, which compares it with the model's tensors, says what it must hold
        scale, zero = tensor.get("scale"), tensor.get("zero_point")
        if "scale" in tensor and not (_number(scale) and 0 < scale <= 1e6):
            return f"{where}.scale must be a finite number above 0 (at most 1e6), got {scale!r:.40}"
        if "zero_point" in tensor and not (isinstance(zero, int) and not isinstance(zero, bool)
                                           and -128 <= zero <= 255):
            return f"{where}.zero_point must be a whole number from -128 to 255, got {zero!r:.40}"
        if "dtype" in tensor and tensor["dtype"] not in QUANT_DTYPES:
            return f"{where}.dtype must be one of {', '.join(QUANT_DTYPES)}, got {tensor['dtype']!r:.40}"
    return None


def labels_of(meta: dict) -> tuple[str, ...]:
    return tuple(meta.get("labels", LABELS))


def preprocessing_of(meta: dict) -> Preprocessing:
    return Preprocessing.from_dict(meta.get("preprocessing", {}))
