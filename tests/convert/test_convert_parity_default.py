"""`convert` shows parity without --parity-data, on the in-repo val sample, and says so (issue 14, item 16)."""

from __future__ import annotations

import json


def test_convert_shows_parity_on_the_in_repo_sample_by_default(cli, tiny_model, calibration_dir, tmp_path):
    out = tmp_path / "fer_tiny_int8.tflite"
    # A gate no model can pass: the sample is shown, not gated, so the conversion still succeeds.
    code, stdout, err = cli(["convert", "--model", str(tiny_model), "--int8", "--calibration", str(calibration_dir),
                             "--out", str(out), "--max-drop", "-100"])
    assert code == 0, err
    assert ("parity on the in-repo sample convert/val_sample (350 FER2013 val faces; shown, not gated or "
            "recorded: --parity-data DATA for that):") in stdout
    assert "350 faces" in stdout and "quantised vs float" in stdout
    assert "top-1 labels: fer_tiny.keras (float, rows) vs fer_tiny_int8.tflite (quantised, columns):" in stdout
    assert "PASS" not in stdout and "FAIL" not in stdout
    assert "parity" not in json.loads(out.with_suffix(".json").read_text())


def test_the_sample_ships_with_convert_not_with_the_tests():
    """The product reads the sample at run time, so the wheel carries it (issue 22, item 3)."""
    from pathlib import Path

    from convert.cli import VAL_SAMPLE
    from release_tools.wheel import package_files

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    repo = Path(__file__).resolve().parents[2]
    assert VAL_SAMPLE.is_relative_to(repo / "convert")
    shipped = package_files(repo, tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"])
    faces = sorted(p.relative_to(repo).as_posix() for p in VAL_SAMPLE.rglob("*.jpg"))
    assert len(faces) == 350 and set(faces) <= set(shipped)
