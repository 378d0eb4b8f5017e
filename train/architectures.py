"""Network presets (`--arch NAME`). Every model takes uint8-range grayscale input and
normalises inside the graph, so the int8 input quantisation is exact.

Only int8- and Edge-TPU-friendly ops: conv, BN (folded into conv by the converter),
ReLU, pooling, dense, dropout (gone at inference) and softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers


@dataclass(frozen=True)
class Arch:
    name: str
    build: Callable[[int, int], keras.Model]
    input_size: int
    description: str
    # The optimiser the source describes; None = the trainer's default (AdamW + warm-up + cosine).
    optimizer: str | None = None
    learning_rate: float | None = None


def _inputs(size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inp = keras.Input((size, size, 1), name="face")
    # uint8 range -> [-1, 1]; with scale 1 and zero point -128 the int8 input is exactly pixel - 128.
    return inp, layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(inp)


def _conv_bn_relu(x, filters: int, kernel: int = 3, padding: str = "same", name: str | None = None,
                  strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _head(x, num_classes: int):
    # float32 even under a mixed-precision policy: softmax and the loss need its range and precision.
    return layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)


def _vgg(num_classes: int, size: int, widths: tuple[int, int, int, int], name: str) -> keras.Model:
    """Four stages of two 3x3 conv-BN-ReLU and a max-pool, then the flattened 3x3 map (faces are aligned,
    position matters) into FC 256 with BN."""
    inp, x = _inputs(size)
    for stage, (filters, drop) in enumerate(zip(widths, (0.0, 0.05, 0.1, 0.2)), start=1):
        x = _conv_bn_relu(x, filters, name=f"stage{stage}_conv1")
        x = _conv_bn_relu(x, filters, name=f"stage{stage}_conv2")
        x = layers.MaxPooling2D(2)(x)
        if drop:
            x = layers.Dropout(drop)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inp, _head(x, num_classes), name=name)


def fer_vgg(num_classes: int = 7, size: int = 48) -> keras.Model:
    """The accurate model: VGG-style, four stages of two 3x3 conv-BN-ReLU (32..256), max-pool,
    then a flattened 3x3x256 map into FC 256. About 1.8 M parameters, ~118 M multiply-adds per face."""
    return _vgg(num_classes, size, (32, 64, 128, 256), "fer_vgg")


def fer_vgg_slim(num_classes: int = 7, size: int = 48) -> keras.Model:
    """fer_vgg with three quarters of its channels in every conv (24..192): ~1.0 M parameters and ~67 M
    multiply-adds. Meant to start from a trained fer_vgg pruned to its most important channels
    (`fer-edge train --arch fer_vgg_slim --init models/fer_cnn.keras`, train/prune.py)."""
    return _vgg(num_classes, size, (24, 48, 96, 192), "fer_vgg_slim")


def fer_vgg_lean(num_classes: int = 7, size: int = 48) -> keras.Model:
    """fer_vgg_slim with 16 channels in its 48x48 stage (16-48-96-192): ~58 M multiply-adds. That stage holds
    a fifth of the multiply-adds but more of the int8 time (the largest activations); at 16 channels a face costs
    0.85x fer_vgg_slim's time. Meant to start from a trained fer_vgg_slim (or fer_vgg) pruned into it with --init."""
    return _vgg(num_classes, size, (16, 48, 96, 192), "fer_vgg_lean")


def _separable(x, filters: int, stride: int = 1):
    """Depthwise 3x3 then pointwise 1x1, each with BN and ReLU (the MobileNet v1 block)."""
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    return _conv_bn_relu(x, filters, kernel=1)


def _mobile(num_classes: int, size: int, width: float, name: str) -> keras.Model:
    inp, x = _inputs(size)
    x = _conv_bn_relu(x, int(16 * width), strides=2, name="stem")
    for filters, blocks, stride in ((32, 2, 1), (64, 2, 2), (128, 3, 2), (256, 3, 2)):
        filters = int(filters * width)
        x = _separable(x, filters, stride)
        for _ in range(blocks - 1):
            x = layers.Add()([x, _separable(x, filters)])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inp, _head(x, num_classes), name=name)


