"""Edge TPU readiness of a .tflite (a static check of its flatbuffer) and the edgetpu_compiler build.

The compiler partitions a graph once: the first op the Edge TPU cannot run, and every op
after it, stays on the CPU. So the check walks the ops in execution order and names the
first offender and everything it drags along, before anyone needs a Coral to find out.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from convert.flatbuffer import Operator, read_graph
from edge_runtime.errors import FerEdgeError
from edge_runtime.metadata import read_metadata

# TFLite builtin names of the ops in Coral's "Supported operations" table
# (https://coral.ai/docs/edgetpu/models-intro/#supported-operations).
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "MAXIMUM",
    "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN",
    "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE",
    "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE",
    "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
# A compiled model's Edge TPU partition is one custom op.
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
QUANTIZED_TYPES = ("INT8", "UINT8")

COMPILER = "edgetpu_compiler"
INSTALL_HINT = (
    "edgetpu_compiler is not on PATH. It runs only on x86-64 Debian/Ubuntu: add Coral's apt repository "
    "(https://coral.ai/docs/edgetpu/compiler/) and `sudo apt-get install edgetpu-compiler`, then run this "
    "again (on another machine, compile the *_int8 model there or in Coral's Colab notebook)"
)


class EdgeTpuBuildError(FerEdgeError, RuntimeError):
    """The Edge TPU compiler is missing or failed."""


@dataclass(frozen=True)
class Op:
    """One op in execution order; `reason` says why it would run on the CPU ('' = on the Edge TPU)."""

    index: int
    name: str
    reason: str = ""


@dataclass
class EdgeTpuReport:
    model: str
    fully_int8: bool
    static_shapes: bool
    ops: list[Op] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def cpu_ops(self) -> list[Op]:
        """The first unsupported op and every op after it: what the compiler leaves on the CPU."""
        first = next((i for i, op in enumerate(self.ops) if op.reason), None)
        if first is None:
            return []
        after = f"after the first unsupported op ({self.ops[first].name})"
        return [op if op.reason else Op(op.index, op.name, after) for op in self.ops[first:]]

    @property
    def compatible(self) -> bool:
        return self.fully_int8 and self.static_shapes and not self.cpu_ops and not self.problems

    def to_dict(self) -> dict:
        return {"model": self.model, "compatible": self.compatible, "fully_int8": self.fully_int8,
                "static_shapes": self.static_shapes, "problems": self.problems,
                "ops": [op.name for op in self.ops], "cpu_ops": [asdict(op) for op in self.cpu_ops]}


def _reason(op: Operator, graph_inputs: set[int], graph_outputs: set[int]) -> str:
    if op.name == EDGETPU_CUSTOM_OP:
        return ""
    reasons = []
    # Dequantize is fine where it only turns the model's int8 output into float.
    at_end = op.name == "DEQUANTIZE" and all(t.index in graph_outputs for t in op.outputs)
    if op.name not in SUPPORTED_OPS and not at_end:
        reasons.append("DEQUANTIZE is supported only at the model's output" if op.name == "DEQUANTIZE"
                       else "not supported by the Edge TPU")
    # The float side of a Quantize on a model input, or of a final Dequantize, is the model's edge.
    edge = {t.index for t in op.inputs if op.name == "QUANTIZE" and t.index in graph_inputs}
    edge |= {t.index for t in op.outputs if at_end}
    floats = [t for t in op.tensors if t.is_float and t.index not in edge]
    if floats:
        reasons.append(f"computes in {floats[0].dtype.lower()} ({floats[0].name!r})")
    dynamic = [t for t in op.tensors if t.dynamic]
    if dynamic:
        reasons.append(f"dynamic shape {list(dynamic[0].shape)} ({dynamic[0].name!r})")
    return "; ".join(reasons)


def check(path: str | os.PathLike) -> EdgeTpuReport:
    """Is the model fully int8, with static shapes and only ops the Edge TPU runs? (Compiled models too.)"""
    graph = read_graph(path)
    problems = []
    if graph.subgraphs != 1:
        problems.append(f"{graph.subgraphs} subgraphs; the Edge TPU compiler takes exactly one")
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for t in tensors:
            if t.dtype not in QUANTIZED_TYPES:
                problems.append(f"model {kind} {t.name!r} is {t.dtype.lower()}; the Edge TPU takes int8/uint8 "
                                "(convert with --int8)")
            if t.dynamic:
                problems.append(f"model {kind} {t.name!r} has a dynamic shape {list(t.shape)}; the Edge TPU "
                                "needs static shapes (convert with --edgetpu, which fixes the batch to 1)")
    graph_inputs = {t.index for t in graph.inputs}
    graph_outputs = {t.index for t in graph.outputs}
    ops = [Op(op.index, op.name, _reason(op, graph_inputs, graph_outputs)) for op in graph.ops]
    tensors = [t for op in graph.ops for t in op.tensors] + list(graph.inputs + graph.outputs)
    fully_int8 = not any(t.is_float for t in tensors)
    static = not any(t.dynamic for t in tensors)
    return EdgeTpuReport(str(path), fully_int8, static, ops, problems)


def advice(report: EdgeTpuReport) -> str:
    """What a Coral user does about a model that does not map entirely to the Edge TPU, in one paragraph."""
    if report.compatible:
        return ""
    model = Path(report.model)
    source = None
    with contextlib.suppress(Exception):  # the float model it came from, as its metadata names it
        source = read_metadata(model).get("source_model", {}).get("file")
    build = f"fer-edge convert --model {model.parent / source if source else 'MODEL.keras'} --int8 --edgetpu"
    if not report.fully_int8:
        return (f"What to do: the Edge TPU runs full-integer models only; build one for it with `{build}` "
                "(needs edgetpu_compiler), or run this model on the CPU.")
    if not report.static_shapes:
        return ("What to do: this is the CPU build (any number of faces per call), which a Pi runs as it is; "
                f"for a Coral, build its static batch-1 twin with `{build}` (needs edgetpu_compiler) and bundle "
                f"{model.stem}_edgetpu.tflite with `fer-edge bundle --edgetpu-model`.")
    first = report.cpu_ops[0] if report.cpu_ops else None
    where = f"ops from {first.index} ({first.name}) on run on the CPU, the ones before on the Edge TPU" if first \
        else "the compiler may refuse it"
    return (f"What to do: {where}; accept the partial mapping (each face then goes to the CPU and back), or train "
            "an architecture made of supported ops (fer_mobile and fer_vgg map entirely when built with --edgetpu).")


def find_compiler() -> str:
    """Path of edgetpu_compiler, or an error that says how to install it."""
    found = shutil.which(COMPILER)
    if found:
        return found
    machine = platform.machine().lower()
    where = "" if machine in ("x86_64", "amd64") else f" (and this machine is {machine}, not x86-64)"
    raise EdgeTpuBuildError(INSTALL_HINT + where)


def compile_model(compiler: str, model: str | os.PathLike, out_dir: str | os.PathLike,
                  timeout: float = 600) -> tuple[Path, str]:
    """Run the compiler on `model`; returns (<out_dir>/<stem>_edgetpu.tflite, the compiler's report)."""
    model, out_dir = Path(model), Path(out_dir)
    cmd = [compiler, "--out_dir", str(out_dir), "--show_operations", str(model)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgeTpuBuildError(f"{compiler} could not run on {model.name}: {exc}") from exc
    report = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise EdgeTpuBuildError(f"{compiler} failed on {model.name} (exit {done.returncode}): {report[-2000:]}")
    compiled = out_dir / f"{model.stem}_edgetpu.tflite"
    if not compiled.is_file():
        raise EdgeTpuBuildError(f"{compiler} exited 0 but wrote no {compiled.name}: {report[-2000:]}")
    return compiled, report
