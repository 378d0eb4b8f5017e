"""Dynamic test videos: faces that come and go. Scenes of 1-3 real FER faces drifting over a textured
background, with abrupt cuts between scenes, faces entering and leaving through the top or bottom
edge, a face turned away or covered by a hand for a while, and a step change of lighting; the true
box, label and visibility of every face in every frame.

A scene is a plain description (`Scene`, `Actor`), so a test can script exactly the events it checks
and the benchmark can draw many at random (`random_scenes`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from bench.scenes import SceneFace, background, feather_mask, feather_rect, write_frames
from edge_runtime.boxes import Box

# A face counts as present (it must be found) when at least this fraction of it is inside the frame
# and it is not hidden; a partly visible or hidden face is "don't care": finding it is no error, missing it neither.
PRESENT = 0.8
# A portrait's face box (the cascade's) is kept only where another detector's box on the photo overlaps it this much.
AGREE = 0.5
EDGES = ("top", "bottom")
COVERS = ("hand", "turned")


@dataclass(frozen=True)
class Actor:
    """One face in one scene. Frames are counted from the scene's first frame.

    face: index into the faces the video is made of; lane: which of the scene's vertical lanes
    (one per actor, so faces never overlap) it drifts in; side: face size in pixels;
    enter: the frame it starts sliding in through `edge` (None: there from the first frame);
    leave: the frame it starts sliding out through `edge` (None: stays until the cut);
    hide: frames [start, end) during which it is covered (`cover`: "hand") or turned away ("turned").
    """

    face: int
    lane: int
    side: int
    enter: int | None = None
    leave: int | None = None
    edge: str = "bottom"
    hide: tuple[int, int] | None = None
    cover: str = "hand"
    drift: tuple[float, float] = (1.0, 0.5)


@dataclass(frozen=True)
class Scene:
    """frames: length; actors: its faces (none = an empty background); light: (frame, gain) a step change
    of lighting from that frame on; seed: the background and noise."""

    frames: int
    actors: tuple[Actor, ...] = ()
    light: tuple[int, float] | None = None
    seed: int = 0


@dataclass(frozen=True)
class TrueFace:
    """One face in one frame. id: unique over the video (the same face keeps it through hiding);
    box: where it is drawn (may reach outside the frame); visible: fraction of it inside the frame."""

    id: int
    box: Box
    label: str | None
    visible: float
    hidden: bool

    @property
    def present(self) -> bool:
        return self.visible >= PRESENT and not self.hidden


@dataclass(frozen=True)
class DynamicOptions:
    width: int = 640
    height: int = 480
    fps: float = 24.0
    scenes: int = 20
    # Frames per scene, drawn uniformly; hiding needs the longer ones.
    frames: tuple[int, int] = (24, 72)
    sizes: tuple[int, int] = (110, 170)
    # Pixels per frame: slow drift, and the speed of entering or leaving.
    drift: tuple[float, float] = (0.3, 1.5)
    slide: float = 10.0
    # Chances per actor (enter, leave, hide) and per scene (light); hide lasts `hide_frames` (a second).
    enter: float = 0.4
    leave: float = 0.4
    hide: float = 0.3
    light: float = 0.3
    hide_frames: int = 24
    noise: float = 3.0
    flicker: float = 3.0
    seed: int = 0


def random_scenes(faces: int, options: DynamicOptions | None = None) -> list[Scene]:
    """`options.scenes` scenes of 1-3 actors drawn from `faces` face images, each with its events at random."""
    o = options or DynamicOptions()
    rng = np.random.default_rng(o.seed)
    scenes = []
    for s in range(o.scenes):
        length = int(rng.integers(o.frames[0], o.frames[1] + 1))
        count = int(rng.integers(1, 4))
        actors = []
        for lane, face in enumerate(rng.choice(faces, size=count, replace=faces < count)):
            side = int(rng.integers(o.sizes[0], o.sizes[1] + 1))
            enter = int(rng.integers(0, length // 2)) if rng.random() < o.enter else None
            leave = int(rng.integers(length // 2, length - 8)) if rng.random() < o.leave and length >= 32 else None
            hide = None
            if rng.random() < o.hide and length >= o.hide_frames + 24:
                start = int(rng.integers(8, length - o.hide_frames - 8))
                hide = (start, start + o.hide_frames)
            drift = tuple(float(rng.uniform(*o.drift) * rng.choice((-1, 1))) for _ in range(2))
            actors.append(Actor(int(face), lane, side, enter, leave, str(rng.choice(EDGES)), hide,
                                str(rng.choice(COVERS)), drift))
        light = (int(rng.integers(4, length - 4)), float(rng.choice((0.6, 1.4)))) if rng.random() < o.light else None
        scenes.append(Scene(length, tuple(actors), light, seed=int(o.seed * 1000 + s)))
    return scenes


def _textured(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The static scenes' backdrop with fine texture on top (wallpaper, fabric), float32 BGR."""
    img = background(width, height, rng).astype(np.float32)
    grain = cv2.GaussianBlur(rng.normal(0.0, 1.0, (height, width)).astype(np.float32), (0, 0), 1.5)
    return img + (grain * (12.0 / max(1e-6, float(grain.std()))))[..., None]


