"""The calibration set: the committed one, the builder, and the loader's refusals."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from convert import calibration
from edge_runtime.labels import LABELS
from edge_runtime.metadata import sha256_file


def _manifest(folder):
    with open(folder / calibration.MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))


def test_committed_set_is_real_stratified_and_verified(repo_calibration):
    rows = _manifest(repo_calibration)
    counts = {name: sum(r["label"] == name for r in rows) for name in LABELS}
    assert 450 <= len(rows) <= 550
    assert min(counts.values()) >= 40, counts  # every class, disgust (the rarest) included
    assert all(r["source"].startswith("train/") and r["source"].endswith(".jpg") for r in rows)
    assert (repo_calibration / "README.md").read_text().count("seeded with 0") == 1
    # load() checks every sha256 and size; real faces span the full pixel range.
    cal = calibration.load(repo_calibration, 48)
    assert cal.faces.shape == (len(rows), 48, 48)
    assert cal.faces.min() == 0 and cal.faces.max() == 255
    assert cal.manifest_sha256 == sha256_file(repo_calibration / calibration.MANIFEST)


def test_representative_dataset_is_exactly_the_faces(calibration_dir):
    cal = calibration.load(calibration_dir, 48)
    batches = [b[0] for b in cal.representative_dataset()()]
    assert len(batches) == len(cal) == 21
    assert all(b.shape == (1, 48, 48, 1) and b.dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches)[..., 0], cal.faces)


def test_build_from_image_folders_is_stratified_and_reproducible(tmp_path, cli, coded, face_folders):
    images, labels = coded(70, seed=5)
    face_folders(tmp_path / "fer" / "train", images, labels)
    args = ["calibration", "build", "--data", str(tmp_path / "fer"), "--per-class", "4", "--seed", "7"]
    assert cli(args + ["--out", str(tmp_path / "a")])[0] == 0
    assert cli(args + ["--out", str(tmp_path / "b")])[0] == 0
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (tmp_path / "b" / "manifest.csv").read_bytes()
    rows = _manifest(tmp_path / "a")
    assert [r["label"] for r in rows] == [name for name in LABELS for _ in range(4)]
    for r in rows:
        png = tmp_path / "a" / r["file"]
        assert sha256_file(png) == r["sha256"]
        face = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert face.shape == (48, 48) and face.dtype == np.uint8
        source = cv2.imread(str(tmp_path / r["source"]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(face, source)
    assert cli(args[:-1] + ["8", "--out", str(tmp_path / "c")])[0] == 0
    assert _manifest(tmp_path / "c") != rows


def test_build_from_kaggle_csv(tmp_path, cli, coded):
    images, labels = coded(21, seed=6)
    lines = ["emotion,pixels,Usage"] + [f"{lab},{' '.join(map(str, img.ravel()))},Training"
                                       for img, lab in zip(images, labels, strict=True)]
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    code, out, err = cli(["calibration", "build", "--data", str(tmp_path / "fer2013.csv"), "--per-class", "5",
                          "--out", str(tmp_path / "cal")])
    assert code == 0, err
    rows = _manifest(tmp_path / "cal")
    assert len(rows) == 21 and all(r["source"].startswith("fer2013.csv:") for r in rows)
    assert "fewer than 5" in err  # 3 faces per class exist; all taken, and said so


def test_build_refuses_a_missing_class_and_writes_nothing(tmp_path, cli, coded, face_folders):
    images, labels = coded(70, seed=5)
    keep = labels != LABELS.index("disgust")
    face_folders(tmp_path / "fer" / "train", images[keep], labels[keep])
    code, _, err = cli(["calibration", "build", "--data", str(tmp_path / "fer"), "--out", str(tmp_path / "cal")])
    assert code == 2 and "no 'disgust' faces" in err
    assert not (tmp_path / "cal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer"]


def test_build_refuses_a_non_empty_folder(tmp_path, cli):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "mine.txt").write_text("keep me")
    code, _, err = cli(["calibration", "build", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "cal")])
    assert code == 2 and "not empty" in err and "--overwrite" in err
    assert (tmp_path / "cal" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("damage, message", [
    ("empty", "no face images"),
    ("edited", "sha256 differs"),
    ("corrupt", "not a decodable image"),
    ("wrong_size", "is 64x64, but the model takes 48x48"),
    ("missing_file", "is missing from"),
])
def test_load_refuses_bad_sets(tmp_path, damage, message, coded):
    folder = tmp_path / "cal"
    folder.mkdir()
    face = coded(1)[0][0]
    if damage in ("corrupt", "wrong_size"):
        # No manifest: a plain folder of faces is accepted too, so each image is checked on its own.
        (folder / "x").mkdir()
        bad = folder / "x" / "face.png"
        if damage == "corrupt":
            bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            cv2.imwrite(str(bad), cv2.resize(face, (64, 64)))
    elif damage != "empty":
        cv2.imwrite(str(folder / "a.png"), face)
        digest = sha256_file(folder / "a.png")
        (folder / "manifest.csv").write_text(f"file,label,sha256,source\na.png,happy,{digest},x\n")
        if damage == "edited":
            cv2.imwrite(str(folder / "a.png"), 255 - face)
        else:
            (folder / "a.png").unlink()
    with pytest.raises(calibration.CalibrationError, match=message) as info:
        calibration.load(folder, 48)
    assert str(folder) in str(info.value)
