"""The interpreter loader falls back ai_edge_litert -> tflite_runtime -> tensorflow.lite."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SHIPPED_INT8

SCRIPT = """
import sys
sys.modules["ai_edge_litert"] = None  # importing either now raises ImportError
sys.modules["tflite_runtime"] = None
from edge_runtime.classifier import Classifier
from edge_runtime.interpreter import interpreter_module
import numpy as np
print(interpreter_module()[0])
print(Classifier(sys.argv[1]).predict(np.full((1, 48, 48), 128, np.uint8)).shape)
"""


def test_falls_back_to_tensorflow_lite_when_litert_is_missing():
    pytest.importorskip("tensorflow")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(SHIPPED_INT8)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["tensorflow.lite", "(1,", "7)"]
