"""Training data for the face verifier: crops the Haar cascade takes for faces, labelled face or not.

The cascade fires on rectangles and texture (shelves, wallpaper, a dark block beside a light one) as
readily as on faces: Haar features are contrast differences between rectangles. The verifier is a
tiny CNN that looks once at each crop that would start a new track and says whether it is a face.

Faces: FER2013 training faces cropped the way a detector box crops them (train.corruptions.haar_crop:
0.85-1.2 of the face, shifted by up to 10 %), with the photometric conditions of the robustness report.
Not faces: the windows the cascade itself accepts (with minNeighbors 0, so every window that passes all
its stages counts) on procedural backdrops made here, plus FER faces cut by a window that holds only part
of a face or several small faces, plus plain random windows and nearly featureless crops. The backdrops
are this module's own families (blocks, stripes, blobs, lines, grain), not bench/'s scene generator, so
the dynamic-scene benchmark stays a held-out check of the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.detector import HaarDetector, HaarOptions
from edge_runtime.preprocess import preprocess_face, preprocess_faces
from train import corruptions

BACKDROP_SIZE = (480, 640)  # height, width


@dataclass(frozen=True)
class VerifierData:
    """(N, size, size) uint8 crops and their labels (1 = face, 0 = not a face)."""

    crops: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _blocks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((h, w), rng.uniform(30, 220), np.float32)
    for _ in range(int(rng.integers(4, 25))):
        x0, y0 = int(rng.integers(-40, w)), int(rng.integers(-40, h))
        bw, bh = int(rng.integers(10, w // 2)), int(rng.integers(10, h // 2))
        cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), float(rng.uniform(0, 255)), -1)
    return img


def _stripes(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 80)
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    if rng.random() < 0.5:
        wave = np.sign(wave)  # hard-edged stripes, a checker when crossed below
    if rng.random() < 0.4:
        angle2 = angle + np.pi / 2
        wave = wave * np.sign(np.sin((x * np.cos(angle2) + y * np.sin(angle2)) * 2 * np.pi / rng.uniform(6, 80)))
    return 128 + wave * rng.uniform(20, 110)


def _blobs(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((h, w), np.float32)
    for octave in range(int(rng.integers(1, 5))):
        cells = 2 ** (octave + 1)
        base = rng.uniform(-1, 1, (cells * 3, cells * 4)).astype(np.float32)
        img += cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC) / (octave + 1)
    return 128 + img * rng.uniform(30, 90)


def _shapes(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((h, w), rng.uniform(40, 210), np.float32)
    for _ in range(int(rng.integers(5, 30))):
        colour = float(rng.uniform(0, 255))
        kind = rng.integers(3)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            axes = (int(rng.integers(5, 120)), int(rng.integers(5, 120)))
            cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 1:
            end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, (cx, cy), end, colour, int(rng.integers(1, 15)))
        else:
            cv2.circle(img, (cx, cy), int(rng.integers(3, 40)), colour, int(rng.choice((-1, 2, 5))))
    return img


FAMILIES = (_blocks, _stripes, _blobs, _shapes)


def backdrop(rng: np.random.Generator, size: tuple[int, int] = BACKDROP_SIZE) -> np.ndarray:
    """One grayscale uint8 backdrop: one or two families mixed, softened, light graded, grain on top."""
    h, w = size
    families = rng.choice(len(FAMILIES), size=int(rng.integers(1, 3)), replace=False)
    img = np.mean([FAMILIES[i](h, w, rng) for i in families], axis=0)
    if rng.random() < 0.7:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 4.0)))
    ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), w, dtype=np.float32)
    img = img * (ramp[None, :] if rng.random() < 0.5 else np.resize(ramp, h)[:, None])
    grain = rng.normal(0, rng.uniform(0, 18), (h, w)).astype(np.float32)
    if rng.random() < 0.5:
        grain = cv2.GaussianBlur(grain, (0, 0), 1.2) * 2
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def cascade_windows(gray: np.ndarray, detector: HaarDetector, limit: int, rng: np.random.Generator) -> list:
    """Up to `limit` boxes that pass every stage of the cascade (minNeighbors 0: no grouping), drawn at random."""
    # Sorted: OpenCV's threads return the windows in any order, and the draw must not depend on it.
    boxes = sorted(detector.detect(gray), key=lambda b: (b.x, b.y, b.w, b.h))
    if len(boxes) > limit:
        boxes = [boxes[i] for i in rng.choice(len(boxes), limit, replace=False)]
    return boxes


def random_windows(shape: tuple[int, int], count: int, rng: np.random.Generator, sides=(40, 220)) -> list:
    h, w = shape
    out = []
    for _ in range(count):
        side = int(rng.integers(*sides))
        out.append((int(rng.integers(0, w - side)), int(rng.integers(0, h - side)), side, side))
    return out


def _face_parts(faces: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Windows holding part of a face (the cascade fires on a cheek and its edge) or four small faces at once."""
    out = np.empty((len(faces), size, size), np.uint8)
    for i, face in enumerate(faces):
        pad = np.full((48 * 3, 48 * 3), int(rng.integers(0, 256)), np.uint8)
        if rng.random() < 0.7:
            pad[48:96, 48:96] = face
            side = rng.uniform(0.6, 1.3) * 48
            # A centre at least 0.6 of a face away from the face's centre: the window holds a part only.
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 0.9) * 48
            cx, cy = 72 + dist * np.cos(angle), 72 + dist * np.sin(angle)
            out[i] = preprocess_face(pad, (cx - side / 2, cy - side / 2, side, side), size=size)
        else:
            small = cv2.resize(face, (30, 30), interpolation=cv2.INTER_AREA)
            for k in range(4):
                pad[20 + (k // 2) * 50 : 50 + (k // 2) * 50, 20 + (k % 2) * 50 : 50 + (k % 2) * 50] = small
            out[i] = preprocess_face(pad, (10, 10, 110, 110), size=size)
    return out


def _flat(count: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """Nearly featureless crops (a wall, darkness, a lit gradient): never a face, however dark or bright."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((count, size, size), np.uint8)
    for i in range(count):
        level = rng.uniform(0, 255)
        slope = rng.uniform(-80, 80, 2) * (rng.random() < 0.5)
        img = level + slope[0] * (x - 0.5) + slope[1] * (y - 0.5) + rng.normal(0, rng.uniform(0, 10), (size, size))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def light(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness and contrast of real cameras: a gain of 0.4-1.8 about the crop's mean, an offset of +-70 grey
    levels and a gamma of 0.5-2, clipped; a bright face on a light wall and a dim one in shade both look so."""
    f = crops.astype(np.float32) / 255.0
    n = len(crops)
    f = f ** rng.uniform(0.5, 2.0, (n, 1, 1)).astype(np.float32)
    mean = f.mean(axis=(1, 2), keepdims=True)
    f = (f - mean) * rng.uniform(0.4, 1.8, (n, 1, 1)) + mean + rng.uniform(-70, 70, (n, 1, 1)) / 255.0
    return np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)


def background(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The corners of each crop (outside an ellipse about the face) replaced by another background: a plain
    wall of any brightness (often light), or a generated backdrop, with a soft edge."""
    n, h, w = crops.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = crops.copy()
    for i in range(n):
        ax, ay = rng.uniform(0.36, 0.5) * w, rng.uniform(0.45, 0.6) * h
        cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.02, 0.08) * h
        inside = np.clip((1.0 - ((x - cx) / ax) ** 2 - ((y - cy) / ay) ** 2) * 4.0, 0.0, 1.0)
        if rng.random() < 0.6:
            level = rng.uniform(150, 255) if rng.random() < 0.6 else rng.uniform(0, 255)
            wall = np.full((h, w), level, np.float32) + rng.normal(0, rng.uniform(0, 6), (h, w)).astype(np.float32)
        else:
            wall = cv2.resize(backdrop(rng, (96, 96)), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        out[i] = np.clip(crops[i] * inside + wall * (1.0 - inside), 0, 255).astype(np.uint8)
    return out


def glasses(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark bands where the eyes are: a dark bar across both eyes, or two dark lenses joined by a bridge."""
    n, h, w = crops.shape
    out = crops.astype(np.float32)
    for i in range(n):
        mask = np.zeros((h, w), np.float32)
        ey = int(rng.uniform(0.3, 0.45) * h)
        half = max(1, int(rng.uniform(0.05, 0.1) * h))
        if rng.random() < 0.4:
            cv2.rectangle(mask, (int(0.12 * w), ey - half), (int(0.88 * w), ey + half), 1.0, -1)
        else:
            r = (max(2, int(rng.uniform(0.12, 0.18) * w)), max(2, int(half * 1.4)))
            for cx in (0.32, 0.68):
                cv2.ellipse(mask, (int(cx * w), ey), r, 0, 0, 360, 1.0, -1 if rng.random() < 0.7 else 2)
            cv2.line(mask, (int(0.45 * w), ey), (int(0.55 * w), ey), 1.0, 1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.8)
        out[i] = out[i] * (1.0 - mask * rng.uniform(0.4, 0.9)) + mask * rng.uniform(0, 30)
    return np.clip(out, 0, 255).astype(np.uint8)


def real_variety(crops: np.ndarray, rng: np.random.Generator, prob: float = 0.5) -> np.ndarray:
    """Each crop, with probability `prob`, gets one or two of light, background and glasses."""
    out = crops.copy()
    for change in (light, background, glasses):
        hit = np.flatnonzero(rng.random(len(out)) < prob / 2)
        if len(hit):
            out[hit] = change(out[hit], rng)
    return out


def make_verifier_data(faces: np.ndarray, *, negatives_per_backdrop: int = 24, backdrops: int | None = None,
                       size: int = 32, seed: int = 0,
                       wild: tuple[np.ndarray, np.ndarray] | None = None) -> VerifierData:
    """Face crops from `faces` (FER 48x48 uint8) and about as many non-face crops, shuffled. `wild`: real
    (faces, non-faces) 48x48 crops of photographs (train.wild_data.verifier_crops), added to both sides."""
    rng = np.random.default_rng(seed)
    n = len(faces)
    detector = HaarDetector(HaarOptions(min_neighbors=0, detect_width=0, min_size=24, verify_model="", pad=0))
    positives = corruptions.haar_crop(faces, rng)
    if wild is not None:
        positives = np.concatenate([positives, wild[0]])
    positives = corruptions.corrupt_some(positives, rng, 0.5)
    positives = real_variety(positives, rng)
    n = len(positives)
    flip = rng.random(n) < 0.5
    positives[flip] = positives[flip, :, ::-1]
    pos = np.stack([preprocess_face(p, size=size) for p in positives])
    parts = _face_parts(faces[rng.choice(len(faces), min(len(faces), n // 5), replace=False)], rng, size)
    real_negatives = 0 if wild is None else int(len(wild[1]) * 1.3)
    backdrops = backdrops or max(1, (n - len(parts) - n // 25 - real_negatives) // negatives_per_backdrop)
    negs = [parts, _flat(n // 25, rng, size)]
    for _ in range(backdrops):
        gray = backdrop(rng)
        boxes = [b.as_list() for b in cascade_windows(gray, detector, negatives_per_backdrop // 2, rng)]
        boxes += random_windows(gray.shape, negatives_per_backdrop - len(boxes), rng)
        negs.append(preprocess_faces(gray, boxes, size=size))
    if wild is not None and len(wild[1]):
        real = corruptions.corrupt_some(wild[1], rng, 0.3)
        real = np.concatenate([real, light(real[rng.random(len(real)) < 0.3], rng)])
        negs.append(np.stack([preprocess_face(c, size=size) for c in real]))
    neg = np.concatenate(negs)
    crops = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(len(pos), np.uint8), np.zeros(len(neg), np.uint8)])
    order = rng.permutation(len(labels))
    return VerifierData(crops[order], labels[order])
