"""Presets: published parameter counts, input sizes, and normalisation inside the graph."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edge_runtime.labels import NUM_CLASSES  # noqa: E402
from train.architectures import ARCHITECTURES, build_model, count_macs, get_arch  # noqa: E402

_built: dict[str, keras.Model] = {}


def _model(name: str) -> keras.Model:
    # Each preset is built once per session; several tests look at the same model.
    if name not in _built:
        _built[name] = build_model(name)
    return _built[name]


def test_deep_cnn_matches_the_published_table():
    model = _model("deep_cnn")
    assert model.get_layer("conv2d_2").count_params() == 204_928  # 5x5x64x128 + 128
    assert model.get_layer("conv2d_4").count_params() == 2_359_808  # 3x3x512x512 + 512
    assert model.get_layer("dense_1").count_params() == 1_179_904  # 3x3x512x256 + 256


def test_default_fits_the_device_budget():
    assert _model("fer_vgg").count_params() <= 2_000_000


def test_multiply_adds_count_conv_depthwise_and_dense():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 8*8*4 outputs x 9 taps x 1 channel = 2304
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4*4 outputs x 9 taps = 576
    x = keras.layers.Conv2D(6, 1)(x)  # 4*4*6 outputs x 4 channels = 384
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(7)(x)  # 96 x 7 = 672
    assert count_macs(keras.Model(inp, out)) == 2304 + 576 + 384 + 672


def test_multiply_adds_count_separable_convs_as_depthwise_plus_pointwise():
    inp = keras.Input((8, 8, 3))
    out = keras.layers.SeparableConv2D(5, 3, strides=2, padding="same")(inp)  # 4*4*3*9 + 4*4*3*5 = 432 + 240
    assert count_macs(keras.Model(inp, out)) == 432 + 240


def test_faceapi_dense_is_face_apis_graph_at_96_px():
    model = _model("faceapi_dense")
    assert 33_000_000 <= count_macs(model) <= 40_000_000
    assert model.get_layer("resize").output.shape[1:3] == (96, 96)
    # 4 blocks x 4 convs; the first a plain conv on one grey channel, the rest depthwise-separable
    convs = [layer for layer in model.layers if layer.name.startswith("dense")]
    assert len(convs) == 16 and type(convs[0]).__name__ == "Conv2D"
    assert convs[0].kernel.shape == (3, 3, 1, 32)
    assert [c.filters for c in convs] == [32] * 4 + [64] * 4 + [128] * 4 + [256] * 4
    assert all(type(c).__name__ == "SeparableConv2D" for c in convs[1:])
    assert model.get_layer("probabilities").kernel.shape == (256, NUM_CLASSES)


def test_fer_mobile_is_ten_times_cheaper_than_fer_vgg():
    mobile, vgg = count_macs(_model("fer_mobile")), count_macs(_model("fer_vgg"))
    assert mobile <= 7_000_000 and vgg >= 10 * mobile, (mobile, vgg)
    assert _model("fer_mobile").count_params() <= 300_000
    # Only layer types the int8 converter and the Edge TPU compiler map (no SeparableConv2D, no
    # activations outside ReLU, no Flatten over a dynamic batch).
    kinds = {type(layer).__name__ for layer in _model("fer_mobile").layers}
    assert kinds <= {"InputLayer", "Rescaling", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
                     "GlobalAveragePooling2D", "Dropout", "Dense"}, kinds


def test_the_wide_student_sits_in_the_10_to_25_m_multiply_add_band_with_the_same_ops():
    wide = _model("fer_mobile_wide")
    assert 10_000_000 <= count_macs(wide) <= 25_000_000
    assert count_macs(wide) >= 2 * count_macs(_model("fer_mobile")) and wide.count_params() <= 1_000_000
    kinds = {type(layer).__name__ for layer in _model("fer_mobile").layers}
    assert {type(layer).__name__ for layer in wide.layers} == kinds


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_preset_input_size_and_uint8_range_normalisation(name):
    size = 100 if name == "valid_cnn_100" else 48
    assert get_arch(name).input_size == size
    model = _model(name)
    assert tuple(model.input_shape) == (None, size, size, 1)
    assert tuple(model.output_shape) == (None, NUM_CLASSES)

    # The first op maps the uint8 range onto [-1, 1]: black -> -1, white -> +1 (face-api's net keeps the range
    # its weights learnt: (pixel - mean) / 255).
    first = model.layers[1]
    assert isinstance(first, keras.layers.Rescaling)
    lo_hi = np.array([0, 255], np.float32).reshape(2, 1, 1, 1) * np.ones((1, size, size, 1), np.float32)
    expected = [-117 / 255, 138 / 255] if name == "faceapi_dense" else [-1.0, 1.0]
    np.testing.assert_allclose(np.asarray(first(lo_hi))[:, 0, 0, 0], expected, atol=1e-6)

    faces = np.random.default_rng(0).integers(0, 256, (2, size, size, 1)).astype(np.uint8)
    probs = np.asarray(model(faces.astype(np.float32), training=False))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_class_count_is_a_parameter():
    assert tuple(build_model("five_block_cnn", num_classes=3).output_shape) == (None, 3)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="fer_vgg") as info:
        get_arch("resnet")
    assert "resnet" in str(info.value)
