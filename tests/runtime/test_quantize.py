"""Quantisation of the model input and output: the uint8 fast path gives exactly the general formula."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.interpreter import TensorInfo, dequantize, quantize

PIXELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)


def _general(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    limits = np.iinfo(info.dtype)
    return np.clip(np.round(values.astype(np.float64) / info.scale) + info.zero_point, limits.min,
                   limits.max).astype(info.dtype)


@pytest.mark.parametrize("info", [
    TensorInfo(0, (1, 16, 16, 1), np.dtype(np.int8), 1.0, -128),  # fer-edge's int8 input
    TensorInfo(0, (1, 16, 16, 1), np.dtype(np.uint8), 1.0, 0),  # --io uint8
    TensorInfo(0, (1, 16, 16, 1), np.dtype(np.int8), 0.5, 3),  # another model's input: the general path
    TensorInfo(0, (1, 16, 16, 1), np.dtype(np.uint8), 2.0, 10),
])
def test_every_pixel_value_quantises_as_the_formula_says(info):
    for values in (PIXELS, PIXELS.astype(np.float32)):
        q = quantize(values, info)
        assert q.dtype == info.dtype
        np.testing.assert_array_equal(q, _general(values, info))


def test_int8_input_round_trips_every_pixel():
    info = TensorInfo(0, (1, 16, 16, 1), np.dtype(np.int8), 1.0, -128)
    np.testing.assert_array_equal(dequantize(quantize(PIXELS, info), info), PIXELS.astype(np.float32))


def test_float_tensor_passes_values_through_as_float():
    info = TensorInfo(0, (1, 16, 16, 1), np.dtype(np.float32), 0.0, 0)
    np.testing.assert_array_equal(quantize(PIXELS, info), PIXELS.astype(np.float32))
