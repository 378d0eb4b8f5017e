"""Synthetic scenes: real 48x48 faces, upscaled and feathered into a textured background,
moving along known paths. Tests and benchmarks use them to score detection and tracking against
boxes that are known exactly; the device never runs them, so they live here, not in edge_runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.boxes import Box


@dataclass(frozen=True)
class SceneFace:
    """One face to place: its 48x48 (or any square) grayscale pixels and where it came from; or a whole
    photograph of a person (BGR, any size) with `face`, the face's box in it (hair, ears, shoulders and the
    photo's background come along: what a camera sees, unlike a FER crop)."""

    image: np.ndarray
    label: str | None = None
    path: str | None = None
    face: Box | None = None


@dataclass(frozen=True)
class Placement:
    """Where face `face` (an index into the scene's faces) is drawn in one frame."""

    face: int
    box: Box


@dataclass(frozen=True)
class SceneOptions:
    width: int = 640
    height: int = 480
    frames: int = 60
    fps: float = 30.0
    # Face side in pixels, drawn uniformly from this range per face.
    sizes: tuple[int, int] = (96, 160)
    # Speed in pixels per frame, drawn uniformly per face and axis.
    speed: tuple[float, float] = (1.0, 4.0)
    # Per-frame sensor noise (standard deviation, grey levels) and global brightness flicker.
    noise: float = 3.0
    flicker: float = 6.0
    seed: int = 0


def read_faces(paths: Sequence[str | os.PathLike]) -> list[SceneFace]:
    """FER face images from disk; a class folder name becomes the face's label."""
    faces = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{p}: cannot read face image")
        faces.append(SceneFace(img, Path(p).parent.name, str(p)))
    return faces


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth coloured backdrop with a few soft-edged blocks (walls, furniture), BGR uint8."""
    base = rng.uniform(40, 200, size=(6, 8, 3)).astype(np.float32)
    img = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(40, width // 2)), y0 + int(rng.integers(40, height // 2))
        cv2.rectangle(img, (x0, y0), (x1, y1), rng.uniform(30, 220, size=3).tolist(), -1)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def feather_mask(side: int, feather: float = 0.08) -> np.ndarray:
    """1 inside, falling smoothly to 0 over `feather` of the side at the edges (float32)."""
    return feather_rect(side, side, feather)


def feather_rect(width: int, height: int, feather: float) -> np.ndarray:
    """feather_mask for a width x height rectangle (each side ramps over `feather` of its own length)."""

    def ramp(n: int) -> np.ndarray:
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        return np.clip((edge + 0.5) / max(1, int(round(n * feather))), 0.0, 1.0)

    return np.outer(ramp(height), ramp(width))


def _paths(faces: int, opts: SceneOptions, rng: np.random.Generator) -> list[list[Box]]:
    """Each face bounces inside its own vertical lane, so faces never overlap."""
    lane = opts.width // max(1, faces)
    tracks = []
    for i in range(faces):
        side = int(rng.integers(opts.sizes[0], opts.sizes[1] + 1))
        side = min(side, lane - 2, opts.height - 2)
        lo_x, hi_x = i * lane, (i + 1) * lane - side
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(0, opts.height - side)
        vx, vy = (rng.uniform(*opts.speed) * rng.choice((-1, 1)) for _ in range(2))
        boxes = []
        for _ in range(opts.frames):
            boxes.append(Box(int(round(x)), int(round(y)), side, side))
            if not lo_x <= x + vx <= hi_x:
                vx = -vx
            if not 0 <= y + vy <= opts.height - side:
                vy = -vy
            x, y = x + vx, y + vy
        tracks.append(boxes)
    return tracks


def render(faces: Sequence[SceneFace], options: SceneOptions | None = None
           ) -> Iterator[tuple[np.ndarray, list[Placement]]]:
    """(BGR frame, where each face is) for every frame of the scene."""
    opts = options or SceneOptions()
    rng = np.random.default_rng(opts.seed)
    bg = background(opts.width, opts.height, rng).astype(np.float32)
    paths = _paths(len(faces), opts, rng)
    scaled = {}
    for i, face in enumerate(faces):
        side = paths[i][0].w
        up = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        scaled[i] = (up[..., None], feather_mask(side)[..., None])
    for t in range(opts.frames):
        frame = bg.copy()
        placements = []
        for i in range(len(faces)):
            box = paths[i][t]
            up, mask = scaled[i]
            roi = frame[box.y : box.y + box.h, box.x : box.x + box.w]
            roi[:] = roi * (1.0 - mask) + up * mask
            placements.append(Placement(i, box))
        frame += rng.normal(0.0, opts.noise, frame.shape).astype(np.float32) + rng.normal(0.0, opts.flicker)
        yield np.clip(frame, 0, 255).astype(np.uint8), placements


def write_video(path: str | os.PathLike, faces: Sequence[SceneFace], options: SceneOptions | None = None
                ) -> list[list[Placement]]:
    """Write the scene as a video file (MJPG in .avi, mp4v otherwise); the placements per frame."""
    opts = options or SceneOptions()
    return write_frames(path, render(faces, opts), opts.fps, (opts.width, opts.height))


def write_frames(path: str | os.PathLike, frames: Iterator[tuple[np.ndarray, list]], fps: float,
                 size: tuple[int, int]) -> list[list]:
    """Write (BGR frame, truth) pairs as one video file (MJPG in .avi, mp4v otherwise); the truths in order."""
    path = Path(path)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write this video")
    truth = []
    try:
        for frame, placed in frames:
            writer.write(frame)
            truth.append(placed)
    finally:
        writer.release()
    return truth


def is_frontal(face: SceneFace, detector, side: int = 120) -> bool:
    """Whether `detector` finds this face alone in a scene at `side` pixels: scene tests score
    tracking and classification, not a cascade on profile or occluded faces."""
    frame, placements = next(render([face], SceneOptions(frames=1, sizes=(side, side), seed=0)))
    box = placements[0].box
    return any(box.iou(b) > 0.5 for b in detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))


def frontal_faces(images: np.ndarray, labels: np.ndarray, count: int = 3) -> list[SceneFace]:
    """The first `count` faces (in a fixed shuffle) that Haar finds frontal: scenes score detection of faces."""
    from edge_runtime.detector import HaarDetector, HaarOptions
    from edge_runtime.labels import LABELS

    detector = HaarDetector(HaarOptions(detect_width=0))
    faces = []
    for i in np.random.default_rng(7).permutation(len(images)):
        face = SceneFace(images[i], LABELS[labels[i]])
        if is_frontal(face, detector):
            faces.append(face)
            if len(faces) == count:
                return faces
    raise SystemExit(f"fewer than {count} faces of --data are found by the Haar cascade: too few for the scenes")
