"""The template follower on a real FER face over a textured backdrop, at the edges of the picture.

A face sliding out through an edge must be found where it is, partly outside the picture, so that its track's box
leaves the picture with it and the pipeline drops it (leave_below); a window cut at the edge held the match inside,
on what was left of the face or on the backdrop beside it, and the face lingered (issue 21).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.scenes import background, feather_mask
from edge_runtime.boxes import Box
from edge_runtime.follower import TemplateFollower, _masked_ncc

VAL_SAMPLE = Path(__file__).resolve().parents[2] / "convert" / "val_sample"
WIDTH, HEIGHT = 640, 480
FACES = sorted(VAL_SAMPLE.glob("*/*.jpg"))[::40]


def picture(face: np.ndarray, box: Box, seed: int) -> np.ndarray:
    """A 640x480 gray frame: a backdrop (the same for a seed) with `face` drawn at `box`, which may reach outside."""
    rng = np.random.default_rng(seed)
    frame = cv2.cvtColor(background(WIDTH, HEIGHT, rng), cv2.COLOR_BGR2GRAY).astype(np.float32)
    frame += cv2.GaussianBlur(rng.normal(0.0, 12.0, frame.shape).astype(np.float32), (0, 0), 1.5)
    inside = box.clipped(WIDTH, HEIGHT)
    if inside is not None:
        up = cv2.resize(face, (box.w, box.h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        alpha = feather_mask(box.w)
        ys = slice(inside.y - box.y, inside.y - box.y + inside.h)
        xs = slice(inside.x - box.x, inside.x - box.x + inside.w)
        roi = frame[inside.y : inside.y + inside.h, inside.x : inside.x + inside.w]
        roi[:] = roi * (1.0 - alpha[ys, xs]) + up[ys, xs] * alpha[ys, xs]
    return np.clip(frame, 0, 255).astype(np.uint8)


def out_through(edge: str, side: int, out: float, across: int) -> Box:
    """A side x side box with `out` of it beyond `edge` of the picture, `across` pixels along that edge."""
    shift = round(out * side)
    return {"top": Box(across, -shift, side, side), "bottom": Box(across, HEIGHT - side + shift, side, side),
            "left": Box(-shift, across, side, side), "right": Box(WIDTH - side + shift, across, side, side)}[edge]


@settings(max_examples=60, deadline=None)
@given(face=st.sampled_from(FACES), edge=st.sampled_from(["top", "bottom", "left", "right"]),
       side=st.integers(100, 170), out=st.floats(0.0, 0.45), across=st.floats(0.0, 1.0), seed=st.integers(0, 50),
       error=st.tuples(st.floats(-0.1, 0.1), st.floats(-0.1, 0.1)))
def test_a_face_partly_out_through_an_edge_is_found_where_it_is(face, edge, side, out, across, seed, error):
    pixels = cv2.imread(str(face), cv2.IMREAD_GRAYSCALE)
    room = (WIDTH if edge in ("top", "bottom") else HEIGHT) - side
    now = out_through(edge, side, out, round(across * room))
    before = Box(WIDTH // 2 - side // 2, HEIGHT // 2 - side // 2, side, side)
    follower = TemplateFollower()
    follower.remember(1, picture(pixels, before, seed), before)
    guess = now.shifted(error[0] * side, error[1] * side)  # where the track expects it, a little off
    found = follower.follow(1, picture(pixels, now, seed), guess)
    assert found is not None, (now, guess)
    # Found where it is (a pixel of the 32-px template is side / 32 pixels), not held inside the picture.
    assert abs(found.x - now.x) <= side / 16 and abs(found.y - now.y) <= side / 16, (found, now)


def test_a_face_found_partly_out_leaves_the_picture_with_its_box():
    """A face that slides up out of the picture in steps of 10 pixels: its followed box leaves with it, below
    half inside as the face is (the old cut window kept the box at y >= 0 and it never counted as gone)."""
    pixels = cv2.imread(str(FACES[0]), cv2.IMREAD_GRAYSCALE)
    follower = TemplateFollower()
    box = Box(250, 40, 140, 140)
    follower.remember(1, picture(pixels, box, seed=3), box)
    guess = box
    for y in range(30, -80, -10):
        now = Box(250, y, 140, 140)
        found = follower.follow(1, picture(pixels, now, seed=3), guess)
        assert found is not None and abs(found.y - y) <= 140 / 16, (found, now)
        guess = found.shifted(0, -10)
    assert found.clipped(WIDTH, HEIGHT).area < 0.5 * found.area


@pytest.mark.parametrize("seed", range(5))
def test_masked_correlation_over_a_whole_window_is_opencvs(seed):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (52, 50)).astype(np.uint8), (5, 5), 0)
    template = image[9:41, 7:39].copy()
    ours = _masked_ncc(image.astype(np.float32), (0, 52), (0, 50), template, 0.25)
    np.testing.assert_allclose(ours, cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED), atol=1e-4)