def _cover(side: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What hides a face: a hand (skin-toned, covering most of it) or the back of the head (hair)."""
    if kind == "hand":
        colour = np.array([110, 140, 190], np.float32) * rng.uniform(0.8, 1.1)
        mask = np.zeros((side, side), np.float32)
        cv2.ellipse(mask, (side // 2, side // 2 + side // 10), (side * 9 // 20, side * 2 // 5), 0, 0, 360, 1.0, -1)
    else:
        colour = np.array([30, 35, 45], np.float32) * rng.uniform(0.7, 1.3)
        mask = np.zeros((side, side), np.float32)
        cv2.ellipse(mask, (side // 2, side // 2), (side * 11 // 24, side // 2), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), side / 30)
    texture = rng.normal(0.0, 10.0, (side, side, 1)).astype(np.float32)
    return colour + texture, mask[..., None]


def _positions(actor: Actor, frames: int, lanes: int, o: DynamicOptions, rng: np.random.Generator) -> list[Box]:
    """The drawn box of `actor` in each frame: a drift that bounces inside its lane, shifted off the edge
    while entering or leaving."""
    lane = o.width // lanes
    lo_x, hi_x = actor.lane * lane, (actor.lane + 1) * lane - actor.side
    hi_y = o.height - actor.side
    x, y = rng.uniform(lo_x, max(lo_x, hi_x)), rng.uniform(0, hi_y)
    vx, vy = actor.drift
    sign = -1 if actor.edge == "top" else 1
    boxes = []
    for t in range(frames):
        # How far the face is shifted towards `edge` from its drifting place; `out` puts it wholly outside.
        out = y + actor.side if actor.edge == "top" else o.height - y
        away = 0.0
        if actor.enter is not None:
            away = max(0.0, out - (t - actor.enter) * o.slide) if t >= actor.enter else out
        if actor.leave is not None and t >= actor.leave:
            away = max(away, (t - actor.leave) * o.slide)
        boxes.append(Box(round(x), round(y + sign * away), actor.side, actor.side))
        if not lo_x <= x + vx <= hi_x:
            vx = -vx
        if not 0 <= y + vy <= hi_y:
            vy = -vy
        x, y = x + vx, y + vy
    return boxes


def render(scenes: Sequence[Scene], faces: Sequence[SceneFace], options: DynamicOptions | None = None
           ) -> Iterator[tuple[np.ndarray, list[TrueFace]]]:
    """(BGR frame, the true faces in it) for every frame of every scene, in order."""
    o = options or DynamicOptions()
    next_id = 1
    for scene in scenes:
        rng = np.random.default_rng(scene.seed)
        bg = _textured(o.width, o.height, rng)
        lanes = max(1, len(scene.actors))
        drawn = []
        for actor in scene.actors:
            side = actor.side
            face = faces[actor.face]
            cover = _cover(side, actor.cover, rng) if actor.hide else None
            drawn.append((next_id, actor, face.label, *_sprite(face, side), cover,
                          _positions(actor, scene.frames, lanes, o, rng)))
            next_id += 1
        for t in range(scene.frames):
            frame = bg.copy()
            placed: list[tuple[TrueFace | None, Box]] = []
            for fid, actor, label, up, mask, offset, cover, boxes in drawn:
                box = boxes[t]
                patch = Box(box.x - offset[0], box.y - offset[1], up.shape[1], up.shape[0])
                hidden = actor.hide is not None and actor.hide[0] <= t < actor.hide[1]
                # A hidden FER crop is replaced by what hides it; a photograph keeps its head around the cover.
                if not (hidden and patch == box):
                    _paste(frame, up, mask, patch)
                if hidden:
                    _paste(frame, *cover, box)
                inside = box.clipped(o.width, o.height)
                placed.append((None if inside is None else TrueFace(fid, box, label, inside.area / box.area, hidden),
                               patch))
            truth = _occluded(placed)
            if scene.light is not None and t >= scene.light[0]:
                frame *= scene.light[1]
            frame += rng.normal(0.0, o.noise, frame.shape).astype(np.float32) + rng.normal(0.0, o.flicker)
            yield np.clip(frame, 0, 255).astype(np.uint8), truth


def _sprite(face: SceneFace, side: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """What is drawn for a face of `side` pixels: pixels (float32, 1 or 3 channels), an alpha mask and the face
    box's offset inside them. A FER crop is the face itself, feathered; a photograph is scaled so its face box
    is `side` wide, and drawn whole with a thin feather (a picture of a person, not a floating face)."""
    if face.face is None:
        up = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)[..., None]
        return up, feather_mask(side)[..., None], (0, 0)
    scale = side / face.face.w
    h, w = face.image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    up = cv2.resize(face.image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    up = up.astype(np.float32) if up.ndim == 3 else up.astype(np.float32)[..., None]
    return up, feather_rect(size[0], size[1], 0.03)[..., None], (round(face.face.x * scale), round(face.face.y * scale))


def _paste(frame: np.ndarray, pixels: np.ndarray, alpha: np.ndarray, where: Box) -> bool:
    """Blend `pixels` into `frame` at `where` (which may reach outside it); whether any of it landed."""
    inside = where.clipped(frame.shape[1], frame.shape[0])
    if inside is None:
        return False
    sy = slice(inside.y - where.y, inside.y - where.y + inside.h)
    sx = slice(inside.x - where.x, inside.x - where.x + inside.w)
    roi = frame[inside.y : inside.y + inside.h, inside.x : inside.x + inside.w]
    roi[:] = roi * (1.0 - alpha[sy, sx]) + pixels[sy, sx] * alpha[sy, sx]
    return True


def _occluded(placed: list[tuple[TrueFace | None, Box]]) -> list[TrueFace]:
    """The faces in the frame, in drawing order with what was drawn for each; a face that a picture drawn after
    it covers by more than a fifth is hidden (neither to be found, nor a false face when found): portraits are
    larger than their faces and may overlap a neighbour's."""
    out = []
    for i, (face, _) in enumerate(placed):
        if face is None:
            continue
        covered = sum(face.box.intersection(patch) for _, patch in placed[i + 1 :])
        out.append(replace(face, hidden=True) if covered > 0.2 * face.box.area else face)
    return out


def write_video(path: str | os.PathLike, scenes: Sequence[Scene], faces: Sequence[SceneFace],
                options: DynamicOptions | None = None) -> list[list[TrueFace]]:
    """Write the scenes as one video file (MJPG in .avi, mp4v otherwise); the true faces per frame."""
    o = options or DynamicOptions()
    return write_frames(path, render(scenes, faces, o), o.fps, (o.width, o.height))


def scene_starts(scenes: Sequence[Scene]) -> list[int]:
    """The first frame of each scene (the frames just after a cut)."""
    return list(np.cumsum([0] + [s.frames for s in scenes[:-1]]).astype(int))


def read_portraits(folder: str | os.PathLike, count: int, seed: int = 0, max_side: int = 400) -> list[SceneFace]:
    """`count` photographs of people from class folders (`../shared/wild_dev/<class>/`, a seeded draw spread
    over the classes), each with the face box found on the still photo: the largest face OpenCV's frontal cascade
    finds at full resolution with the photo given a replicated border (a close-up's face otherwise fills the
    cascade's window), kept when that face is at least 60 px and the photo holds only one. Photos are shrunk to
    at most `max_side` pixels first. The box comes from a cascade, so faces it cannot find are not in the scenes:
    the scenes score following, cutting and labelling on real heads, not a detector's reach (bench/wild.py does).
    The cascade's box must also be where BlazeFace (another kind of detector: a CNN) finds a face on the photo
    (IoU >= AGREE): where the cascade misses a face that fills the photo, the one box it may give is a false hit on
    part of it (a nose, a forehead), and a truth box there scores the system that finds the real face with a
    false face and a miss in every frame (George_W_Bush_0401's 71 px box on a 350 px face; BlazeFace: IoU 0.05
    there, 0.66 and more on every true box of the 80 photos of the published portrait video)."""
    from edge_runtime.blazeface import BlazeFaceDetector, BlazeFaceOptions
    from edge_runtime.detector import HaarDetector, HaarOptions
    from edge_runtime.labels import LABELS

    detector = HaarDetector(HaarOptions(detect_width=0, verify_model=""))
    second = BlazeFaceDetector(BlazeFaceOptions(model="short"))
    rng = np.random.default_rng(seed)
    pools = {c: sorted(p for p in (Path(folder) / c).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
             for c in LABELS if (Path(folder) / c).is_dir()}
    if not pools:
        raise ValueError(f"{folder}: no class folders ({', '.join(LABELS)}) of photographs")
    for paths in pools.values():
        rng.shuffle(paths)
    faces: list[SceneFace] = []
    while len(faces) < count and any(pools.values()):
        for label, paths in pools.items():
            if not paths or len(faces) >= count:
                continue
            path = paths.pop()
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            scale = min(1.0, max_side / max(image.shape[:2]))
            if scale < 1.0:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            pad = max(image.shape[:2]) // 4
            photo = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            gray = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            found = [b.shifted(-pad, -pad) for b in detector.detect(gray)]
            found = [b for b in found if b.clipped(image.shape[1], image.shape[0]) == b]
            if len(found) == 1 and found[0].w >= 60 and _agrees(found[0], second.detect(photo)):
                faces.append(SceneFace(image, label, str(path), found[0]))
    if len(faces) < count:
        raise ValueError(f"{folder}: only {len(faces)} photographs with one clear face, {count} asked for")
    return faces


def _agrees(box: Box, others: Sequence[Box]) -> bool:
    """Whether another detector found the face at `box`: one of `others` overlaps it by AGREE (IoU)."""
    return any(box.iou(b) >= AGREE for b in others)
