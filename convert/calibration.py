"""The int8 calibration set: real FER2013 faces as PNGs, with a manifest of labels and sha256.

Stratified by class, so the rare classes (disgust) shape the activation ranges too, and drawn
by a seeded generator, so the same command rebuilds the same files. Calibration never uses
random noise: the converter's representative dataset is exactly these faces.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import FerEdgeError
from edge_runtime.labels import LABELS, label_index
from edge_runtime.metadata import sha256_file
from edge_runtime.preprocess import preprocess_face
from train.data import Split
from train.data.folders import IMAGE_EXTENSIONS
from train.data.image_header import read_face_image

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("file", "label", "sha256", "source")


class CalibrationError(FerEdgeError, ValueError):
    """The calibration set is missing, empty, unreadable or does not fit the model."""


@dataclass(frozen=True)
class CalibrationSet:
    """Faces ready for the model (N, S, S) uint8, the files they came from, and the manifest's sha256."""

    path: Path
    faces: np.ndarray
    files: tuple[str, ...]
    manifest_sha256: str | None

    def __len__(self) -> int:
        return len(self.faces)

    def representative_dataset(self):
        """The converter's representative dataset: one (1, S, S, 1) float32 face at a time."""

        def faces():
            for face in self.faces:
                yield [face[None, :, :, None].astype(np.float32)]

        return faces


def select(split: Split, per_class: int, seed: int) -> np.ndarray:
    """Indices of up to `per_class` faces of every class, drawn without replacement by `seed`.

    A class with fewer faces gives all of them; a class with none is an error, because the
    int8 ranges would then never see that class's faces.
    """
    if per_class < 1:
        raise CalibrationError(f"--per-class must be at least 1 (got {per_class})")
    if not split.labelled:
        raise CalibrationError("the calibration split has unlabelled faces; stratifying needs labels")
    rng = np.random.default_rng(seed)
    chosen = []
    for label, name in enumerate(LABELS):
        candidates = np.flatnonzero(split.labels == label)
        if candidates.size == 0:
            raise CalibrationError(f"no {name!r} faces in the data: a calibration set needs every class")
        take = min(per_class, candidates.size)
        chosen.append(np.sort(rng.choice(candidates, size=take, replace=False)))
    return np.concatenate(chosen)


def _source_name(source: str, data_root: Path) -> str:
    """A file path relative to the dataset's parent (train/happy/x.jpg); CSV and binary sources as given."""
    path = Path(source)
    if path.is_absolute() or path.exists():
        return os.path.relpath(path.resolve(), data_root.resolve().parent)
    return source


def check_destination(out: str | os.PathLike, overwrite: bool) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CalibrationError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CalibrationError(f"{out}: folder is not empty; pass --overwrite to replace it")


