"""Quantisation round trips, tried over every representable value and many scales and zero points.

dequantize(q) = scale * (q - zero_point); quantize(x) = round(x / scale) + zero_point, clipped to the dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.interpreter import TensorInfo, dequantize, quantize


@st.composite
def quantised_tensors(draw):
    dtype = np.dtype(draw(st.sampled_from([np.int8, np.uint8])))
    limits = np.iinfo(dtype)
    zero_point = draw(st.integers(int(limits.min), int(limits.max)))
    # Scales as a .tflite stores them: float32.
    scale = float(np.float32(draw(st.floats(1e-4, 100.0))))
    return TensorInfo(0, (1, 256), dtype, scale, zero_point)


def every_value(info: TensorInfo) -> np.ndarray:
    limits = np.iinfo(info.dtype)
    return np.arange(limits.min, limits.max + 1).astype(info.dtype).reshape(1, -1)


@settings(max_examples=300, deadline=None)
@given(quantised_tensors())
def test_every_representable_value_round_trips(info):
    q = every_value(info)
    x = dequantize(q, info)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, info.scale * (q.astype(np.float64) - info.zero_point), rtol=1e-6, atol=0)
    back = quantize(x, info)
    assert back.dtype == info.dtype
    np.testing.assert_array_equal(back, q)


@settings(max_examples=200, deadline=None)
@given(quantised_tensors(), st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=20))
def test_quantising_is_off_by_at_most_half_a_step_inside_the_range_and_clips_outside(info, values):
    x = np.array(values, np.float32)
    q = quantize(x, info)
    limits = np.iinfo(info.dtype)
    low, high = info.scale * (limits.min - info.zero_point), info.scale * (limits.max - info.zero_point)
    error = np.abs(dequantize(q, info) - x)
    inside = (x >= low) & (x <= high)
    assert (error[inside] <= info.scale * 0.5 * (1 + 1e-5) + 1e-6).all()
    assert (q[x < low] == limits.min).all() and (q[x > high] == limits.max).all()


@pytest.mark.parametrize(("dtype", "zero_point"), [(np.int8, -128), (np.int8, 0), (np.uint8, 0), (np.uint8, 128)])
def test_dequantize_counts_from_the_zero_point(dtype, zero_point):
    info = TensorInfo(0, (3,), np.dtype(dtype), 1 / 256, zero_point)
    q = np.array([zero_point, zero_point + 1, np.iinfo(dtype).max], dtype)
    np.testing.assert_array_equal(dequantize(q, info), [0.0, 1 / 256, (np.iinfo(dtype).max - zero_point) / 256])


def test_pixels_take_the_fast_path_only_where_it_is_exact():
    pixels = np.arange(256, dtype=np.uint8)
    int8_input = TensorInfo(0, (256,), np.dtype(np.int8), 1.0, -128)
    np.testing.assert_array_equal(quantize(pixels, int8_input), np.arange(-128, 128))
    uint8_input = TensorInfo(0, (256,), np.dtype(np.uint8), 1.0, 0)
    assert quantize(pixels, uint8_input) is pixels
    # Scale 1 but another zero point: the general formula, clipped.
    shifted = TensorInfo(0, (256,), np.dtype(np.int8), 1.0, -100)
    np.testing.assert_array_equal(quantize(pixels, shifted), np.clip(np.arange(256) - 100, -128, 127))
    shifted_uint8 = TensorInfo(0, (256,), np.dtype(np.uint8), 1.0, 3)
    np.testing.assert_array_equal(quantize(pixels, shifted_uint8), np.clip(np.arange(256) + 3, 0, 255))
    # Rounds to the nearest step, half to even like the TFLite reference.
    half = TensorInfo(0, (4,), np.dtype(np.int8), 2.0, 0)
    np.testing.assert_array_equal(quantize(np.array([1.0, 3.0, 2.9, -2.9], np.float32), half), [0, 2, 1, -1])


def test_unquantised_tensors_pass_values_through():
    floats = TensorInfo(0, (2,), np.dtype(np.float32), 0.0, 0)
    values = np.array([0.25, 300.0], np.float32)
    assert quantize(values, floats) is values and dequantize(values, floats) is values
    assert not floats.quantized
    # An int8 tensor without a scale is not quantised: its values are taken as they are.
    raw = TensorInfo(0, (2,), np.dtype(np.int8), 0.0, 0)
    assert not raw.quantized
    np.testing.assert_array_equal(dequantize(np.array([3, -4], np.int8), raw), [3.0, -4.0])
    assert dequantize(np.array([3, -4], np.int8), raw).dtype == np.float32
    assert TensorInfo(0, (2,), np.dtype(np.uint8), 0.5, 0).quantized
