"""Following a detected face between full detections by template matching.

At its last detection a face's appearance is kept as a small template; in later frames it
is found again by normalised cross-correlation in a window around where its track is
heading. On a 640x480 frame that costs a fraction of a millisecond per face, against tens
of milliseconds for a full Haar pass, and the template never drifts because it is renewed
only by the detector.
"""

from __future__ import annotations

import math
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
            oy, ox = inside.y - window.y, inside.x - window.x
            canvas = np.zeros((window.h, window.w), np.float32)
            canvas[oy : oy + inside.h, ox : ox + inside.w] = region
            small = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
            # The shrunk window's pixels wholly inside the picture (INTER_AREA: pixel j covers [j, j + 1) / f).
            fy, fx = size[1] / window.h, size[0] / window.w
            rows = (math.ceil(oy * fy - 1e-6), math.floor((oy + inside.h) * fy + 1e-6))
            cols = (math.ceil(ox * fx - 1e-6), math.floor((ox + inside.w) * fx + 1e-6))
            if rows[1] <= rows[0] or cols[1] <= cols[0]:
                return None
            small[: rows[0]], small[rows[1] :], small[:, : cols[0]], small[:, cols[1] :] = 0, 0, 0, 0
            scores = _masked_ncc(small, rows, cols, tpl.pixels, self.min_inside)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best < (self.min_score if min_score is None else min_score):
            return None
        return Box(round(window.x + x / scale - tpl.dx), round(window.y + y / scale - tpl.dy), tpl.width, tpl.height)

    def forget(self, tracks: Iterable[int]) -> None:
        for t in tracks:
            self._templates.pop(t, None)

    def reset(self) -> None:
        self._templates.clear()


def _masked_ncc(image: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], template: np.ndarray,
                least: float) -> np.ndarray:
    """TM_CCOEFF_NORMED of `template` at each place in `image`, over only its pixels in rows [rows) and columns
    [cols) of `image` (float32, 0 elsewhere); -1 where less than `least` of the template (and never fewer than 16
    pixels: the correlation of a few says nothing) lies there."""
    th, tw = template.shape
    ny, nx = image.shape[0] - th + 1, image.shape[1] - tw + 1
    t = template.astype(np.float32) * np.float32(1 / 255)
    t -= t.mean()
    i = image * np.float32(1 / 255)
    # Per place, which of the template's rows and columns lie on the valid rectangle (0/1 matrices): the sums of
    # the template over its valid part are then two small products.
    y, x = np.arange(ny)[:, None], np.arange(nx)[:, None]
    r, c = np.arange(th), np.arange(tw)
    on_rows = ((r >= rows[0] - y) & (r < rows[1] - y)).astype(np.float32)
    on_cols = ((c >= cols[0] - x) & (c < cols[1] - x)).astype(np.float32)
    n = np.outer(on_rows.sum(1), on_cols.sum(1))
    count = np.maximum(n, 1.0)
    sum_t, sum_tt = on_rows @ t @ on_cols.T, on_rows @ (t * t) @ on_cols.T
    # The image is 0 off the rectangle: its sums over the whole template's place are its sums over the valid part.
    ones = np.ones_like(t)
    sum_i, sum_ii = cv2.matchTemplate(i, ones, cv2.TM_CCORR), cv2.matchTemplate(i * i, ones, cv2.TM_CCORR)
    sum_it = cv2.matchTemplate(i, t, cv2.TM_CCORR)
    var = np.maximum(sum_ii - sum_i * sum_i / count, 0.0) * np.maximum(sum_tt - sum_t * sum_t / count, 0.0)
    scores = (sum_it - sum_i * sum_t / count) / np.sqrt(np.maximum(var, 1e-12))
    scores[(n < max(least * t.size, 16)) | (var < 1e-9)] = -1.0
    return scores
