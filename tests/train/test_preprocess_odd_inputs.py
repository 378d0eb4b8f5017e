"""The shared preprocessing on the inputs training data and cameras really produce."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.preprocess import preprocess_face, preprocess_faces, square_box, to_gray


def _random(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_bgr_is_read_as_bgr():
    bgr = np.zeros((60, 60, 3), np.uint8)
    bgr[:, :30] = (255, 0, 0)  # blue: 0.114 * 255
    bgr[:, 30:] = (0, 0, 255)  # red: 0.299 * 255
    out = preprocess_face(bgr)
    assert out.shape == (48, 48) and out.dtype == np.uint8
    assert (out[:, :20] == 29).all() and (out[:, 28:] == 76).all()


def test_bgra_ignores_alpha_and_matches_bgr():
    bgr = _random((50, 70, 3))
    bgra = np.dstack([bgr, _random((50, 70), seed=1)])
    np.testing.assert_array_equal(preprocess_face(bgra), preprocess_face(bgr))
    np.testing.assert_array_equal(to_gray(bgra), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


def test_single_channel_hxwx1_is_gray():
    gray = _random((48, 48))
    np.testing.assert_array_equal(preprocess_face(gray[:, :, None]), gray)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_unit_range_match_their_uint8_source(dtype):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_gray(gray.astype(dtype) / 255), gray)
    bgr = _random((48, 48, 3))
    np.testing.assert_array_equal(preprocess_face(bgr.astype(dtype) / 255), preprocess_face(bgr))


def test_float_images_in_uint8_range_are_not_rescaled():
    gray = np.full((48, 48), 200.0, np.float32)
    assert (preprocess_face(gray) == 200).all()


def test_tiny_image_is_upsampled_keeping_its_layout():
    tiny = np.array([[0, 50, 100, 150, 200]] * 3, np.uint8)  # 5 wide, 3 high
    out = preprocess_face(tiny)
    assert out.shape == (48, 48) and out.dtype == np.uint8
    assert (np.diff(out.astype(int), axis=1) >= 0).all()  # still dark on the left, bright on the right
    assert out[:, 0].max() <= 10 and out[:, -1].min() >= 190
    assert np.ptp(out.astype(int), axis=0).max() <= 1  # rows stay alike (OpenCV's fixed-point rounding)


def test_non_square_box_gives_a_square_crop_on_a_non_square_frame():
    frame = _random((90, 160, 3))
    assert square_box((10, 20, 40, 20), 0.0) == (10, 10, 40, 40)
    out = preprocess_face(frame, (100, 30, 48, 24))
    np.testing.assert_array_equal(out, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[18:66, 100:148])


def test_box_past_the_left_edge_replicates_the_border():
    gray = _random((100, 100))
    out = preprocess_face(gray, (-24, 10, 48, 48))
    assert out.shape == (48, 48)
    np.testing.assert_array_equal(out[:, 24:], gray[10:58, 0:24])  # the in-frame part, not stretched
    np.testing.assert_array_equal(out[:, :24], np.repeat(gray[10:58, 0:1], 24, axis=1))


def test_box_past_the_bottom_right_corner_keeps_proportions():
    gray = _random((60, 60), seed=2)
    out = preprocess_face(gray, (30, 40, 48, 48))  # 30 columns and 20 rows are inside
    np.testing.assert_array_equal(out[:20, :30], gray[40:60, 30:60])
    np.testing.assert_array_equal(out[20:, :30], np.repeat(gray[59:60, 30:60], 28, axis=0))
    np.testing.assert_array_equal(out[:20, 30:], np.repeat(gray[40:60, 59:60], 18, axis=1))


def test_partly_outside_box_is_padded_then_resized():
    gray = np.zeros((100, 100), np.uint8)
    gray[:, :48] = 255  # bright left part of the frame
    # A 96 px crop from x=-20: 20 replicated + 48 bright + 28 dark columns, halved to 48.
    out = preprocess_face(gray, (-20, 0, 96, 96))
    assert out.shape == (48, 48)
    assert (out[:, :34] == 255).all() and (out[:, 34:] == 0).all()


@pytest.mark.parametrize("box", [(100, 0, 20, 20), (-30, 10, 30, 30), (10, 200, 40, 40),
                                 (-500, -500, 50, 50)])
def test_box_fully_outside_is_refused(box):
    with pytest.raises(ValueError, match="outside"):
        preprocess_face(_random((100, 100)), box)


@pytest.mark.parametrize("box", [(10, 10, 0, 20), (10, 10, 20, 0), (10, 10, -5, 20)])
def test_box_without_area_is_refused(box):
    with pytest.raises(ValueError, match="no area"):
        preprocess_face(_random((100, 100)), box)


def test_margin_grows_the_crop():
    frame = np.full((200, 200), 255, np.uint8)
    frame[50:150, 50:150] = 0  # a dark face in a bright frame
    box = (50, 50, 100, 100)
    assert (preprocess_face(frame, box) == 0).all()
    assert square_box(box, 0.25) == (25, 25, 150, 150)
    out = preprocess_face(frame, box, margin=0.25)
    assert out[0, 0] == 255 and out[24, 24] == 0
    bright = (out == 255).mean()
    assert bright == pytest.approx(1 - (100 / 150) ** 2, abs=0.05)


def test_empty_image_and_bad_channel_counts_are_refused():
    with pytest.raises(ValueError, match="empty"):
        preprocess_face(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError, match="2 channels"):
        to_gray(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((2, 4, 4, 3), np.uint8))


def test_batch_matches_one_face_at_a_time():
    frame = _random((120, 160, 3), seed=3)
    boxes = [(10, 10, 40, 50), (130, 90, 60, 60), (60, 20, 30, 30)]
    batch = preprocess_faces(frame, boxes, margin=0.1)
    assert batch.shape == (3, 48, 48) and batch.dtype == np.uint8
    for crop, box in zip(batch, boxes, strict=True):
        np.testing.assert_array_equal(crop, preprocess_face(frame, box, margin=0.1))
    assert preprocess_faces(frame, []).shape == (0, 48, 48)
