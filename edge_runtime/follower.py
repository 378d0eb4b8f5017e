"""Following a detected face between full detections by template matching.

At its last detection a face's appearance is kept as a small template; in later frames it
is found again by normalised cross-correlation in a window around where its track is
heading. On a 640x480 frame that costs a fraction of a millisecond per face, against tens
of milliseconds for a full Haar pass, and the template never drifts because it is renewed
only by the detector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.boxes import Box


@dataclass(frozen=True)
class _Template:
    pixels: np.ndarray
    # The face box's size, and where the template (its part inside the frame) sits in it.
    width: int
    height: int
    dx: int
    dy: int


class TemplateFollower:
    """template: side in pixels faces are shrunk to for matching; search: how far (fraction of
    the face side, each way) around the predicted box to look; min_score: the least
    correlation (-1..1) that still counts as the same face."""

    def __init__(self, template: int = 32, search: float = 0.3, min_score: float = 0.6):
        if template < 8 or search <= 0 or not -1.0 < min_score < 1.0:
            raise ValueError(f"bad follower settings: template {template} (>= 8), search {search} (> 0), "
                             f"min_score {min_score} (in (-1, 1))")
        self.side, self.search, self.min_score = template, search, min_score
        self._templates: dict[int, _Template] = {}

    def remember(self, track: int, gray: np.ndarray, box: Box) -> None:
        """Keep how track `track` looks in `box` of `gray` (called when the detector confirms it).
        Of a face cut by the frame edge, the part inside is kept."""
        inside = box.clipped(gray.shape[1], gray.shape[0])
        if inside is None or min(inside.w, inside.h) < max(box.w, box.h) // 2:
            self._templates.pop(track, None)
            return
        crop = gray[inside.y : inside.y + inside.h, inside.x : inside.x + inside.w]
        scale = self.side / max(box.w, box.h)
        size = (max(4, round(inside.w * scale)), max(4, round(inside.h * scale)))
        pixels = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        self._templates[track] = _Template(pixels, box.w, box.h, inside.x - box.x, inside.y - box.y)

    def follow(self, track: int, gray: np.ndarray, guess: Box, min_score: float | None = None) -> Box | None:
        """Where the face of `track` is now, searching around `guess`; None if not found (matching less than
        `min_score`, default the follower's own)."""
        tpl = self._templates.get(track)
        if tpl is None:
            return None
        th, tw = tpl.pixels.shape
        scale = self.side / max(tpl.width, tpl.height)
        # The template's expected place: the guessed face centre, the face's size, the template's offset.
        expected = Box(round(guess.center[0] - tpl.width / 2 + tpl.dx),
                       round(guess.center[1] - tpl.height / 2 + tpl.dy), round(tw / scale), round(th / scale))
        pad = round(self.search * max(tpl.width, tpl.height))
        window = Box(expected.x - pad, expected.y - pad, expected.w + 2 * pad, expected.h + 2 * pad)
        window = window.clipped(gray.shape[1], gray.shape[0])
        if window is None:
            return None
        region = gray[window.y : window.y + window.h, window.x : window.x + window.w]
        small = cv2.resize(region, (max(1, round(window.w * scale)), max(1, round(window.h * scale))),
                           interpolation=cv2.INTER_AREA)
        if small.shape[0] < th or small.shape[1] < tw:
            return None
        scores = cv2.matchTemplate(small, tpl.pixels, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best < (self.min_score if min_score is None else min_score):
            return None
        return Box(round(window.x + x / scale - tpl.dx), round(window.y + y / scale - tpl.dy), tpl.width, tpl.height)

    def forget(self, tracks: Iterable[int]) -> None:
        for t in tracks:
            self._templates.pop(t, None)

    def reset(self) -> None:
        self._templates.clear()
