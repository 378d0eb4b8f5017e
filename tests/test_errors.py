"""One base for the user-facing errors (issue 22, item 4): every command catches FerEdgeError, and each error
still is what it was (a ValueError or a RuntimeError), so an older `except ValueError` keeps catching it."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.errors import FerEdgeError

ROOT = Path(__file__).resolve().parents[1]

ERRORS = [
    ("edge_runtime.errors", "ModelError", ValueError), ("edge_runtime.errors", "EdgeTpuError", RuntimeError),
    ("edge_runtime.errors", "DetectorError", ValueError), ("edge_runtime.interpreter", "ModelError", ValueError),
    ("edge_runtime.interpreter", "EdgeTpuError", RuntimeError), ("edge_runtime.detector", "DetectorError", ValueError),
    ("edge_runtime.metadata", "MetadataError", ValueError), ("edge_runtime.sources", "SourceError", RuntimeError),
    ("edge_runtime.image_header", "ImageHeaderError", ValueError),
    ("edge_runtime.daemon.config", "ConfigError", ValueError),
    ("edge_runtime.release.manifest", "ManifestError", ValueError),
    ("release_tools.bundle", "BundleError", RuntimeError),
    ("release_tools.deploy", "DeployError", RuntimeError),
    ("release_tools.wheel", "WheelError", RuntimeError), ("fleet.inventory", "FleetError", RuntimeError),
    ("train.data.dataset", "DataError", ValueError), ("train.gpu_pack", "PackError", ValueError),
    ("convert.calibration", "CalibrationError", ValueError), ("convert.parity", "ParityError", ValueError),
    ("convert.tflite", "ConversionError", ValueError), ("convert.edgetpu", "EdgeTpuBuildError", RuntimeError),
]


@pytest.mark.parametrize("module, name, old_base", ERRORS, ids=[f"{m}.{n}" for m, n, _ in ERRORS])
def test_each_user_facing_error_derives_from_the_one_base_and_keeps_its_old_one(module, name, old_base):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, FerEdgeError) and issubclass(cls, old_base)


def test_the_moved_errors_are_the_same_classes_under_their_old_names():
    from edge_runtime import detector, errors, interpreter

    assert interpreter.ModelError is errors.ModelError and interpreter.EdgeTpuError is errors.EdgeTpuError
    assert detector.DetectorError is errors.DetectorError


def test_errors_is_a_standard_library_leaf():
    tree = ast.parse((ROOT / "edge_runtime" / "errors.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__"}


def test_a_lone_copy_of_the_manifest_verifier_still_runs(tmp_path):
    # deploy sends the manifest module's source to the device and the Ansible role copies the file: no package there.
    lone = tmp_path / "verify.py"
    shutil.copy(ROOT / "edge_runtime" / "release" / "manifest.py", lone)
    result = subprocess.run([sys.executable, "-I", str(lone), "verify", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "missing" in result.stderr
