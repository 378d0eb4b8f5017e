"""wild_dev (../shared/wild_dev): real photographs of people, one folder per FER2013 class, split by person.

The photos of one person share face, light and background, so a model trained on some of a person's photos
and measured on others is measured on what it has seen: everything that trains on wild_dev takes one half
of the people (`half(person) == TRAIN_HALF`), and the other half is what it is measured on. A person is the
file name without its trailing number (`George_W_Bush_0012.jpg`, `Dileep_33.jpg`); the half is a hash of
that name, the same on every machine.

Also here: the face verifier's real crops. Each photo shows one person, usually close up, so the largest
box the runtime's default detector finds in it is that person's face, framed by each of the detectors the
face path joins (the cascade, BlazeFace); windows away from it (hair, shoulders, clothes, the wall) and the
cascade's own hits there with minNeighbors 0 are real non-faces.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.boxes import Box
from edge_runtime.detector import FaceDetector, HaarDetector, HaarOptions
from edge_runtime.labels import LABELS
from edge_runtime.sources import IMAGE_SUFFIXES

TRAIN_HALF, HELD_OUT_HALF = 0, 1
# A photo's largest box is taken for its face only when it is at least this share of the shorter side: the
# people of wild_dev fill much of the picture, and a smaller box is more often a wrong one than a face.
FACE_SHARE = 0.2


@dataclass(frozen=True)
class Photo:
    path: Path
    label: int  # index into edge_runtime.labels.LABELS
    person: str


def person(path: str | Path) -> str:
    """The person of a photo: its file name without the extension and the trailing `_NNNN` number."""
    return re.sub(r"_\d+$", "", Path(path).stem)


def half(name: str) -> int:
    """Which half (0 or 1) of the people `name` is in: a CRC-32 of the name, the same everywhere."""
    return zlib.crc32(name.encode("utf-8")) & 1


def photos(root: str | Path, which: int | None = None) -> list[Photo]:
    """Every photo under root/<class>/ (classes named as in LABELS), sorted; only half `which` when given."""
    root = Path(root)
    out = []
    for label, name in enumerate(LABELS):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and (which is None or half(person(path)) == which):
                out.append(Photo(path, label, person(path)))
    if not out:
        raise FileNotFoundError(f"{root}: no photos in class folders ({', '.join(LABELS)})")
    return out


def read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def largest_faces(photos: list[Photo], settings) -> list:
    """Each photo through the still-image Pipeline `fer-edge detect FOLDER` builds with these DetectionSettings:
    its largest face (the pipeline's Face, box and emotion), None where it finds no face. A photo that cannot be
    read is a ValueError naming it."""
    from edge_runtime.face_path import build_pipeline
    from edge_runtime.sources import gray_frame

    pipeline = build_pipeline(settings)
    out = []
    for i, photo in enumerate(photos):
        image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{photo.path}: not a readable image")
        faces = pipeline.process(gray_frame(i, 0.0, image, str(photo.path)), still=True).faces
        out.append(max(faces, key=lambda f: f.box.area, default=None))
    return out


def face_box(gray: np.ndarray, detector: FaceDetector) -> Box | None:
    """The photo's face: the largest box `detector` finds, when it is at least FACE_SHARE of the shorter side."""
    boxes = detector.detect(gray)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: b.area)
    return box if max(box.w, box.h) >= FACE_SHARE * min(gray.shape) else None


def away(window: Box, face: Box) -> bool:
    """Whether `window` is not the face: its centre at least 0.6 of the face's side from the face's centre (hair,
    a shoulder, the wall, at most part of the face), or its side at most 0.35 of the face's (an eye, a cheek)."""
    side = max(face.w, face.h)
    (wx, wy), (fx, fy) = window.center, face.center
    return bool(np.hypot(wx - fx, wy - fy) >= 0.6 * side or max(window.w, window.h) <= 0.35 * side)


def jittered(face: Box, rng: np.random.Generator, count: int, scale=(0.85, 1.2), shift: float = 0.10) -> list:
    """`count` boxes around `face` as a detector frames it: 0.85-1.2 of its side, centre moved by up to 10 %."""
    side = max(face.w, face.h)
    cx, cy = face.center
    out = []
    for _ in range(count):
        s = side * rng.uniform(*scale)
        dx, dy = rng.uniform(-shift, shift, 2) * side
        out.append((cx + dx - s / 2, cy + dy - s / 2, s, s))
    return out