def fer_mobile(num_classes: int = 7, size: int = 48) -> keras.Model:
    """The edge default: a stride-2 3x3 stem (16 channels) then depthwise-separable stages of
    32, 64, 128 and 256 channels (2, 2, 3, 3 blocks). Every stage after the first starts by
    halving the map; a stage's later blocks are residual. Global average pooling, dropout, softmax.
    About 0.23 M parameters and 5.3 M multiply-adds per face (fer_vgg: 1.8 M and ~120 M), so int8
    inference takes about 0.2 ms on one x86 core. Only ops the Edge TPU compiler maps."""
    return _mobile(num_classes, size, 1.0, "fer_mobile")


def fer_mobile_wide(num_classes: int = 7, size: int = 48) -> keras.Model:
    """fer_mobile at 1.5x the channels everywhere (24-stem, 48..384): about 0.5 M parameters and
    11.5 M multiply-adds, the "wider student" for when 5 M multiply-adds cannot hold the accuracy."""
    return _mobile(num_classes, size, 1.5, "fer_mobile_wide")


def _conv_block(x, filters: int, kernel: int = 3, *, norm: str | None = "pre", padding: str = "same",
                pool_padding: str = "valid", drop: float = 0.25, name: str | None = None):
    """One conv stage of the seed presets: a conv with ReLU and batch norm (norm "pre": conv-BN-ReLU, "post":
    conv-ReLU-BN, None: no BN), a 2x2 max-pool and dropout (0 = none)."""
    x = layers.Conv2D(filters, kernel, padding=padding, activation=None if norm == "pre" else "relu", name=name)(x)
    if norm is not None:
        x = layers.BatchNormalization()(x)
    if norm == "pre":
        x = layers.ReLU()(x)
    x = layers.MaxPooling2D(2, padding=pool_padding)(x)
    return layers.Dropout(drop)(x) if drop else x


def _dense_block(x, units: int, *, norm: bool, drop: float, name: str | None = None):
    """Dense, then BN and ReLU (norm) or a ReLU inside the dense, then dropout."""
    x = layers.Dense(units, activation=None if norm else "relu", name=name)(x)
    if norm:
        x = layers.ReLU()(layers.BatchNormalization()(x))
    return layers.Dropout(drop)(x)


def keras_example_cnn(num_classes: int = 7, size: int = 48) -> keras.Model:
    """Seed (a): Conv32-Conv64-Pool-Drop.25-Conv128-Pool-Conv128-Pool-Drop.25-Dense1024-Drop.5-softmax."""
    inp, x = _inputs(size)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = _conv_block(x, 64, norm=None, padding="valid")
    x = _conv_block(x, 128, norm=None, padding="valid", drop=0)
    x = _conv_block(x, 128, norm=None, padding="valid")
    x = _dense_block(layers.Flatten()(x), 1024, norm=False, drop=0.5)
    return keras.Model(inp, _head(x, num_classes), name="keras_example_cnn")


def shallow_cnn(num_classes: int = 7, size: int = 48) -> keras.Model:
    """Seed (b), "shallow": two conv blocks (32, 64; BN, dropout, 2x2 pool) + FC 512."""
    inp, x = _inputs(size)
    for filters in (32, 64):
        x = _conv_block(x, filters)
    x = _dense_block(layers.Flatten()(x), 512, norm=False, drop=0.5)
    return keras.Model(inp, _head(x, num_classes), name="shallow_cnn")


