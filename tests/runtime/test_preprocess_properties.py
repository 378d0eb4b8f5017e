"""Crop geometry, stated and tried over many frames, boxes and margins.

The square crop has side (1 + 2 x margin) x the face's longer side, keeps the face's centre, and
where it reaches past the frame the border pixels are replicated. The oracle is independent of
the code under test: the frame padded on every side with numpy's edge mode, then sliced.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge_runtime.preprocess import Preprocessing, preprocess_face, preprocess_faces, square_box, to_gray


@st.composite
def frames_and_boxes(draw):
    h, w = draw(st.integers(8, 60)), draw(st.integers(8, 60))
    seed = draw(st.integers(0, 2**16))
    frame = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    bw, bh = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    x, y = draw(st.integers(-bw + 1, w - 1)), draw(st.integers(-bh + 1, h - 1))  # overlaps the frame
    margin = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]))
    return frame, (x, y, bw, bh), margin


@settings(max_examples=200, deadline=None)
@given(frames_and_boxes())
def test_crop_is_the_square_around_the_face_with_replicated_border(case):
    frame, box, margin = case
    x0, y0, side, side_y = square_box(box, margin)
    x, y, w, h = box
    assert side == side_y == max(1, round(max(w, h) * (1 + 2 * margin)))
    # Same centre, up to rounding to whole pixels.
    assert abs((x0 + side / 2) - (x + w / 2)) <= 1.0 and abs((y0 + side / 2) - (y + h / 2)) <= 1.0
    assume(x0 < frame.shape[1] and y0 < frame.shape[0] and x0 + side > 0 and y0 + side > 0)
    # At the crop's own side there is no resize: the pixels are the padded frame's, one for one.
    pad = side + 2
    padded = np.pad(frame, pad, mode="edge")
    expected = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    np.testing.assert_array_equal(preprocess_face(frame, box, size=side, margin=margin), expected)


@settings(max_examples=100, deadline=None)
@given(frames_and_boxes(), st.sampled_from([16, 48]))
def test_a_box_inside_the_frame_crops_only_frame_pixels(case, size):
    frame, (x, y, w, h), margin = case
    x, y = max(0, x), max(0, y)
    w, h = min(w, frame.shape[1] - x), min(h, frame.shape[0] - y)
    side = max(w, h)
    assume(w == h and x + side <= frame.shape[1] and y + side <= frame.shape[0])
    out = preprocess_face(frame, (x, y, w, h), size=size)
    assert out.shape == (size, size) and out.dtype == np.uint8
    crop = frame[y : y + side, x : x + side]
    # Resizing never makes a pixel darker than the darkest or brighter than the brightest of the crop.
    assert crop.min() <= out.min() and out.max() <= crop.max()


def test_margin_scales_the_side_on_both_sides_of_the_face():
    # A 20 px face with margin 0.25 gets 5 px of context on every side: 30 px in all.
    assert square_box((40, 40, 20, 20), 0.25) == (35, 35, 30, 30)
    assert square_box((40, 40, 20, 10), 0.5) == (30, 25, 40, 40)  # the longer side sets the square
    assert square_box((0, 0, 0.4, 0.4), 0.0) == (0, 0, 1, 1)  # never an empty crop


def test_margin_in_a_frame_the_face_fills():
    # A vertical ramp: each row's value is its index, so the rows a crop covers can be read back.
    frame = np.repeat(np.arange(60, dtype=np.uint8)[:, None], 60, axis=1)
    out = preprocess_face(frame, (20, 20, 20, 20), size=40, margin=0.5)
    # Side 40 around centre 30: rows 10..49, one crop row per frame row.
    np.testing.assert_array_equal(out[:, 0], np.arange(10, 50))
    edge = preprocess_face(frame, (0, 0, 20, 20), size=40, margin=0.5)
    # Rows -10..29: the first ten replicate row 0.
    np.testing.assert_array_equal(edge[:, 5], np.r_[np.zeros(10), np.arange(30)].astype(np.uint8))


def test_growing_a_tiny_crop_is_smooth_and_shrinking_a_large_one_averages():
    frame = np.zeros((40, 40), np.uint8)
    frame[:, 20:] = 200
    up = preprocess_face(frame[18:22, 18:22], size=8)
    # Linear interpolation puts in-between values at the step; nearest-neighbour would not.
    assert set(np.unique(up)) - {0, 200}
    stripes = np.zeros((96, 96), np.uint8)
    stripes[:, ::2] = 255
    # Area averaging of 1-pixel stripes gives their mean grey, not a stripe pattern.
    down = preprocess_face(stripes, size=48)
    assert np.abs(down.astype(int) - 128).max() <= 1


def test_grey_conversions():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # pure red
    assert to_gray(bgr)[0, 0] == 76  # ITU-R 601 luma of red
    bgra = np.dstack([bgr, np.full((4, 4), 7, np.uint8)])
    assert to_gray(bgra)[0, 0] == 76
    assert to_gray(bgr[..., :1]).shape == (4, 4)
    assert to_gray(np.full((2, 2), 0.5)).tolist() == [[127, 127], [127, 127]]  # 0..1 floats scale to 0..255
    assert to_gray(np.full((2, 2), 1.0))[0, 0] == 255
    assert to_gray(np.full((2, 2), 300.0))[0, 0] == 255 and to_gray(np.full((2, 2), -4.0))[0, 0] == 0
    assert to_gray(np.array([[np.nan, 2.0]]))[0].tolist() == [0, 2]
    assert to_gray(np.zeros((3, 0))).shape == (3, 0)
    ints = np.array([[5, 400]], np.int32)
    assert to_gray(ints).tolist() == [[5, 255]]
    assert to_gray(np.array([[0, 1]], np.int32)).tolist() == [[0, 1]]  # only floats are taken as 0..1


def test_empty_image_is_refused():
    with pytest.raises(ValueError, match="^image is empty$"):
        preprocess_face(np.zeros((0, 5), np.uint8))


def test_box_outside_the_frame_names_box_and_frame():
    with pytest.raises(ValueError, match=r"face box \(100, 5, 10, 10\) lies outside the 50x40 image"):
        preprocess_face(np.zeros((40, 50), np.uint8), (100, 5, 10, 10))
    with pytest.raises(ValueError, match=r"face box \(5, -30, 10, 10\) lies outside"):
        preprocess_face(np.zeros((40, 50), np.uint8), (5, -30, 10, 10))
    # Boxes that end exactly where the frame starts, or start exactly where it ends, hold no pixel.
    for box in [(5, -10, 10, 10), (5, 40, 10, 10), (-10, 5, 10, 10), (50, 5, 10, 10)]:
        with pytest.raises(ValueError, match="lies outside"):
            preprocess_face(np.zeros((40, 50), np.uint8), box)


@pytest.mark.parametrize("shape", [(144, 48), (48, 144), (144, 144)])
def test_shrinking_averages_whole_blocks(shape):
    # Shrinking by 3 along a side averages each 3 pixels (area interpolation): no pixel is skipped.
    image = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    ry, rx = shape[0] // 48, shape[1] // 48
    expected = image.reshape(48, ry, 48, rx).mean((1, 3))
    assert np.abs(preprocess_face(image).astype(float) - expected).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("shape", [(48, 30), (30, 48)])
def test_growing_one_side_interpolates(shape):
    image = np.zeros(shape, np.uint8)
    if shape[1] < 48:
        image[:, 15:] = 200
    else:
        image[15:, :] = 200
    # Linear interpolation leaves in-between values at the step, where area (nearest) would not.
    assert set(np.unique(preprocess_face(image))) - {0, 200}


def test_batch_uses_the_size_and_margin_it_is_given():
    frame = np.random.default_rng(1).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    batch = preprocess_faces(frame, [(10, 10, 20, 20)], size=24, margin=0.25)
    np.testing.assert_array_equal(batch[0], preprocess_face(frame, (10, 10, 20, 20), size=24, margin=0.25))
    assert not np.array_equal(batch[0], preprocess_face(frame, (10, 10, 20, 20), size=24))
    # No margin unless asked for.
    np.testing.assert_array_equal(preprocess_faces(frame, [(10, 10, 20, 20)])[0],
                                  preprocess_face(frame, (10, 10, 20, 20), margin=0.0))


def test_preprocessing_parameters_round_trip_and_ignore_unknown_keys():
    p = Preprocessing(size=64, margin=0.2, color="gray")
    assert p.to_dict() == {"size": 64, "margin": 0.2, "color": "gray"}
    assert Preprocessing.from_dict({**p.to_dict(), "equalize": True}) == p
    assert Preprocessing.from_dict({"color": "bgr"}).color == "bgr"
    assert Preprocessing.from_dict({"margin": 0.1}) == Preprocessing(margin=0.1)
    assert Preprocessing() == Preprocessing(size=48, margin=0.0, color="gray")
