"""Face detection: the FaceDetector interface and the OpenCV Haar cascade behind it.

Haar on a full 640x480 frame costs tens of milliseconds on one core, so the cascade runs on
a downscaled frame (`detect_width`, 320 by default): its 24-pixel window there is a 48-pixel
face in a 640-wide frame, the smallest face worth classifying anyway (`min_size`).
"""

from __future__ import annotations

import abc
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.boxes import Box
from edge_runtime.errors import DetectorError  # re-exported: its home before errors.py
from edge_runtime.interpreter import ModelError
from edge_runtime.metadata import MetadataError
from edge_runtime.verifier import DEFAULT_THRESHOLD, SHIPPED_VERIFIER, FaceVerifier

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


def least_face(min_size: int, shape: tuple[int, ...]) -> int:
    """The least face side a detector reports in a picture of `shape`: `min_size`, or in a picture too small to
    hold such a face with room around it (a thumbnail, a face photo cropped tight: under twice min_size on its
    shorter side) half that side. A camera frame is never so small; a photo of one face may be (wild_dev: 60 of
    1,465 photos are under 48 px on their shorter side, their face below the default min_size)."""
    return max(1, min(min_size, min(shape[:2]) // 2))


class FaceDetector(abc.ABC):
    """What the pipeline needs from a face detector; another detector (a DNN, the Edge TPU)
    subclasses this and implements `detect`."""

    @abc.abstractmethod
    def detect(self, gray: np.ndarray) -> list[Box]:
        """All faces in a grayscale uint8 image, in that image's pixel coordinates."""

    def verify(self, gray: np.ndarray, box: Box) -> bool:
        """Whether a face the detector found at `box` of `gray` is confirmed by a second opinion before it starts
        a track; a detector without one says yes."""
        return True

    def detect_in(self, gray: np.ndarray, region: Box, sizes: tuple[int, int] | None = None,
                  fine: bool = False) -> list[Box]:
        """The faces inside `region` of `gray` (in `gray`'s coordinates) whose side lies within `sizes`
        (smallest, largest) when given: a look at part of a frame, where something moved or a face is expected.
        fine: look harder than a full-frame pass would (a detector that shrinks frames looks at full resolution)."""
        window = region.clipped(gray.shape[1], gray.shape[0])
        if window is None:
            return []
        found = self.detect_part(np.ascontiguousarray(gray[window.y : window.y + window.h,
                                                           window.x : window.x + window.w]))
        return [b.shifted(window.x, window.y) for b in found if sizes is None or sizes[0] <= max(b.w, b.h) <= sizes[1]]

    def detect_part(self, part: np.ndarray) -> list[Box]:
        """The faces in `part`, a piece of a larger frame (what detect_in looks at): `detect`, unless a detector
        looks at a whole picture in a way that does not suit a piece of one."""
        return self.detect(part)


@dataclass(frozen=True)
class HaarOptions:
    """Haar cascade settings; sizes are in pixels of the frame given to `detect`."""

    cascade: str | None = None  # a cascade XML path; None = OpenCV's bundled frontal-face cascade
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 48
    # Full-frame detection runs on the frame shrunk to at most this width (0 = never shrink).
    detect_width: int = 320
    equalize: bool = True
    # A second cascade that must also find a new face before it is tracked ("" = none), with its minNeighbors.
    # Off by default: OpenCV's alt2 cascade shares the default one's taste for blocks and texture on some
    # backdrops, refuses faces the default cascade finds only weakly (the third face of the bundled sample
    # video), and cost recall (0.985 -> 0.950 on the dynamic-scene video); the verifier below does better.
    verify_cascade: str = ""
    verify_neighbors: int = 3
    # The face verifier (edge_runtime/verifier.py): a tiny int8 CNN that must give a new detection at least
    # verify_threshold P(face) before it starts a track. None = the one shipped in edge_runtime/models,
    # "" = none (every detection may start a track).
    verify_model: str | None = None
    verify_threshold: float = DEFAULT_THRESHOLD
    # A face that fills the picture: the cascade's window needs background around a face, so a face whose box
    # reaches the frame's edges is missed. A second pass looks at the frame with a replicated border of `pad`
    # of its width (left, right) and height (top, bottom), for faces of at least `pad_from` of the frame's
    # shorter side only; its boxes are clipped to the frame. Where both passes find a face and the padded pass's
    # box reaches past the frame, that box is kept: it grouped windows of every size, the plain pass only those the
    # frame could hold, so the plain box is the smaller, cut short (wild_dev: right labels on found faces 56.7 ->
    # 57.4 %, 1,465 photos, bench.wild). A padded box within the frame is no better than the plain one (the padded
    # pass tries only large windows, so a face near that size comes out larger) and the plain box stays.
    # 0 = no second pass; pad_from 0 = one padded pass for
    # every face size instead of the plain one. On wild_dev's photos it takes faces found from 75.5 % to 90.1 %
    # (bench.wild); a full detection of a 640x480 frame on one core costs 33 -> 46 ms CPU (pad_from 0.5: 38 ms;
    # padding always: 74 ms), the four interleaved on a loaded 2-core machine. pad_from 0.5 found the same 90.1 %
    # of the photos as 0.3 (right labels 51.1 vs 51.3 %, two photos), for 5 ms instead of 13: the default.
    pad: float = 0.25
    pad_from: float = 0.5

    def check(self) -> None:
        problems = []
        if not self.scale_factor > 1.0:
            problems.append(f"scale_factor must be > 1 (got {self.scale_factor})")
        if self.min_neighbors < 0:
            problems.append(f"min_neighbors must be >= 0 (got {self.min_neighbors})")
        if self.min_size < 1:
            problems.append(f"min_size must be >= 1 pixel (got {self.min_size})")
        if self.verify_neighbors < 0:
            problems.append(f"verify_neighbors must be >= 0 (got {self.verify_neighbors})")
        if not 0.0 <= self.verify_threshold <= 1.0:
            problems.append(f"verify_threshold must be between 0 and 1 (got {self.verify_threshold})")
        if not 0.0 <= self.pad <= 1.0:
            problems.append(f"pad must be between 0 and 1 (got {self.pad})")
        if not 0.0 <= self.pad_from <= 1.0:
            problems.append(f"pad_from must be between 0 and 1 (got {self.pad_from})")
        if self.detect_width < 0:
            problems.append(f"detect_width must be >= 0 (got {self.detect_width})")
        if problems:
            raise DetectorError("bad Haar options: " + "; ".join(problems))


class EitherDetector(FaceDetector):
    """Two detectors as one: every face the first finds, and those of the second that no face of the first
    overlaps (IoU >= 0.3, or half of the smaller box inside the other, unless the first's is under half the
    second's side). New faces are vetted by the first's verify. Haar then BlazeFace: the cascade's reach for
    small faces, BlazeFace's for a face that fills the picture. regions=False: region looks (`detect_in`) ask the
    first only, the second looks at whole frames. second_from: a face both find whose box by the second is at least
    this share of the frame's shorter side (a near face) gets the second's box in place of the first's (None:
    the first's always)."""

    def __init__(self, first: FaceDetector, second: FaceDetector, regions: bool = True,
                 second_from: float | None = None):
        self.first, self.second, self.regions, self.second_from = first, second, regions, second_from

    def detect(self, gray: np.ndarray) -> list[Box]:
        least = math.inf if self.second_from is None else self.second_from * min(gray.shape[:2])
        return _union(self.first.detect(gray), self.second.detect(gray), least)

    def detect_in(self, gray: np.ndarray, region: Box, sizes: tuple[int, int] | None = None,
                  fine: bool = False) -> list[Box]:
        first = self.first.detect_in(gray, region, sizes, fine)
        if not self.regions:
            return first
        return _union(first, self.second.detect_in(gray, region, sizes, fine))

    def verify(self, gray: np.ndarray, box: Box) -> bool:
        return self.first.verify(gray, box)


def _union(first: list[Box], second: list[Box], least: float = math.inf) -> list[Box]:
    """first, and each box of second that no box of first overlaps as the same face would: by IoU >= 0.3, or by
    half of the smaller inside the other, unless the first's box is under half the second's side. A find of
    the cascade well inside a much larger box of BlazeFace (on a nose, a hand or a collar inside the face, or a
    small face inside a large false box) does not hide it: both are kept, and the verifier vets each new face.
    A box of second at least `least` on its longer side that is the same face as boxes of first takes their
    place (in the first's order), unless one of them already took another box of second: that face is reported
    once, so two boxes of second on one face of first are never two faces."""
    taken: dict[int, Box] = {}
    added = []
    for b in second:
        same = [i for i, a in enumerate(first) if _same_face_as(a, b)]
        if not same:
            added.append(b)
        elif max(b.w, b.h) >= least and not any(i in taken for i in same):
            taken.update((i, b) for i in same)
    out: list[Box] = []
    for i, a in enumerate(first):
        if i not in taken:
            out.append(a)
        elif taken[i] not in out:
            out.append(taken[i])
    return out + added


def _same_face_as(first: Box, second: Box) -> bool:
    if first.iou(second) >= 0.3:
        return True
    return first.overlap(second) >= 0.5 and 2 * max(first.w, first.h) >= max(second.w, second.h)


def load_verifier(verify_model: str | None, threshold: float) -> FaceVerifier | None:
    """The face verifier a detector vets new faces with: None = the shipped one, "" = none."""
    if verify_model == "":
        return None
    try:
        return FaceVerifier(verify_model or SHIPPED_VERIFIER, threshold)
    except (ModelError, MetadataError) as exc:
        raise DetectorError(f"face verifier: {exc}") from exc


def cascade_path(cascade: str | os.PathLike | None) -> Path:
    """The bundled frontal-face cascade, a bundled cascade by file name, or a cascade file by path."""
    if cascade is None:
        cascade = DEFAULT_CASCADE
    path = Path(cascade)
    if not path.exists() and path.parent == Path("."):
        path = Path(cv2.data.haarcascades) / path.name
    return path


class HaarDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade, run on a downscaled, equalised grayscale frame."""

    def __init__(self, options: HaarOptions | None = None):
        self.options = options or HaarOptions()
        self.options.check()
        self.path = cascade_path(self.options.cascade)
        if not self.path.is_file():
            raise DetectorError(f"{self.path}: Haar cascade file not found")
        try:
            self.cascade = cv2.CascadeClassifier(str(self.path))
        except (cv2.error, SystemError) as exc:
            # OpenCV's parse error is buried in a C++ trace; the sentence that matters is this one.
            raise DetectorError(f"{self.path}: not an OpenCV cascade (the XML could not be parsed)") from exc
        if self.cascade.empty():
            raise DetectorError(f"{self.path}: not an OpenCV cascade (the XML could not be loaded)")
        self.window = max(self.cascade.getOriginalWindowSize())
        o = self.options
        self.second = HaarDetector(replace(o, cascade=o.verify_cascade, min_neighbors=o.verify_neighbors,
                                           verify_cascade="", verify_model="")) if o.verify_cascade else None
        self.verifier = load_verifier(o.verify_model, o.verify_threshold)

    def detect(self, gray: np.ndarray) -> list[Box]:
        check_gray(gray)
        o = self.options
        width = gray.shape[1]
        scale = min(1.0, o.detect_width / width) if o.detect_width else 1.0
        small = _resize(gray, scale)
        min_side = max(self.window, round(least_face(o.min_size, gray.shape) * scale))
        boxes = self._find(small, min_side, 0, (True, True, True, True), min(small.shape))
        return [_clip(b.scaled(1.0 / scale), gray.shape) for b in boxes]

    def detect_in(self, gray: np.ndarray, region: Box, sizes: tuple[int, int] | None = None,
                  fine: bool = False) -> list[Box]:
        """As FaceDetector.detect_in, at the scale of a full-frame detection of `gray` (at full resolution only
        when `fine`: over a large region that costs more than the full-frame pass), trying only the face sizes
        asked for."""
        check_gray(gray)
        window = region.clipped(gray.shape[1], gray.shape[0])
        if window is None:
            return []
        o = self.options
        scale = min(1.0, o.detect_width / gray.shape[1]) if o.detect_width and not fine else 1.0
        small = _resize(gray[window.y : window.y + window.h, window.x : window.x + window.w], scale)
        least = least_face(o.min_size, gray.shape)
        lo, hi = (least, 0) if sizes is None else (max(least, sizes[0]), sizes[1])
        # The padded pass only where the window meets the frame's edge: elsewhere the frame holds the context.
        edges = (window.x == 0, window.y == 0, window.x + window.w == gray.shape[1],
                 window.y + window.h == gray.shape[0])
        boxes = self._find(small, max(self.window, round(lo * scale)), round(hi * scale), edges,
                           min(gray.shape) * scale)
        return [_clip(b.scaled(1.0 / scale).shifted(window.x, window.y), gray.shape) for b in boxes]

    def verify(self, gray: np.ndarray, box: Box) -> bool:
        """Whether the face verifier takes the crop at `box` for a face and the second cascade (verify_cascade),
        when there is one, finds a face of about the same size there."""
        if self.verifier is not None and not self.verifier.is_face(gray, box.as_list()):
            return False
        if self.second is None:
            return True
        side = max(box.w, box.h)
        found = self.second.detect_in(gray, box.grown(0.25), (round(side * 0.7), round(side * 1.4)))
        return any(box.iou(b) >= 0.4 for b in found)

    def _find(self, gray: np.ndarray, min_side: int, max_side: int, edges: tuple[bool, bool, bool, bool],
              frame_side: float) -> list[Box]:
        """The plain pass over `gray` and the padded pass (HaarOptions.pad) for faces of at least pad_from of
        `frame_side` (the frame's shorter side at this scale), over the sides in `edges` (left, top, right,
        bottom) that are the frame's; a padded find replaces the plain finds of the same face."""
        o = self.options
        if not o.pad or not any(edges):
            return self._run(gray, min_side, max_side)
        large = max(min_side, round(o.pad_from * frame_side))
        plain = self._run(gray, min_side, max_side) if large > min_side else []
        if max_side and max_side < large:
            return plain
        h, w = gray.shape
        left, top, right, bottom = (round(o.pad * side) * on for side, on in zip((w, h, w, h), edges))
        padded = cv2.copyMakeBorder(gray, top, bottom, left, right, cv2.BORDER_REPLICATE)
        found = []
        for b in self._run(padded, large, max_side):
            b = b.shifted(-left, -top)
            inside = b.clipped(w, h)
            # At least half inside the frame, as the pipeline keeps a face.
            if inside is None or 2 * inside.area < b.area:
                continue
            same = [p for p in plain if _same_face(inside, p)]
            if same and b.x >= 0 and b.y >= 0 and b.x + b.w <= w and b.y + b.h <= h:
                continue  # within the frame: the plain pass had the context it needs, and its box is kept
            plain = [p for p in plain if p not in same]
            found.append(Box(inside.x, inside.y, inside.w, inside.h, b.score))
        return plain + found

    def _run(self, gray: np.ndarray, min_side: int, max_side: int = 0) -> list[Box]:
        if min(gray.shape) < min_side or (max_side and max_side < min_side):
            return []
        if self.options.equalize:
            # Haar features are contrast differences; equalising makes dim or flat-lit faces count.
            gray = cv2.equalizeHist(gray)
        # detectMultiScale3 finds the same boxes as detectMultiScale, with each one's last-stage weight: how
        # far past the cascade's last threshold the face is, the box's score.
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=self.options.scale_factor, minNeighbors=self.options.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side), outputRejectLevels=True,
        )
        return [Box(int(x), int(y), int(w), int(h), float(s)) for (x, y, w, h), s in zip(rects, np.ravel(weights))]


def _same_face(padded: Box, plain: Box) -> bool:
    """Whether a padded pass's box and a plain pass's box are one face: they overlap by a third, or the smaller
    lies mostly inside the other (the plain box of a face that fills the frame sits inside the padded one)."""
    return padded.iou(plain) >= 0.3 or padded.overlap(plain) >= 0.7


def check_gray(gray: np.ndarray) -> np.ndarray:
    """`gray` when it is what every detector takes (a 2-D uint8 image), else a ValueError saying what it is."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detector needs a 2-D uint8 grayscale image, got {gray.dtype} of shape {gray.shape}")
    return gray


def _clip(box: Box, shape: tuple[int, ...]) -> Box:
    """`box` cut to the image of `shape` (its score kept); a box of a padded pass always overlaps the image."""
    inside = box.clipped(shape[1], shape[0])
    return Box(inside.x, inside.y, inside.w, inside.h, box.score)


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return gray
    h, w = gray.shape
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
