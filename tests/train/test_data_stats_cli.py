"""`fer-edge data stats PATH`: per-split, per-class counts; one clear sentence on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.cli import main
from edge_runtime.labels import LABELS

# split -> {class folder name: number of faces}
COUNTS = {"train": {"happiness": 3, "anger": 1, "surprised": 2}, "val": {"neutral": 2, "sad": 1}}


@pytest.fixture
def fer_folders(tmp_path, write_image, faces):
    for split, classes in COUNTS.items():
        for name, n in classes.items():
            for i, img in enumerate(faces(n, seed=len(name))):
                write_image(tmp_path / "fer" / split / name / f"{i}.png", img)
    return tmp_path / "fer"


def _expected(split: str) -> dict[str, int]:
    canonical = {"happiness": "happy", "anger": "angry", "surprised": "surprise", "neutral": "neutral",
                 "sad": "sad"}
    counts = dict.fromkeys(LABELS, 0)
    for name, n in COUNTS[split].items():
        counts[canonical[name]] = n
    return counts


def test_table_has_a_row_per_split_and_a_column_per_class(fer_folders, capsys):
    assert main(["data", "stats", str(fer_folders)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{fer_folders} (folders)"
    assert out[1].split() == ["split", "faces", *LABELS]
    rows = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert set(rows) == {"train", "val"}
    for split in rows:
        want = _expected(split)
        assert rows[split] == [str(sum(want.values()))] + [str(want[c]) for c in LABELS]


def test_json_output_parses(fer_folders, capsys):
    assert main(["data", "stats", str(fer_folders), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["path"] == str(fer_folders) and doc["format"] == "folders" and doc["skipped"] == 0
    for split in COUNTS:
        assert doc["splits"][split]["classes"] == _expected(split)
        assert doc["splits"][split]["faces"] == sum(COUNTS[split].values())


def test_unlabelled_csv_has_no_class_counts(write_csv, faces, capsys):
    path = write_csv("test.csv", "pixels", [[img] for img in faces(2)])
    assert main(["data", "stats", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"] == {"test": {"faces": 2, "classes": None}}


def test_skip_bad_counts_what_it_skipped(fer_folders, capsys):
    bad = fer_folders / "val" / "sad" / "broken.jpg"
    bad.write_text("not a picture")
    assert main(["data", "stats", str(fer_folders)]) == 1
    assert str(bad) in capsys.readouterr().err

    assert main(["data", "stats", str(fer_folders), "--skip-bad", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] == 1
    assert str(bad) in captured.err  # the skipped file is listed, not hidden


def _fer_edge() -> list[str]:
    script = shutil.which("fer-edge", path=str(Path(sys.executable).parent)) or shutil.which("fer-edge")
    if script is None:
        pytest.skip("the fer-edge console script is not installed (pip install -e .)")
    return [script]


@pytest.mark.parametrize("command", [_fer_edge, lambda: [sys.executable, "-m", "edge_runtime.cli"]],
                         ids=["console-script", "python-m"])
def test_bad_path_exits_non_zero_with_one_sentence(tmp_path, command):
    missing = tmp_path / "no_such_fer2013.csv"
    proc = subprocess.run([*command(), "data", "stats", str(missing)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"fer-edge data: {missing}: no such file or folder"
    assert proc.stdout == ""


def test_bad_path_in_process(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nothing_here")]) == 1
    assert str(tmp_path / "nothing_here") in capsys.readouterr().err
