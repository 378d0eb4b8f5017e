"""What changed since the last frame, from a tiny thumbnail: a cut (the camera switched scenes or was
bumped) or motion outside the faces already tracked (someone entering, a hand taken off a face).

Comparing 80x60 thumbnails costs a few hundredths of a millisecond, against milliseconds for a Haar
pass, so the pipeline can run full detection when the picture changes rather than only on a fixed
schedule. Both comparisons leave out the tracked faces and are blind to the light: each thumbnail is
normalised to zero mean and unit contrast first, so a lamp switched on is neither a cut nor motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.boxes import Box

THUMB = (80, 60)


@dataclass(frozen=True)
class Change:
    """cut: the picture as a whole is another one; moving: the part of the frame (in its pixels) where
    something moved outside the given boxes, or None."""

    cut: bool
    moving: Box | None


class ChangeDetector:
    """cut_below: a cut when the correlation of this thumbnail with the last one falls below this (1 = the
    same picture, 0 = unrelated); motion: the least change of a thumbnail cell, in units of the picture's
    contrast (standard deviation), that counts as motion (0: motion is not looked for)."""

    def __init__(self, cut_below: float = 0.6, motion: float = 0.25):
        if not -1.0 <= cut_below <= 1.0 or motion < 0:
            raise ValueError(f"bad change settings: cut_below {cut_below} (in [-1, 1]), motion {motion} (>= 0)")
        self.cut_below, self.motion = cut_below, motion
        self._last: np.ndarray | None = None

    def update(self, gray: np.ndarray, tracked: Sequence[Box] = ()) -> Change:
        """Compare `gray` with the previous frame outside the `tracked` boxes (the faces followed): their
        moving is no cut and no motion to look at, and in a close-up they would dominate the picture."""
        thumb = cv2.resize(gray, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        last, self._last = self._last, thumb
        if last is None:
            return Change(True, None)
        scene = np.ones(thumb.shape, bool)
        sx, sy = gray.shape[1] / THUMB[0], gray.shape[0] / THUMB[1]
        for box in tracked:
            b = box.grown(0.2)
            scene[max(0, int(b.y / sy)) : max(0, int(np.ceil((b.y + b.h) / sy))),
                  max(0, int(b.x / sx)) : max(0, int(np.ceil((b.x + b.w) / sx)))] = False
        if scene.mean() < 0.1:
            # Faces fill the picture: too little background to judge.
            return Change(False, None)
        now, before = _normalised(thumb, scene), _normalised(last, scene)
        if float((now * before)[scene].mean()) < self.cut_below:
            return Change(True, None)
        if not self.motion:
            return Change(False, None)
        moved = (np.abs(now - before) > self.motion) & scene
        # One moving cell is noise; motion worth a look covers a few neighbouring cells.
        moved = cv2.morphologyEx(moved.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        points = cv2.findNonZero(moved)
        if points is None:
            return Change(False, None)
        x, y, w, h = cv2.boundingRect(points)
        return Change(False, Box(int(x * sx), int(y * sy), int(np.ceil(w * sx)), int(np.ceil(h * sy))))

    def reset(self) -> None:
        self._last = None


def _normalised(thumb: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The thumbnail at zero mean and unit contrast over `cells`: blind to the light."""
    values = thumb[cells]
    return (thumb - values.mean()) / max(float(values.std()), 1.0)
