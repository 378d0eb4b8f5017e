"""Model metadata: the JSON that travels beside every model file.

Labels, input size, preprocessing and quantisation travel with the model so nothing is
implied by folder order or by a constant in some script.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edge_runtime.labels import LABELS
from edge_runtime.preprocess import Preprocessing


class MetadataError(ValueError):
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
    labels = meta.get("labels", list(LABELS))
    if not (isinstance(labels, list) and labels and all(isinstance(s, str) for s in labels)):
        raise MetadataError(f"{path}: 'labels' must be a non-empty list of class names")
    return meta


def labels_of(meta: dict) -> tuple[str, ...]:
    return tuple(meta.get("labels", LABELS))


def preprocessing_of(meta: dict) -> Preprocessing:
    return Preprocessing.from_dict(meta.get("preprocessing", {}))
