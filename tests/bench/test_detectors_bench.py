"""bench.detectors: the detectors it compares are the ones `--detector` builds, and it writes its own section of
RESULTS.md (leaving the others) with every detector's row."""

import json
import shutil
from pathlib import Path

import pytest

from bench import detectors
from edge_runtime.blazeface import BlazeFaceDetector
from edge_runtime.detector import EitherDetector, HaarDetector

WILD = Path(__file__).resolve().parents[1] / "data" / "wild"
pytestmark = pytest.mark.slow


def test_the_shipped_detectors_are_built_as_detect_builds_them_without_the_verifier():
    haar, blaze, either = (detectors.shipped(name) for name in ("haar", "blazeface", "haar+blazeface"))
    assert isinstance(haar, HaarDetector) and haar.verifier is None
    assert isinstance(blaze, BlazeFaceDetector)
    assert isinstance(either, EitherDetector) and isinstance(either.first, HaarDetector)
    assert either.first.verifier is None and isinstance(either.second, BlazeFaceDetector)


def test_a_small_run_writes_its_section_and_keeps_the_others(tmp_path):
    data = tmp_path / "wild" / "angry"
    data.mkdir(parents=True)
    for name in ("Billy_Crystal_0004.jpg", "Jennifer_Capriati_0030.jpg"):  # photos every detector finds
        shutil.copy(WILD / name, data / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "RESULTS.md").write_text("<!-- wild: written by python -m bench.wild -->\nkept\n<!-- /wild -->\n")
    assert detectors.main(["--data", str(tmp_path / "wild"), "--portraits", "1", "--faceless", "1",
                           "--out", str(out)]) == 0
    text = (out / "RESULTS.md").read_text()
    assert "kept" in text
    section = text[text.index(detectors.BEGIN) : text.index(detectors.END)]
    # Both photos found by every shipped detector, one row each in (a) and (b).
    for name in ("haar", "blazeface", "haar+blazeface"):
        assert f"  {name:<24} 1.000  (2)" in section
        rows = [line.split() for line in section.splitlines() if line.startswith("  ")]
        assert sum(row[0] == name and row[1][0].isdigit() for row in rows) == 2
    # The face path's answers too: the verifier keeps both real faces.
    for name in ("haar, vetted", "haar+blazeface, vetted"):
        assert f"  {name:<24} 1.000  (2)" in section
    results = json.loads((out / "detectors_results.json").read_text())
    assert results["command"].startswith("python -m bench.detectors") and results["report"]
