"""`convert` shows parity without --parity-data, on the in-repo val sample, and says so (issue 14, item 16)."""

from __future__ import annotations

import json


def test_convert_shows_parity_on_the_in_repo_sample_by_default(cli, tiny_model, calibration_dir, tmp_path):
    out = tmp_path / "fer_tiny_int8.tflite"
    # A gate no model can pass: the sample is shown, not gated, so the conversion still succeeds.
    code, stdout, err = cli(["convert", "--model", str(tiny_model), "--int8", "--calibration", str(calibration_dir),
                             "--out", str(out), "--max-drop", "-100"])
    assert code == 0, err
    assert ("parity on the in-repo sample tests/data/val_sample (350 FER2013 val faces; shown, not gated or "
            "recorded: --parity-data DATA for that):") in stdout
    assert "350 faces" in stdout and "quantised vs float" in stdout
    assert "top-1 labels: fer_tiny.keras (float, rows) vs fer_tiny_int8.tflite (quantised, columns):" in stdout
    assert "PASS" not in stdout and "FAIL" not in stdout
    assert "parity" not in json.loads(out.with_suffix(".json").read_text())
