"""Model file sizes and what `fer-edge edgetpu check` says about each TFLite model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def edgetpu_check(path: Path) -> dict:
    """The command's own output and exit status (0: runs entirely on the Edge TPU)."""
    done = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "edgetpu", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    return {"exit_status": done.returncode, "output": (done.stdout + done.stderr).strip()}


def sizes(paths: list[tuple[str, Path]]) -> list[dict]:
    rows = []
    for name, path in paths:
        row = {"model": name, "file": path.name, "bytes": path.stat().st_size}
        if path.suffix == ".tflite":
            row["edgetpu_check"] = edgetpu_check(path)
        rows.append(row)
    return rows
