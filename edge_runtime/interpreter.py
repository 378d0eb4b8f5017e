"""The one interpreter loader: ai_edge_litert -> tflite_runtime -> tensorflow.lite.

Like pycoral's `make_interpreter`: one door for CPU (XNNPACK) and Edge TPU models; a
model named `*_edgetpu.tflite` asks for the Edge TPU delegate.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edge_runtime.errors import EdgeTpuError, ModelError  # re-exported: their home before errors.py
from edge_runtime.metadata import read_metadata, sidecar_path
from edge_runtime.native_stderr import captured_stderr
from edge_runtime.release.manifest import require_bundled_model

log = logging.getLogger("fer_edge.interpreter")
EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
_BACKENDS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
TFLITE_MAGIC = b"TFL3"


def interpreter_module():
    """The first TFLite interpreter that imports: (module name, object with Interpreter and load_delegate)."""
    errors = []
    for name in _BACKENDS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if name == "tensorflow.lite":
            # Full TensorFlow exposes the interpreter as tf.lite and load_delegate under tf.lite.experimental.
            lite = importlib.import_module("tensorflow").lite
            module = SimpleNamespace(Interpreter=lite.Interpreter, load_delegate=lite.experimental.load_delegate)
        return name, module
    raise ImportError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime); tried "
                      + "; ".join(errors))


def is_edgetpu_model(path: str | os.PathLike) -> bool:
    return Path(path).name.endswith("_edgetpu.tflite")


def read_model_bytes(path: Path) -> bytes:
    """The bytes of a .tflite file, refused with a sentence when missing, unreadable or not TFLite."""
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model: {exc.strerror}") from exc
    if len(content) < 8 or content[4:8] != TFLITE_MAGIC:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier; {len(content)} bytes)")
    return content


def check_sha256(path: Path, content: bytes) -> None:
    """Refuse model bytes that differ from the sha256 in the model's metadata, before the runtime parses
    them: a corrupt flatbuffer can crash the native runtime itself (one changed byte of
    fer_mobile_int8.tflite aborts the process with `double free or corruption`). Metadata without a
    sha256 (a hand-made test model) is not checked."""
    expected = read_metadata(path, required=False).get("sha256")
    if expected is None:
        return
    actual = hashlib.sha256(content).hexdigest()
    if actual != str(expected).lower():
        raise ModelError(f"{path}: sha256 {actual[:12]}... differs from the {expected!s:.12}... that its metadata "
                         f"{sidecar_path(path).name} records: the model file is corrupt or was changed after "
                         "conversion; refusing to load it (copy or convert it again)")


def _edgetpu_delegate(module, device: str | None):
    library = EDGETPU_LIBRARY.get(platform.system(), "libedgetpu.so.1")
    options = {"device": device} if device else {}
    try:
        return module.load_delegate(library, options)
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "cannot open shared object" in text or ("not found" in text.lower() and library in text):
            raise EdgeTpuError(
                f"Edge TPU runtime {library} is not installed: install it with "
                "`sudo apt-get install libedgetpu1-std` (Coral apt repository), or use the CPU model "
                "(the one without _edgetpu in its name)"
            ) from exc
        raise EdgeTpuError(
            f"Edge TPU runtime found but no Edge TPU device{' ' + repr(device) if device else ''} answered: "
            f"is the Coral plugged in (USB 3 port) or its PCIe driver loaded? ({text})"
        ) from exc


def make_interpreter(model: str | os.PathLike, *, num_threads: int | None = 1, device: str | None = None):
    """A ready (tensors allocated) interpreter for `model`, whose bytes were first checked against the
    sha256 in its metadata and, inside an installed bundle, against the bundle's manifest.

    device: Edge TPU device string ("usb", "usb:0", "pci:0"); only for *_edgetpu.tflite models.
    """
    path = Path(model)
    content = read_model_bytes(path)
    require_bundled_model(path)  # a model in an installed bundle must match its manifest.json
    check_sha256(path, content)
    _, module = interpreter_module()
    delegates = [_edgetpu_delegate(module, device)] if is_edgetpu_model(path) else None
    if device and not delegates:
        raise ModelError(f"{path}: device {device!r} given, but this is not an Edge TPU model (*_edgetpu.tflite)")
    try:
        # LiteRT announces its XNNPACK delegate on fd 2 for every interpreter: logged at DEBUG instead.
        with captured_stderr(log):
            interpreter = module.Interpreter(model_content=content, num_threads=num_threads,
                                             experimental_delegates=delegates)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        hint = " (an Edge TPU model needs the Edge TPU delegate)" if "edgetpu-custom-op" in str(exc) else ""
        raise ModelError(f"{path}: the TFLite runtime cannot load this model{hint}: {exc}") from exc
    return interpreter


@dataclass(frozen=True)
class TensorInfo:
    """Shape, dtype and affine quantisation (scale, zero point; (0.0, 0) for float) of a tensor."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in (np.int8, np.uint8) and self.scale > 0


def _info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(int(detail["index"]), tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]),
                      float(scale), int(zero_point))


def input_info(interpreter) -> TensorInfo:
    return _info(interpreter.get_input_details()[0])


def output_info(interpreter) -> TensorInfo:
    return _info(interpreter.get_output_details()[0])


def quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float values into the tensor's dtype: q = round(x / scale) + zero_point, clipped."""
    if not info.quantized:
        return values.astype(info.dtype, copy=False)
    if values.dtype == np.uint8 and info.scale == 1.0:
        # Pixels into fer-edge's exact input quantisation: no arithmetic needed (a third of the
        # per-face budget otherwise). int8 with zero point -128 is the pixel with its top bit flipped.
        if info.dtype == np.uint8 and info.zero_point == 0:
            return values
        if info.dtype == np.int8 and info.zero_point == -128:
            return (values ^ np.uint8(0x80)).view(np.int8)
    limits = np.iinfo(info.dtype)
    q = np.round(values.astype(np.float32) / info.scale) + info.zero_point
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """scale * (q - zero_point), as float32."""
    if not info.quantized:
        return values.astype(np.float32, copy=False)
    return (info.scale * (values.astype(np.int32) - info.zero_point)).astype(np.float32)
