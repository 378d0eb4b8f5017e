"""Keras 3 model -> TFLite (float32, float16, dynamic-range or full-integer int8), with its metadata.

The Keras 3 path is `model.export(dir, format="tf_saved_model")` then
`TFLiteConverter.from_saved_model`; the int8 build is full-integer only
(TFLITE_BUILTINS_INT8, no float fallback), calibrated on real faces.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from convert.calibration import CalibrationSet
from convert.flatbuffer import float_ops, read_graph
from edge_runtime import __version__
from edge_runtime.errors import FerEdgeError
from edge_runtime.interpreter import ModelError, TensorInfo, input_info, make_interpreter, output_info
from edge_runtime.metadata import MetadataError, sha256_file, sidecar_path, write_json_atomic
from edge_runtime.native_stderr import captured_stderr
from train.predict import KerasPredictor

log = logging.getLogger("fer_edge.convert")

PRECISIONS = ("float32", "float16", "dynamic", "int8")
IO_TYPES = ("int8", "uint8")
# Models normalise inside the graph and take uint8-range pixels, so with calibration faces that
# span 0..255 the quantised input is the pixel itself (minus 128 for int8): no rounding at all.
EXACT_INPUT = {"int8": (1.0, -128), "uint8": (1.0, 0)}


class ConversionError(FerEdgeError, ValueError):
    """The model cannot be converted as asked; the message names the file and the reason."""


def default_output(model: str | os.PathLike, precision: str) -> Path:
    """fer_cnn.keras -> fer_cnn_int8.tflite beside it."""
    model = Path(model)
    return model.with_name(f"{model.stem}_{precision}.tflite")


def load_source(path: str | os.PathLike):
    """The float Keras model with its metadata (train.predict's KerasPredictor), checked for conversion."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: model file not found")
    if path.suffix.lower() != ".keras":
        raise ConversionError(f"{path}: expected a Keras 3 .keras model (got {path.suffix or 'no suffix'!r})")
    try:
        source = KerasPredictor(path)
    except (ModelError, MetadataError) as exc:
        raise ConversionError(str(exc)) from exc
    size = source.preprocessing.size
    shape = tuple(source.model.inputs[0].shape[1:]) if len(source.model.inputs) == 1 else None
    if shape != (size, size, 1):
        raise ConversionError(f"{path}: model input {shape} is not one {size}x{size}x1 grayscale face "
                              f"(the size its metadata promises)")
    outputs = source.model.outputs[0].shape[-1]
    if outputs != len(source.labels):
        raise ConversionError(f"{path}: model has {outputs} outputs but its metadata names {len(source.labels)} labels")
    return source


def _configure(converter, precision: str, io: str, calibration: CalibrationSet | None) -> None:
    import tensorflow as tf

    if precision == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if calibration is None or not len(calibration):
            raise ConversionError("int8 conversion needs calibration faces (--calibration)")
        converter.representative_dataset = calibration.representative_dataset()
        # Integer kernels only. The converter can still leave an op without one in float between
        # DEQUANTIZE/QUANTIZE, so write_model checks the result too.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io)


def to_tflite(source, precision: str, *, io: str = "int8", calibration: CalibrationSet | None = None,
              batch_size: int | None = None) -> bytes:
    """The converted flatbuffer. batch_size fixes the batch dimension (the Edge TPU needs static shapes)."""
    import keras
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ConversionError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if io not in IO_TYPES:
        raise ConversionError(f"unknown I/O type {io!r}; expected one of {', '.join(IO_TYPES)}")
    size = source.preprocessing.size
    with tempfile.TemporaryDirectory(prefix="fer-edge-export-") as tmp:
        signature = [keras.InputSpec(shape=(batch_size, size, size, 1), dtype="float32")] if batch_size else None
        try:
            source.model.export(tmp, format="tf_saved_model", verbose=False, input_signature=signature)
        except Exception as exc:  # export raises many types for graphs it cannot trace
            raise ConversionError(f"{source.path}: cannot export the model as a SavedModel: {exc}") from exc
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        _configure(converter, precision, io, calibration)
        try:
            # The MLIR quantiser prints `fully_quantize: 0, inference_type: 6, ...` on fd 2: logged at DEBUG.
            with captured_stderr(log):
                return converter.convert()
        except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
            raise ConversionError(_explain(source.path, precision, exc)) from exc


def _explain(path: Path, precision: str, exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if precision == "int8":
        return (f"{path}: full-integer int8 conversion failed (int8 builds allow no float fallback, so an op "
                f"without an int8 kernel is the usual cause). Converter said: {text[:1500]}")
    return f"{path}: {precision} conversion failed: {text[:1500]}"


def _range_problem(calibration: CalibrationSet) -> str:
    return (f"the brightest pixel of the calibration faces in {calibration.path} is {int(calibration.faces.max())}, "
            "so the input range is not 0..255 (real faces reach 255; a constant or dimmed set does not)")


def check_input_range(calibration: CalibrationSet) -> None:
    """Refuse, before converting, a set that cannot give the exact input scale.

    The calibrated input range is [0, brightest pixel] (quantisation ranges always include 0), and the
    scale is exactly 1.0 only when that is [0, 255].
    """
    if int(calibration.faces.max()) != 255:
        raise ConversionError("int8 input quantisation would not be the exact 1.0 scale the runtime expects: "
                              + _range_problem(calibration))


def _quant(info: TensorInfo) -> dict | None:
    return {"dtype": info.dtype.name, "scale": info.scale, "zero_point": info.zero_point} if info.quantized else None


def write_model(content: bytes, path: Path, source, precision: str, *, io: str,
                calibration: CalibrationSet | None, batch_size: int | None = None) -> dict:
    """Write the model and its metadata beside it, check it loads with the runtime's loader, return the metadata."""
    import keras
    import tensorflow as tf

    path.write_bytes(content)
    if precision == "int8":
        # The converter can keep an op without an int8 kernel in float between DEQUANTIZE/QUANTIZE pairs
        # even with TFLITE_BUILTINS_INT8 only; a full-integer model must have none.
        floats = float_ops(read_graph(path))
        if floats:
            names = ", ".join(f"{op.name} (op {op.index})" for op in floats)
            raise ConversionError(f"{source.path}: not fully integer: these ops have no int8 kernel and fell back "
                                  f"to float: {names}; replace the layers that produce them")
    try:
        interpreter = make_interpreter(path)
    except Exception as exc:  # the runtime's loader wraps its own errors; anything here is a broken build
        raise ConversionError(f"{path.name}: the converted model does not load in the TFLite runtime: {exc}") from exc
    inp, out = input_info(interpreter), output_info(interpreter)
    if precision == "int8":
        scale, zero_point = EXACT_INPUT[io]
        if abs(inp.scale - scale) > 1e-9 or inp.zero_point != zero_point:
            raise ConversionError(
                f"{source.path}: int8 input quantisation came out as scale {inp.scale:g}, zero point "
                f"{inp.zero_point}, not the exact {scale:g}/{zero_point} the runtime expects; "
                + _range_problem(calibration))
    size = source.preprocessing.size
    meta = {
        "name": path.stem,
        "format": "tflite",
        "precision": precision,
        "labels": list(source.labels),
        "input": {"shape": [size, size, 1], "dtype": inp.dtype.name, "range": [0, 255],
                  "batch": batch_size or "dynamic"},
        "preprocessing": source.preprocessing.to_dict(),
        "quantization": {"input": _quant(inp), "output": _quant(out)},
        "source_model": {"file": source.path.name, "sha256": sha256_file(source.path),
                         "arch": source.meta.get("arch")},
        "calibration": None if precision != "int8" else {
            "path": str(calibration.path), "faces": len(calibration),
            "manifest_sha256": calibration.manifest_sha256,
        },
        "converter": {"tensorflow": tf.__version__, "keras": keras.__version__, "fer_edge": __version__,
                      "path": "keras.Model.export(tf_saved_model) -> TFLiteConverter.from_saved_model"},
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
        "date": datetime.date.today().isoformat(),
    }
    if source.meta.get("notices"):  # licences of the weights it came from travel with the device's file
        meta["notices"] = list(source.meta["notices"])
    write_json_atomic(sidecar_path(path), meta)
    return meta