def deep_cnn(num_classes: int = 7, size: int = 48) -> keras.Model:
    """Seed (c), "deep": conv 64 (3x3) / 128 (5x5) / 512 (3x3) / 512 (3x3), each
    BN-ReLU-pool-dropout, then FC 256 and FC 512 with BN and dropout."""
    inp, x = _inputs(size)
    # Layer names follow the published table (Keras 2 numbering from 1).
    for i, (filters, kernel) in enumerate(((64, 3), (128, 5), (512, 3), (512, 3)), start=1):
        x = _conv_block(x, filters, kernel, name=f"conv2d_{i}")
    x = layers.Flatten()(x)
    for i, units in enumerate((256, 512), start=1):
        x = _dense_block(x, units, norm=True, drop=0.25, name=f"dense_{i}")
    return keras.Model(inp, _head(x, num_classes), name="deep_cnn")


def valid_cnn_100(num_classes: int = 7, size: int = 100) -> keras.Model:
    """Seed (d): three valid-padding conv blocks 32/64/128 + BN + pool on 100x100 input,
    FC 128 / 64 with dropout 0.1."""
    inp, x = _inputs(size)
    for filters in (32, 64, 128):
        x = _conv_block(x, filters, norm="post", padding="valid", drop=0)
    x = layers.Flatten()(x)
    for units in (128, 64):
        x = _dense_block(x, units, norm=False, drop=0.1)
    return keras.Model(inp, _head(x, num_classes), name="valid_cnn_100")


def four_conv_two_dense(num_classes: int = 7, size: int = 48) -> keras.Model:
    """Seed (e): four conv layers (64, 128, 512, 512) with pooling, then two dense layers (256, 512)."""
    inp, x = _inputs(size)
    for filters in (64, 128, 512, 512):
        x = _conv_block(x, filters, norm=None)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = _dense_block(x, units, norm=False, drop=0.25)
    return keras.Model(inp, _head(x, num_classes), name="four_conv_two_dense")


def five_block_cnn(num_classes: int = 7, size: int = 48) -> keras.Model:
    """Seed (f): five blocks of Conv-BN-Pool-Dropout with same padding (32..512)."""
    inp, x = _inputs(size)
    for filters in (32, 64, 128, 256, 512):
        x = _conv_block(x, filters, norm="post", pool_padding="same")
    return keras.Model(inp, _head(layers.Flatten()(x), num_classes), name="five_block_cnn")


# face-api.js's expression network (FaceFeatureExtractor + FC), as train/faceapi_weights.py loads it from npm.
FACEAPI_MEAN = 117.0  # face-api subtracts (122.8, 117.0, 104.3) from RGB; a grey face gets their middle
FACEAPI_SIZE = 96  # face-api resizes its face to 112; FER-framed faces at 96 measure better on real photos


def _faceapi_block(x, filters: int, index: int, first: bool):
    """face-api's denseBlock4: a stride-2 conv (a plain 3x3 in the first block, depthwise-separable after),
    then three depthwise-separable convs, each fed the ReLU of the sum of every output before it."""
    name = f"dense{index}"
    if first:
        out1 = layers.Conv2D(filters, 3, strides=2, padding="same", name=f"{name}_conv0")(x)
    else:
        out1 = layers.SeparableConv2D(filters, 3, strides=2, padding="same", name=f"{name}_conv0")(x)
    outs = [layers.ReLU()(out1)]
    for k in (1, 2, 3):
        inp = outs[0] if k == 1 else layers.ReLU()(layers.Add()(outs))
        outs.append(layers.SeparableConv2D(filters, 3, padding="same", name=f"{name}_conv{k}")(inp))
    return layers.ReLU()(layers.Add()(outs))