def non_face_windows(gray: np.ndarray, face: Box, count: int, rng: np.random.Generator,
                     loose: HaarDetector) -> list:
    """Up to `count` windows away from `face`: up to half the cascade's own hits (minNeighbors 0), the rest random
    windows of 0.2-1 of the face's side, their centres inside the photo (the part outside is border-replicated,
    as the runtime crops a box at the edge)."""
    h, w = gray.shape
    hits = [b for b in loose.detect(gray) if away(b, face)]
    if len(hits) > count // 2:
        hits = [hits[i] for i in rng.choice(len(hits), count // 2, replace=False)]
    out = [b.as_list() for b in hits]
    side_f = max(face.w, face.h)
    for _ in range(count * 8):
        if len(out) >= count:
            break
        side = int(rng.uniform(0.2, 1.0) * side_f)
        x, y = int(rng.uniform(-side / 2, w - side / 2)), int(rng.uniform(-side / 2, h - side / 2))
        if side >= 12 and away(Box(x, y, side, side), face):
            out.append([x, y, side, side])
    return out


@dataclass(frozen=True)
class Finders:
    """What the verifier's real crops are cut with: the default face path's detector without its verifier (the
    boxes the verifier is asked about), each detector it joins alone (each frames a face its own way: the
    verifier learns both framings), and the loose cascade (minNeighbors 0: every window that passes all stages)
    for the cascade's false hits."""

    face_path: FaceDetector
    each: tuple[FaceDetector, ...]
    loose: HaarDetector


def finders() -> Finders:
    from edge_runtime.face_path import DetectionSettings, build_detector

    union = build_detector(DetectionSettings(verify_model=""))
    return Finders(union, (union.first, union.second),
                   HaarDetector(HaarOptions(min_neighbors=0, min_size=24, verify_model="", pad=0)))


def framings(gray: np.ndarray, found: Finders) -> list[Box]:
    """The photo's face as each detector frames it: each one's largest box where it is the face path's face (IoU
    >= 0.3 with the face path's largest box; a cascade's find on a nose inside BlazeFace's face is not), the same
    box once, the face path's first; none when the face path finds no face."""
    face = face_box(gray, found.face_path)
    if face is None:
        return []
    out = [face]
    for detector in found.each:
        box = face_box(gray, detector)
        if box is not None and box not in out and box.iou(face) >= 0.3:
            out.append(box)
    return out


def _gray_variant(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo in grey: mostly as the runtime converts it, else with random channel weights (a camera or a
    converter that weighs red, green and blue otherwise)."""
    if rng.random() < 0.7:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    weights = rng.dirichlet((1.0, 1.0, 1.0)).astype(np.float32)
    return np.clip(bgr.astype(np.float32) @ weights, 0, 255).astype(np.uint8)


def verifier_crops(photos: list[Photo], rng: np.random.Generator, *, faces_per_photo: int = 12,
                   non_faces_per_photo: int = 16, size: int = 48, jitter: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(faces, non-faces), (N, size, size) uint8 crops of `photos`: the face as each detector frames it (with the
    framing jitter, on grey variants of the photo, `faces_per_photo` in all; jitter=False: the face path's own
    largest box, once: what the runtime asks the verifier about), and windows away from it. A photo whose face
    the face path does not find gives only non-faces."""
    from edge_runtime.preprocess import preprocess_faces

    found = finders()
    faces, others = [], []
    for photo in photos:
        bgr = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = framings(gray, found)
        if not boxes:
            continue
        if jitter:
            for i in range(faces_per_photo):
                box = jittered(boxes[i % len(boxes)], rng, 1)[0]
                faces.append(preprocess_faces(_gray_variant(bgr, rng), [box], size=size)[0])
        else:
            faces.append(preprocess_faces(gray, [boxes[0].as_list()], size=size)[0])
        # Away from every framing of the face: a window just off one detector's box may be the other's face.
        windows = [w for w in non_face_windows(gray, boxes[0], non_faces_per_photo, rng, found.loose)
                   if all(away(Box(*map(int, w)), b) for b in boxes[1:])]
        if windows:
            others.append(preprocess_faces(_gray_variant(bgr, rng) if jitter else gray, windows, size=size))
    empty = np.zeros((0, size, size), np.uint8)
    return (np.stack(faces) if faces else empty, np.concatenate(others) if others else empty)
