"""Smoke test of `python -m bench`: every part end to end on tiny inputs (21 faces, a 12-frame video,
one run), peer included. CI installs the peer (`pip install --no-deps fer==25.10.3`), so there a
missing peer is a failure; on a developer machine without it the peer's rows are simply absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peer import INSTALL, find

REPO = Path(__file__).resolve().parents[2]
VAL_SAMPLE = REPO / "convert" / "val_sample"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def peer():
    found = find()
    if found is None and os.environ.get("CI") == "true":
        pytest.fail(f"the peer is not installed; CI installs it with `{INSTALL}` (.ci/run)")
    return found


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Three faces per class from the in-repo val sample, in the image-folder format."""
    root = tmp_path_factory.mktemp("tiny") / "val"
    for class_dir in sorted(VAL_SAMPLE.iterdir()):
        (root / class_dir.name).mkdir(parents=True)
        for face in sorted(class_dir.iterdir())[:3]:
            shutil.copy(face, root / class_dir.name / face.name)
    return root


@pytest.fixture(scope="module")
def bench_run(tiny_data, tmp_path_factory, peer):
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "bench", "--data", str(tiny_data),
           "--faces", "10", "--frames", "12", "--runs", "1", "--daemon-seconds", "2", "--warmup", "1",
           "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "RESULTS.md").read_text()


def test_every_part_measures_fer_edge_and_the_peer(bench_run, peer):
    results, _ = bench_run
    assert set(results["parts"]) == {"accuracy", "latency", "pipeline", "daemon", "sizes"}
    groups = {r["group"] for r in results["accuracy"]}
    kinds = {r["kind"] for r in results["latency"]}
    assert "shipped" in groups and {"keras", "float32", "int8"} <= kinds
    assert "run" not in groups  # this machine's runs/ only with --presets-dir
    for row in results["accuracy"]:
        assert row["n"] == 21 and 0.0 <= row["accuracy"] <= 1.0, row
    for row in results["latency"]:
        assert row["faces"] == 10 and row["wall_median_ms"] > 0, row
    fer_edge = results["pipeline"]["fer-edge"]
    assert fer_edge["frames"] == 12 and fer_edge["fps_wall"]["median"] > 0 and 0 <= fer_edge["recall"] <= 1
    # Shown from its first detection, a face is never missed in the frames the default waits to confirm it.
    assert results["pipeline"]["fer-edge confirm=1"]["recall"] >= fer_edge["recall"]
    assert results["daemon"]["available"] is False or results["daemon"]["time_to_healthy_s"]["median"] > 0
    assert all(r["bytes"] > 0 for r in results["sizes"])
    if peer is not None:
        assert "peer" in groups and "peer" in kinds and "peer" in results["pipeline"]
        assert results["peer"]["installed"] == peer.version


def test_results_md_has_the_tables_the_machine_and_the_command(bench_run):
    results, md = bench_run
    for heading in ("## Accuracy", "## Per-face latency", "## Pipeline FPS", "## Daemon", "## Model sizes"):
        assert heading in md
    assert results["command"] in md and results["machine"]["cpu"] in md


def test_fer_edge_bench_is_a_command():
    from edge_runtime.cli import build_parser

    args = build_parser().parse_args(["bench", "--runs", "2", "--only", "accuracy"])
    assert args.runs == 2 and args.only == ["accuracy"]