def faceapi_dense(num_classes: int = 7, size: int = 48) -> keras.Model:
    """face-api.js's expression network (MIT; its FaceFeatureExtractor: four dense blocks of depthwise-
    separable convs, 32-256 channels, no batch norm, then FC), fed the 48x48 face resized inside the graph to
    96x96 (face-api's own input is 112x112: on FER2013-framed faces of real photographs, untrained, 96 px measured
    61 % right on wild_dev against 56 % at 112, at three quarters of the cost), one grey channel (the first conv's
    filters summed over RGB). Start it from the weights
    face-api trained on real photographs (`python -m train.faceapi_weights`, then `--init`): the real-face
    features FER2013 alone does not teach. ~37 M multiply-adds."""
    inp = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, offset=-FACEAPI_MEAN / 255.0, name="normalise")(inp)
    x = layers.Resizing(FACEAPI_SIZE, FACEAPI_SIZE, interpolation="bilinear", name="resize")(x)
    for index, filters in enumerate((32, 64, 128, 256)):
        x = _faceapi_block(x, filters, index, first=index == 0)
    x = layers.GlobalAveragePooling2D()(x)  # face-api: a 7x7 average pool over the 7x7 map, the same thing
    x = layers.Dropout(0.2)(x)
    return keras.Model(inp, _head(x, num_classes), name="faceapi_dense")


ARCHITECTURES: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("fer_mobile", fer_mobile, 48, "edge default: depthwise-separable, 5.3 M MAC, ~0.23 M params"),
        Arch("fer_mobile_wide", fer_mobile_wide, 48, "fer_mobile at 1.5x width: 11.5 M MAC, ~0.5 M params"),
        Arch("fer_vgg", fer_vgg, 48, "default: VGG-style 4x2 conv 32-256, BN, FC 256 (~1.8 M params)"),
        Arch("fer_vgg_slim", fer_vgg_slim, 48, "fer_vgg at 3/4 of the channels (24-192), ~67 M MAC; "
             "prune a trained fer_vgg into it with --init"),
        Arch("fer_vgg_lean", fer_vgg_lean, 48, "fer_vgg_slim with 16 channels at 48x48 (16-192), ~58 M MAC; "
             "prune a trained fer_vgg_slim into it with --init"),
        Arch("faceapi_dense", faceapi_dense, 48, "face-api.js's expression net on 48 px resized to 96, ~37 M MAC; "
             "start from its real-face weights with --init (python -m train.faceapi_weights)"),
        Arch("keras_example_cnn", keras_example_cnn, 48, "seed (a): 4 conv + Dense 1024, Adam 1e-4",
             optimizer="adam", learning_rate=1e-4),
        Arch("shallow_cnn", shallow_cnn, 48, "seed (b): 2 conv blocks (32, 64) + FC 512"),
        Arch("deep_cnn", deep_cnn, 48, "seed (c): conv 64/128/512/512 + FC 256/512 (~4.5 M params)"),
        Arch("valid_cnn_100", valid_cnn_100, 100, "seed (d): 3 valid conv blocks on 100x100 + FC 128/64"),
        Arch("four_conv_two_dense", four_conv_two_dense, 48, "seed (e): 4 conv + 2 dense"),
        Arch("five_block_cnn", five_block_cnn, 48, "seed (f): 5 Conv-BN-Pool-Dropout blocks"),
    )
}
DEFAULT_ARCH = "fer_vgg"


def get_arch(name: str) -> Arch:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}") from None


def count_macs(model: keras.Model) -> int:
    """Multiply-adds for one face through the conv, depthwise and dense layers (what dominates
    int8 inference time); pooling, BN (folded) and activations are not counted. A model inside the model (a
    blend's members) counts with its own layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif isinstance(layer, layers.SeparableConv2D):  # depthwise then pointwise
            _, h, w, c = layer.output.shape
            c_in = layer.input.shape[-1]
            total += h * w * c_in * layer.kernel_size[0] * layer.kernel_size[1] + h * w * c_in * c
        elif isinstance(layer, layers.DepthwiseConv2D):  # a Conv2D subclass in some Keras versions: test it first
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def build_model(name: str = DEFAULT_ARCH, num_classes: int = 7) -> keras.Model:
    arch = get_arch(name)
    return arch.build(num_classes, arch.input_size)
