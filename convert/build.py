"""One way to build a model file: a float Keras model -> a checked .tflite with its model card beside it.

`build_model_file` converts (tflite.to_tflite), writes and checks the model and its card
(tflite.write_model), optionally compares it with the float model on labelled faces (parity.compare:
recorded in the card when the faces say what they are) and adds a static batch-1 Edge TPU build, all in a
staging folder that is published together or not at all. `fer-edge convert`, the face verifier's int8
build and bench's float32 builds all go through it, so their files and cards cannot drift apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert import edgetpu, tflite
from convert.calibration import CalibrationSet
from convert.parity import DEFAULT_MAX_DROP_PP, ParityReport, compare
from convert.staging import Staging
from edge_runtime.metadata import sha256_file, sidecar_path, write_json_atomic
from train.predict import load_predictor


@dataclass(frozen=True)
class Parity:
    """Labelled faces to compare the built model with its float model on. With `record` (what the faces
    are, e.g. {"data": path, "split": "val"}) the report goes into the card; without, it is only returned."""

    images: np.ndarray
    labels: np.ndarray
    max_drop: float = DEFAULT_MAX_DROP_PP
    record: dict | None = None


@dataclass(frozen=True)
class Built:
    """What a build published: the model, its card and, with the Edge TPU build, that model and its card."""

    paths: list[Path]
    meta: dict  # the model's card as written
    report: ParityReport | None  # None without parity faces

    @property
    def path(self) -> Path:
        return self.paths[0]


def write_tflite(source, path: Path, precision: str, *, io: str = "int8", calibration: CalibrationSet | None = None,
                 batch_size: int | None = None) -> dict:
    """Convert `source` (tflite.load_source) and write the model and its card at `path`; returns the card."""
    content = tflite.to_tflite(source, precision, io=io, calibration=calibration, batch_size=batch_size)
    return tflite.write_model(content, path, source, precision, io=io, calibration=calibration,
                              batch_size=batch_size)


def build_model_file(model, out: str | os.PathLike, precision: str = "float32", *, io: str = "int8",
                     calibration: CalibrationSet | None = None, parity: Parity | None = None,
                     edgetpu_compiler: str | None = None,
                     warn: Callable[[str], None] | None = None) -> Built:
    """Build `out` (a .tflite) from `model`: a .keras path or the source tflite.load_source gave.

    int8 needs `calibration`; `edgetpu_compiler` (edgetpu.find_compiler) adds <out>_edgetpu.tflite, and
    `warn` (default: stderr) hears of each op that will run on the CPU. Raises a FerEdgeError
    (ConversionError, ParityError, EdgeTpuBuildError, ...) on failure, and then nothing is written.
    """
    source = tflite.load_source(model) if isinstance(model, (str, os.PathLike)) else model
    out = Path(out)
    report = None
    with Staging(out.parent) as staging:
        staged = staging.path(out.name)
        meta = write_tflite(source, staged, precision, io=io, calibration=calibration)
        names = [out.name, sidecar_path(out.name).name]
        if parity is not None:
            report = compare(source, load_predictor(staged), parity.images, parity.labels, parity.max_drop)
            if parity.record is not None:
                meta["parity"] = {**parity.record, **report.to_dict()}
                write_json_atomic(sidecar_path(staged), meta)
        if edgetpu_compiler:
            names += _edgetpu_build(edgetpu_compiler, source, calibration, staging, out, io, warn or _stderr)
        paths = staging.publish(*names)
    return Built(paths, meta, report)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _edgetpu_build(compiler: str, source, calibration, staging, out: Path, io: str,
                   warn: Callable[[str], None]) -> list[str]:
    """A static batch-1 int8 build (the Edge TPU needs static shapes), checked and compiled; staged names."""
    static = staging.path(f"edgetpu/{out.name}")
    meta = write_tflite(source, static, "int8", io=io, calibration=calibration, batch_size=1)
    check = edgetpu.check(static)
    for op in check.cpu_ops:
        warn(f"Edge TPU: op {op.index} {op.name} will run on the CPU: {op.reason}")
    compiled, compiler_report = edgetpu.compile_model(compiler, static, static.parent)
    static_sha256 = meta["sha256"]
    meta.update(name=compiled.stem, sha256=sha256_file(compiled), size_bytes=compiled.stat().st_size,
                edgetpu={"compiler": compiler_report.splitlines()[0] if compiler_report else "",
                         "compiler_report": compiler_report, "check": check.to_dict(),
                         "compiler_input_sha256": static_sha256})
    write_json_atomic(sidecar_path(compiled), meta)
    rel = compiled.relative_to(staging.dir).as_posix()
    return [rel, sidecar_path(rel).as_posix()]
