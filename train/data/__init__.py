"""FER2013 in every form it is distributed in, detected from the path (or forced)."""

from __future__ import annotations

from pathlib import Path

from train.data.binary import binary_files, load_binary, load_binary_folder
from train.data.dataset import UNLABELLED, DataError, Dataset, Problems, Split
from train.data.folders import load_folders, looks_like_folders
from train.data.kaggle_csv import load_csv

FORMATS = ("csv", "binary", "folders")

__all__ = ["FORMATS", "UNLABELLED", "DataError", "Dataset", "Split", "detect_format", "load_dataset"]


def detect_format(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "no such file or folder")
    if path.is_dir():
        if looks_like_folders(path):
            return "folders"
        if binary_files(path):
            return "binary"
        raise DataError(path, None, "folder holds neither split folders (train/val/test), class folders nor "
                        "binary record files (train.bin, val.bin)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".bin", ".dat"}:
        return "binary"
    raise DataError(path, None, f"cannot tell the format from {suffix!r}; use --format {{{','.join(FORMATS)}}}")


def load_dataset(path: str | Path, fmt: str | None = None, *, skip_bad: bool = False, size: int = 48) -> Dataset:
    """Load every split at `path`. Bad records raise DataError, or are skipped and listed with skip_bad."""
    fmt = fmt or detect_format(path)
    problems = Problems(skip_bad)
    if fmt == "csv":
        splits = load_csv(path, problems)
    elif fmt == "binary":
        splits = load_binary_folder(path, problems) if Path(path).is_dir() else load_binary(path, problems)
    elif fmt == "folders":
        splits = load_folders(path, problems, size=size)
    else:
        raise DataError(path, None, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not splits:
        raise DataError(path, None, "no faces found")
    if fmt != "folders" and size != 48:
        raise DataError(path, None, f"{fmt} data are 48x48 faces; a model input of {size} needs resizing first")
    return Dataset(str(path), fmt, splits, problems.items)
