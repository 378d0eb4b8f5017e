"""Binary records: 1 label byte + 48*48 pixel bytes per face (the `fer2013.bin` form), one file per split
(named for it: train.bin, val.bin, test.bin), alone or several in a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.labels import NUM_CLASSES
from train.data.dataset import DataError, Problems, Split

FER_SIDE = 48
RECORD = 1 + FER_SIDE * FER_SIDE


def split_name_for(path: Path) -> str:
    stem = path.stem.lower()
    if "test" in stem:
        return "test"
    if "val" in stem:
        return "val"
    return "train"


def load_binary(path: str | Path, problems: Problems) -> dict[str, Split]:
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(path, None, f"cannot read: {exc.strerror}") from exc
    if raw.size == 0:
        raise DataError(path, None, "file is empty")
    whole, rest = divmod(raw.size, RECORD)
    if rest:
        problems.report(
            DataError(path, f"record {whole} at byte offset {whole * RECORD}",
                      f"truncated: {rest} bytes, a record is {RECORD} (1 label + {FER_SIDE}x{FER_SIDE} pixels)")
        )
    records = raw[: whole * RECORD].reshape(whole, RECORD)
    labels = records[:, 0].astype(np.int64)
    keep = labels < NUM_CLASSES
    for idx in np.flatnonzero(~keep):
        problems.report(
            DataError(path, f"record {idx} at byte offset {idx * RECORD}",
                      f"label byte {labels[idx]} is not a label 0..{NUM_CLASSES - 1}")
        )
    records, labels = records[keep], labels[keep]
    if not len(labels):
        raise DataError(path, None, "no valid records")
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, FER_SIDE, FER_SIDE)
    sources = [f"{path.name}#{i}" for i in np.flatnonzero(keep)]
    return {split_name_for(path): Split(images, labels, sources)}


BINARY_SUFFIXES = (".bin", ".dat")


def binary_files(folder: Path) -> list[Path]:
    """The visible binary record files directly in `folder`, sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in BINARY_SUFFIXES and not p.name.startswith("."))


def load_binary_folder(folder: str | Path, problems: Problems) -> dict[str, Split]:
    """Every binary file in `folder`, each one split (by its name); two files for one split are refused."""
    folder = Path(folder)
    splits: dict[str, Split] = {}
    owner: dict[str, Path] = {}
    for path in binary_files(folder):
        for name, split in load_binary(path, problems).items():
            if name in splits:
                raise DataError(folder, None, f"{owner[name].name} and {path.name} are both the {name} split; "
                                "keep one file per split")
            splits[name], owner[name] = split, path
    if not splits:
        raise DataError(folder, None, "no binary record files (.bin, .dat) in the folder")
    return splits
