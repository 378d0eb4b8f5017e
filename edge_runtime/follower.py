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
    correlation (-1..1) that still counts as the same face; min_inside: the least fraction of
    the template inside the picture at a place for the face to be looked for there (keep it
    below the fraction at which the pipeline drops a face that is leaving, or a face going out
    is held at this limit instead of leaving)."""

    def __init__(self, template: int = 32, search: float = 0.3, min_score: float = 0.6, min_inside: float = 0.25):
        if template < 8 or search <= 0 or not -1.0 < min_score < 1.0 or not 0.0 <= min_inside <= 1.0:
            raise ValueError(f"bad follower settings: template {template} (>= 8), search {search} (> 0), "
                             f"min_score {min_score} (in (-1, 1)), min_inside {min_inside} (in [0, 1])")
        self.side, self.search, self.min_score, self.min_inside = template, search, min_score, min_inside
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
        inside = window.clipped(gray.shape[1], gray.shape[0])
        if inside is None:
            return None
        size = (max(1, round(window.w * scale)), max(1, round(window.h * scale)))
        if size[1] < th or size[0] < tw:
            return None
        region = gray[inside.y : inside.y + inside.h, inside.x : inside.x + inside.w]
        if inside == window:
            small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
            scores = cv2.matchTemplate(small, tpl.pixels, cv2.TM_CCOEFF_NORMED)
        else:
            # The window reaches outside the picture (a face at an edge, or sliding out through it): each place
            # is scored on the part of the face that lies inside there, so a face going out is found where it
            # is, partly outside, instead of being held at the edge by a window cut there, where the template
            # lands on what is left of the face or on the background beside it and its box never leaves the
            # picture. Places with less than min_inside of the template inside are not considered.
            canvas = np.zeros((window.h, window.w), np.float32)
            canvas[inside.y - window.y : inside.y - window.y + inside.h,
                   inside.x - window.x : inside.x - window.x + inside.w] = region
            valid = np.zeros_like(canvas)
            valid[inside.y - window.y : inside.y - window.y + inside.h,
                  inside.x - window.x : inside.x - window.x + inside.w] = 1.0
            valid = (cv2.resize(valid, size, interpolation=cv2.INTER_AREA) > 0.999).astype(np.float32)
            small = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA) * valid
            scores = _masked_ncc(small, valid, tpl.pixels, self.min_inside)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best < (self.min_score if min_score is None else min_score):
            return None
        return Box(round(window.x + x / scale - tpl.dx), round(window.y + y / scale - tpl.dy), tpl.width, tpl.height)

    def forget(self, tracks: Iterable[int]) -> None:
        for t in tracks:
            self._templates.pop(t, None)

    def reset(self) -> None:
        self._templates.clear()


def _masked_ncc(image: np.ndarray, valid: np.ndarray, template: np.ndarray, least: float) -> np.ndarray:
    """TM_CCOEFF_NORMED of `template` at each place in `image`, over only the pixels where `valid` is 1 (float32
    0/1 masks; `image` is 0 elsewhere); -1 where less than `least` of the template (and never fewer than 16
    pixels: the correlation of a few says nothing) would lie on valid pixels."""
    t = template.astype(np.float32) / 255.0
    t -= t.mean()
    i = image / 255.0

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.matchTemplate(a, b, cv2.TM_CCORR)

    ones = np.ones_like(t)
    n = corr(valid, ones)
    count = np.maximum(n, 1.0)
    sum_t, sum_tt = corr(valid, t), corr(valid, t * t)
    sum_i, sum_ii, sum_it = corr(i, ones), corr(i * i, ones), corr(i, t)
    var = np.maximum(sum_ii - sum_i * sum_i / count, 0.0) * np.maximum(sum_tt - sum_t * sum_t / count, 0.0)
    scores = (sum_it - sum_i * sum_t / count) / np.sqrt(np.maximum(var, 1e-12))
    scores[(n < max(least * t.size, 16)) | (var < 1e-9)] = -1.0
    return scores
