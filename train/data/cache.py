"""A decoded-faces cache for image folders: a second load of FER2013's 32k JPEGs takes seconds.

The key covers every file's path, label, size and modification time and the face size, so any
change to the folder makes a new entry. FER_EDGE_CACHE=off disables it; FER_EDGE_CACHE=DIR moves it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path

import numpy as np

from edge_runtime.metadata import write_atomic
from train.data.dataset import Split

VERSION = "1"  # bump when decoding or preprocessing changes what a cached face holds


def cache_dir() -> Path | None:
    setting = os.environ.get("FER_EDGE_CACHE", "")
    if setting.lower() in {"off", "0", "no", "false"}:
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-edge"


def split_key(root: Path, stamps: list[str], size: int) -> str:
    """Key from the folder and each file's name, label, size and modification time."""
    digest = hashlib.sha256(f"v{VERSION}|size={size}|{Path(root).resolve()}".encode())
    digest.update("\n".join(stamps).encode())
    return digest.hexdigest()[:32]


def load(key: str) -> Split | None:
    folder = cache_dir()
    path = folder / f"faces-{key}.npz" if folder else None
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return Split(data["images"], data["labels"], data["sources"].tolist())
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is only a slower load


def save(key: str, split: Split) -> None:
    folder = cache_dir()
    if folder is None:
        return
    buffer = io.BytesIO()
    np.savez(buffer, images=split.images, labels=split.labels, sources=np.asarray(split.sources))
    with contextlib.suppress(OSError):  # a read-only home is no reason to fail a load
        write_atomic(folder / f"faces-{key}.npz", buffer.getvalue())