def build(split: Split, out: str | os.PathLike, *, per_class: int, seed: int, data_path: str | os.PathLike,
          command: str, overwrite: bool = False) -> dict[str, int]:
    """Write the chosen faces as <out>/<class>/<class>_NNN.png with manifest.csv and README.md.

    The folder is assembled beside `out` and renamed into place, so a failure leaves the old
    set (or nothing) rather than a half-written one. Returns the face count per class.
    """
    out = Path(out)
    check_destination(out, overwrite)
    indices = select(split, per_class, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        rows, counts = [], dict.fromkeys(LABELS, 0)
        for i in indices:
            name = LABELS[int(split.labels[i])]
            file = f"{name}/{name}_{counts[name]:03d}.png"
            counts[name] += 1
            ok, png = cv2.imencode(".png", split.images[i])
            if not ok:
                raise CalibrationError(f"cannot encode face {split.sources[i] if split.sources else i} as PNG")
            (staging / name).mkdir(exist_ok=True)
            (staging / file).write_bytes(png.tobytes())
            source = _source_name(split.sources[i], Path(data_path)) if split.sources else f"#{i}"
            rows.append((file, name, sha256_file(staging / file), source))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(rows)
        (staging / MANIFEST).write_text(text.getvalue())
        (staging / "README.md").write_text(_readme(counts, per_class, seed, data_path, command))
        staging.chmod(0o755)  # mkdtemp makes it private; the set is meant to be shared
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.replace(out, old / out.name)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _readme(counts: dict[str, int], per_class: int, seed: int, data_path, command: str) -> str:
    table = "\n".join(f"| {name} | {n} |" for name, n in counts.items())
    return f"""# Calibration faces for int8 conversion

{sum(counts.values())} real FER2013 faces that `fer-edge convert --int8` feeds to the TFLite converter
as its representative dataset, so the int8 ranges of every layer are measured on what the model
will see. Never random noise.

How they were chosen: from `{data_path}` (FER2013 Training), up to {per_class} faces of
every class, drawn without replacement by a NumPy generator seeded with {seed}. Stratifying by
class keeps the rare class (disgust) in the ranges. Each face went through the shared
preprocessing (`edge_runtime.preprocess.preprocess_face`: grayscale, 48x48) and is stored
losslessly as PNG.

| class | faces |
|---|---|
{table}

`manifest.csv` lists every file with its label, sha256 and source image; the converter checks
the sha256s and records the manifest's own sha256 in each model's metadata.

Rebuild (same data, same seed: same files):

    {command}
"""


def _manifest_files(root: Path, manifest: Path) -> list[str]:
    try:
        with open(manifest, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(MANIFEST_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise CalibrationError(f"{manifest}: header lacks {sorted(missing)} "
                                       f"(expected {','.join(MANIFEST_FIELDS)})")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError(f"{manifest}: unreadable manifest: {exc}") from exc
    if not rows:
        raise CalibrationError(f"{manifest}: lists no faces")
    files = []
    for line, row in enumerate(rows, start=2):
        file = root / row["file"]
        try:
            label_index(row["label"] or "")
        except ValueError as exc:
            raise CalibrationError(f"{manifest}, line {line}: {exc}") from None
        if not file.is_file():
            raise CalibrationError(f"{manifest}, line {line}: {row['file']} is missing from {root}")
        if sha256_file(file) != row["sha256"]:
            raise CalibrationError(f"{file}: sha256 differs from {MANIFEST} (line {line}); the set was edited, "
                                   "rebuild it with `fer-edge calibration build`")
        files.append(row["file"])
    return files


def load(path: str | os.PathLike, size: int) -> CalibrationSet:
    """The faces of a calibration folder, checked and passed through the shared preprocessing.

    With a manifest.csv, exactly its files (sha256-checked); without one, every image in the
    folder tree. Every face must already be size x size: the set holds preprocessed faces, and a
    different size means it was made for another model.
    """
    root = Path(path)
    if not root.is_dir():
        raise CalibrationError(f"{root}: calibration folder not found")
    manifest = root / MANIFEST
    if manifest.exists():
        files = _manifest_files(root, manifest)
    else:
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                       if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        if not files:
            raise CalibrationError(f"{root}: no face images (and no {MANIFEST}); "
                                   "make a set with `fer-edge calibration build`")
    faces = np.empty((len(files), size, size), dtype=np.uint8)
    for i, name in enumerate(files):
        file = root / name
        image = read_face_image(file)  # the header is checked before decoding (an image bomb is refused)
        if isinstance(image, str):
            raise CalibrationError(f"{file}: {image}")
        if image.shape[:2] != (size, size):
            raise CalibrationError(f"{file}: image is {image.shape[1]}x{image.shape[0]}, but the model takes "
                                   f"{size}x{size} faces; rebuild the calibration set for this model")
        faces[i] = preprocess_face(image, size=size)
    digest = sha256_file(manifest) if manifest.exists() else None
    return CalibrationSet(root, faces, tuple(files), digest)
