"""Image folders: `<root>/<split>/<class>/*.png|jpg|jpeg|bmp`, or a root that is one split."""

from __future__ import annotations

import errno
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge_runtime.labels import LABELS, label_index
from edge_runtime.preprocess import preprocess_face
from train.data import cache
from train.data.dataset import DataError, Problems, Split
from train.data.image_header import quiet_decoder, read_face_image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp"}
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "privatetest": "test",
}


def _unreachable(path: Path, exc: OSError) -> DataError:
    """A listed entry that cannot be followed (a symbolic link loop, a dangling link), in one sentence."""
    if exc.errno == errno.ELOOP:
        return DataError(path, None, "a symbolic link that loops back on itself: neither a file nor a folder")
    return DataError(path, None, f"cannot read: {exc.strerror}")


def _visible_dirs(path: Path, problems: Problems | None = None) -> list[Path]:
    """The visible folders in `path`; a symbolic link loop among them is reported to `problems` (if given)."""
    dirs = []
    for p in sorted(path.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            if stat.S_ISDIR(p.stat().st_mode):
                dirs.append(p)
        except OSError as exc:  # a dangling link is no folder; a loop is named
            if exc.errno == errno.ELOOP and problems is not None:
                problems.report(_unreachable(p, exc))
    return dirs


def is_class_dir(path: Path) -> bool:
    try:
        label_index(path.name)
    except ValueError:
        return False
    return True


def looks_like_folders(path: Path) -> bool:
    if not path.is_dir():
        return False
    subdirs = _visible_dirs(path)
    return any(d.name.lower() in SPLIT_NAMES or is_class_dir(d) for d in subdirs)


def _read(path: Path, size: int) -> np.ndarray | str:
    """The preprocessed face, or a sentence saying why it could not be read."""
    image = read_face_image(path)
    if isinstance(image, str):
        return image
    try:
        return preprocess_face(image, size=size)
    except ValueError as exc:
        return str(exc)


def _load_split(root: Path, problems: Problems, size: int) -> Split:
    files: list[tuple[Path, int]] = []
    stamps: list[str] = []
    for class_dir in _visible_dirs(root, problems):
        try:
            label = label_index(class_dir.name)
        except ValueError:
            raise DataError(class_dir, None, f"unknown class folder; expected one of {', '.join(LABELS)} "
                            "(or a synonym such as happiness, surprised)") from None
        # scandir: file types come with the listing, so 30k faces cost no extra stat calls here.
        with os.scandir(class_dir) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        for entry in entries:
            path = class_dir / entry.name
            try:
                if entry.is_dir():
                    continue
                st = entry.stat()
            except OSError as exc:  # a symbolic link loop (ELOOP) or a dangling link
                problems.report(_unreachable(path, exc))
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                problems.report(DataError(path, None, f"not an image file (expected {sorted(IMAGE_EXTENSIONS)})"))
                continue
            files.append((path, label))
            stamps.append(f"{entry.name}|{label}|{st.st_size}|{st.st_mtime_ns}")
    if not files:
        raise DataError(root, None, "empty split: no face images in its class folders")
    key = cache.split_key(root, stamps, size)
    cached = cache.load(key)
    if cached is not None:
        return cached
    workers = min(16, (os.cpu_count() or 2) * 4)
    with quiet_decoder(), ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda f: _read(f[0], size), files))
    images, labels, sources = [], [], []
    for (file, label), result in zip(files, results):
        if isinstance(result, str):
            problems.report(DataError(file, None, result))
            continue
        images.append(result)
        labels.append(label)
        sources.append(str(file))
    if not images:
        raise DataError(root, None, "empty split: no readable face images")
    split = Split(np.stack(images), np.asarray(labels, dtype=np.int64), sources)
    if len(images) == len(files):  # only clean loads are cached, so problems are reported every time
        cache.save(key, split)
    return split


def load_folders(path: str | Path, problems: Problems, size: int = 48) -> dict[str, Split]:
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, None, "not a folder")
    subdirs = _visible_dirs(root, problems)
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_NAMES]
    if not split_dirs:
        # The root is itself one split; its name says which (default train).
        return {SPLIT_NAMES.get(root.name.lower(), "train"): _load_split(root, problems, size)}
    others = [d.name for d in subdirs if d not in split_dirs]
    if others:
        raise DataError(root, None, f"folders {others} are neither splits ({sorted(set(SPLIT_NAMES))}) nor ignored")
    splits: dict[str, Split] = {}
    for d in split_dirs:
        name = SPLIT_NAMES[d.name.lower()]
        if name in splits:
            raise DataError(d, None, f"a second folder for split {name!r}")
        splits[name] = _load_split(d, problems, size)
    return splits
