"""Real photographs for the face verifier (train/wild_data.py): split by person, faces and windows away from them,
and the real-world variety train/verifier_data.py adds to every face."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.boxes import Box
from edge_runtime.detector import HaarDetector
from train import wild_data
from train.verifier_data import background, glasses, light, make_verifier_data, real_variety

WILD = Path(__file__).resolve().parents[1] / "data" / "wild"


def test_a_person_is_the_name_without_its_number_and_stays_in_one_half():
    assert wild_data.person("a/George_W_Bush_0012.jpg") == "George_W_Bush"
    assert wild_data.person("Dileep_33.jpg") == "Dileep"
    assert wild_data.person("x/Madonna.png") == "Madonna"
    names = [f"person_{i}" for i in range(400)]
    halves = [wild_data.half(n) for n in names]
    assert set(halves) == {0, 1} and 150 < sum(halves) < 250
    # A fixed hash, not Python's salted hash(): the same half on every machine and run.
    assert wild_data.half("Billy_Crystal") == wild_data.half("Jennifer_Capriati") == wild_data.HELD_OUT_HALF


@pytest.fixture(scope="module")
def wild_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wild")
    (root / "angry").mkdir()
    (root / "happy").mkdir()
    shutil.copy(WILD / "Billy_Crystal_0004.jpg", root / "angry")
    shutil.copy(WILD / "Jennifer_Capriati_0030.jpg", root / "happy" / "Jennifer_Capriati_0030.jpg")
    (root / "happy" / "notes.txt").write_text("not a photo")
    return root


def test_photos_by_class_and_half(wild_root):
    every = wild_data.photos(wild_root)
    assert [(p.path.name, p.label, p.person) for p in every] == [
        ("Billy_Crystal_0004.jpg", 0, "Billy_Crystal"), ("Jennifer_Capriati_0030.jpg", 3, "Jennifer_Capriati")]
    assert wild_data.photos(wild_root, wild_data.HELD_OUT_HALF) == every
    with pytest.raises(FileNotFoundError):
        wild_data.photos(wild_root, wild_data.TRAIN_HALF)


def test_away_from_the_face():
    face = Box(100, 100, 100, 100)
    assert not wild_data.away(Box(105, 95, 95, 95), face)  # the face, framed otherwise
    assert wild_data.away(Box(100, 200, 100, 100), face)  # below it: chin and neck
    assert wild_data.away(Box(130, 130, 30, 30), face)  # an eye
    assert not wild_data.away(Box(120, 120, 60, 60), face)  # most of the face


def test_verifier_crops_hold_the_face_and_windows_away_from_it(wild_root):
    rng = np.random.default_rng(0)
    faces, others = wild_data.verifier_crops(wild_data.photos(wild_root), rng, faces_per_photo=3,
                                             non_faces_per_photo=5)
    assert faces.shape == (6, 48, 48) and faces.dtype == np.uint8
    assert 2 <= len(others) <= 10
    exact, _ = wild_data.verifier_crops(wild_data.photos(wild_root), rng, jitter=False)
    assert len(exact) == 2


def test_wild_crops_join_both_sides(val_sample):
    faces = val_sample.images[:60]
    rng = np.random.default_rng(1)
    real = (faces[:10].copy(), np.full((20, 48, 48), 128, np.uint8))
    plain = make_verifier_data(faces, size=32, seed=1)
    data = make_verifier_data(faces, size=32, seed=1, wild=real)
    assert int(data.labels.sum()) == len(faces) + 10
    # 20 real non-faces and about 30 % more with other light, in place of as many backdrop windows.
    assert abs(int((data.labels == 0).sum()) - int((plain.labels == 0).sum()) - 10) <= 40
    assert rng is not None


def test_the_variety_keeps_shape_and_changes_the_faces(val_sample):
    faces = val_sample.images[:40]
    for change in (light, background, glasses):
        out = change(faces, np.random.default_rng(2))
        assert out.shape == faces.shape and out.dtype == np.uint8
        assert (np.abs(out.astype(int) - faces).mean(axis=(1, 2)) > 1).mean() > 0.8, change.__name__
    # A glasses band darkens the eye row, not the mouth's.
    dark = glasses(faces, np.random.default_rng(3)).astype(int) - faces
    assert dark[:, 14:22].mean() < dark[:, 36:44].mean() - 5
    # A background change leaves the face's middle alone.
    back = background(faces, np.random.default_rng(4)).astype(int) - faces
    assert np.abs(back[:, 20:28, 20:28]).mean() < 1 < np.abs(back[:, :4, :4]).mean()
    some = real_variety(faces, np.random.default_rng(5), prob=0.5)
    changed = (some != faces).any(axis=(1, 2)).mean()
    assert 0.2 < changed < 0.8


class _Fixed:
    def __init__(self, *boxes):
        self.boxes = list(boxes)

    def detect(self, gray):
        return list(self.boxes)


def test_the_verifier_learns_each_detectors_framing_of_the_face_only():
    gray = np.zeros((300, 300), np.uint8)
    face, haar_face = Box(40, 40, 220, 220), Box(50, 45, 200, 200)
    nose = Box(120, 120, 70, 70)  # the cascade's find inside BlazeFace's face: 0.23 of the side, not a face
    found = wild_data.Finders(_Fixed(face), (_Fixed(nose), _Fixed(face)), None)
    assert wild_data.framings(gray, found) == [face]
    found = wild_data.Finders(_Fixed(face), (_Fixed(haar_face), _Fixed(face)), None)
    assert wild_data.framings(gray, found) == [face, haar_face]
    # A face path that finds no face (or one under FACE_SHARE of the shorter side) gives no framing at all.
    assert wild_data.framings(gray, wild_data.Finders(_Fixed(Box(0, 0, 59, 59)), (_Fixed(face),), None)) == []


def test_the_real_finders_are_the_default_face_path_and_each_of_its_detectors():
    import cv2

    from edge_runtime.blazeface import BlazeFaceDetector
    from edge_runtime.detector import EitherDetector

    found = wild_data.finders()
    assert isinstance(found.face_path, EitherDetector) and found.face_path.first.verifier is None
    assert isinstance(found.each[0], HaarDetector) and isinstance(found.each[1], BlazeFaceDetector)
    gray = cv2.imread(str(WILD / "Billy_Crystal_0004.jpg"), cv2.IMREAD_GRAYSCALE)
    boxes = wild_data.framings(gray, found)
    # Both detectors find this face, each framing it its own way; the face path's box comes first.
    assert len(boxes) == 2 and boxes[0] == max(found.face_path.detect(gray), key=lambda b: b.area)
    assert boxes[1].iou(boxes[0]) >= 0.3
