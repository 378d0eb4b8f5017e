"""The ops and tensors of a .tflite, read straight from its flatbuffer.

No interpreter: a compiled Edge TPU model (whose custom op needs the Coral runtime) or a model
with ops this runtime lacks can still be inspected.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.interpreter import read_model_bytes

FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})


def _schema():
    # The generated schema ships with the runtime (ai-edge-litert) and with TensorFlow.
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("reading a .tflite needs ai-edge-litert or tensorflow installed")


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    dtype: str  # schema name: INT8, UINT8, INT32, FLOAT32, ...
    shape: tuple[int, ...]  # the shape signature: -1 marks a dynamic dimension

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


@dataclass(frozen=True)
class Operator:
    index: int
    name: str  # builtin name (CONV_2D) or the custom code (edgetpu-custom-op)
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return self.inputs + self.outputs


@dataclass(frozen=True)
class Graph:
    subgraphs: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    ops: tuple[Operator, ...]  # execution order


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def read_graph(path: str | os.PathLike) -> Graph:
    """The main subgraph of a .tflite file."""
    content = read_model_bytes(Path(path))
    schema = _schema()
    op_names, type_names = _names(schema.BuiltinOperator), _names(schema.TensorType)
    model = schema.Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)

    def tensor(i: int) -> Tensor:
        t = graph.Tensors(i)
        shape = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        return Tensor(i, t.Name().decode(), type_names.get(t.Type(), str(t.Type())), tuple(int(d) for d in shape))

    def tensors(indices) -> tuple[Tensor, ...]:
        # -1 marks an omitted optional input.
        return tuple(tensor(int(i)) for i in indices if i >= 0)

    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Builtin codes above 127 live in BuiltinCode; older files only fill the deprecated byte.
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        if name == "CUSTOM":
            name = (code.CustomCode() or b"CUSTOM").decode()
        ins = op.InputsAsNumpy() if op.InputsLength() else []
        outs = op.OutputsAsNumpy() if op.OutputsLength() else []
        ops.append(Operator(k, name, tensors(ins), tensors(outs)))
    return Graph(model.SubgraphsLength(), tensors(graph.InputsAsNumpy()), tensors(graph.OutputsAsNumpy()),
                 tuple(ops))


def float_ops(graph: Graph) -> list[Operator]:
    """Ops that read or write a float tensor: in a full-integer model, the ones that fell back to float."""
    return [op for op in graph.ops if any(t.is_float for t in op.tensors)]
