"""Plain containers for loaded faces, and the error every loader raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_runtime.errors import FerEdgeError
from edge_runtime.labels import LABELS

UNLABELLED = -1


class DataError(FerEdgeError, ValueError):
    """Bad input: names the file and where in it (row, record, offset)."""

    def __init__(self, path, where: str | None, problem: str):
        self.path, self.where, self.problem = str(path), where, problem
        loc = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{loc}: {problem}")


@dataclass
class Split:
    """Faces of one split: (N, S, S) uint8 images, (N,) int64 labels (-1 when unlabelled)."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(LABELS))
        return {name: int(counts[i]) for i, name in enumerate(LABELS)}


@dataclass
class Dataset:
    """Splits by canonical name (train / val / test), plus what was skipped and why."""

    path: str
    format: str
    splits: dict[str, Split]
    skipped: list[DataError] = field(default_factory=list)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise DataError(self.path, None, f"no {name!r} split (this dataset has: {have})")
        return self.splits[name]


class Problems:
    """Collects bad records when skipping is asked for; raises at once otherwise."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.items: list[DataError] = []

    def report(self, error: DataError) -> None:
        if not self.skip_bad:
            raise error
        self.items.append(error)


def make_split(images: list[np.ndarray] | np.ndarray, labels, sources=None, size: int = 48) -> Split:
    imgs = np.asarray(images, dtype=np.uint8).reshape(-1, size, size)
    return Split(imgs, np.asarray(labels, dtype=np.int64).reshape(-1), list(sources or []))
