"""The face verifier shipped in edge_runtime/models: faces pass, what the cascade mistakes for one does not,
and the pipeline invents no face on a backdrop the cascade alone takes for one."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.dynamic_scenes import _textured
from bench.scenes import SceneOptions, render
from edge_runtime.boxes import Box
from edge_runtime.classifier import Classifier
from edge_runtime.detector import DetectorError, HaarDetector, HaarOptions
from edge_runtime.interpreter import ModelError
from edge_runtime.pipeline import Pipeline
from edge_runtime.sources import Frame
from edge_runtime.verifier import DEFAULT_THRESHOLD, SHIPPED_VERIFIER, FaceVerifier

UNVERIFIED = HaarOptions(verify_model="")


@pytest.fixture(scope="module")
def verifier():
    return FaceVerifier()


@pytest.fixture(scope="module")
def bait():
    """Backdrops (the dynamic-scene benchmark's generator, no face in them) on which the bare cascade finds a
    'face', with those boxes."""
    cascade = HaarDetector(UNVERIFIED)
    found = []
    for seed in range(400):
        bgr = np.clip(_textured(640, 480, np.random.default_rng(seed)), 0, 255).astype(np.uint8)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = cascade.detect(gray)
        if boxes:
            found.append((bgr, gray, boxes))
    assert len(found) >= 4, "the cascade found too few false faces to test the verifier on"
    return found


def test_the_shipped_verifier_keeps_val_faces(verifier, val_sample):
    # 350 FER2013 val faces (people the verifier never saw), whole and as a detector box crops them.
    p = verifier.scores(np.hstack(list(val_sample.images)), [(48 * i, 0, 48, 48) for i in range(len(val_sample))])
    assert (p >= DEFAULT_THRESHOLD).mean() >= 0.99
    shifted = verifier.scores(np.pad(np.hstack(list(val_sample.images)), 8, mode="edge"),
                              [(8 + 48 * i - 4, 8 + 5, 53, 53) for i in range(len(val_sample))])
    assert (shifted >= DEFAULT_THRESHOLD).mean() >= 0.97


def test_the_shipped_verifier_refuses_what_the_cascade_mistakes_for_a_face(verifier, bait):
    boxes = [(gray, b) for _, gray, found in bait for b in found]
    passed = sum(verifier.is_face(gray, b.as_list()) for gray, b in boxes)
    assert passed <= len(boxes) // 10, f"{passed} of {len(boxes)} cascade false faces passed the verifier"


def test_faces_pass_and_their_shuffled_pixels_do_not(frontal_faces, verifier):
    frame, placements = next(render(frontal_faces[:3], SceneOptions(frames=1, sizes=(110, 150), seed=8)))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    detector = HaarDetector()
    boxes = [max(detector.detect(gray), key=p.box.iou) for p in placements]
    assert all(detector.verify(gray, b) for b in boxes)
    b = boxes[0]
    shuffled = gray.copy()
    patch = shuffled[b.y : b.y + b.h, b.x : b.x + b.w]
    patch[:] = np.random.default_rng(0).permutation(patch.ravel()).reshape(patch.shape)
    assert not detector.verify(shuffled, b)
    assert HaarDetector(UNVERIFIED).verify(shuffled, b)


def test_the_threshold_is_inclusive(frontal_faces):
    frame, placements = next(render(frontal_faces[:1], SceneOptions(frames=1, sizes=(120, 120), seed=3)))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    box = placements[0].box.as_list()
    p = float(FaceVerifier().scores(gray, [box])[0])
    assert FaceVerifier(threshold=p).is_face(gray, box)
    assert not FaceVerifier(threshold=min(1.0, np.nextafter(np.float32(p), np.float32(2)))).is_face(gray, box)
    assert FaceVerifier(threshold=0.0).is_face(gray, box)


def test_the_pipeline_invents_no_face_on_a_backdrop_the_cascade_takes_for_one(bait, model):
    classifier = Classifier(model)
    for bgr, _, _ in bait:
        bare = Pipeline(HaarDetector(UNVERIFIED), classifier)
        verified = Pipeline(HaarDetector(), classifier)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        frames = [Frame(i, i / 30.0, bgr, gray) for i in range(12)]
        assert any(bare.process(f).faces for f in frames)  # the cascade alone shows a face here
        assert not any(verified.process(f).faces for f in frames)


def test_an_emotion_model_is_not_a_verifier(model):
    with pytest.raises(ModelError, match="not a face verifier"):
        FaceVerifier(model)
    with pytest.raises(DetectorError, match="face verifier.*not a face verifier"):
        HaarDetector(HaarOptions(verify_model=str(model)))


def test_bad_verifier_options_are_named(tmp_path):
    with pytest.raises(DetectorError, match="verify_threshold must be between 0 and 1"):
        HaarDetector(HaarOptions(verify_threshold=1.5))
    with pytest.raises(DetectorError, match="nope.tflite: model file not found"):
        HaarDetector(HaarOptions(verify_model=str(tmp_path / "nope.tflite")))
    assert HaarDetector(UNVERIFIED).verifier is None
    assert HaarDetector().verifier.path == SHIPPED_VERIFIER


def test_an_empty_box_list_costs_nothing(verifier):
    assert verifier.scores(np.zeros((10, 10), np.uint8), []).shape == (0,)
    assert not verifier.is_face(np.zeros((64, 64), np.uint8), Box(8, 8, 48, 48).as_list())


def test_detect_on_a_photo_of_a_backdrop_reports_no_face_unless_the_verifier_is_off(bait, model, tmp_path, capsys):
    from edge_runtime.cli import main

    photo = tmp_path / "wall.png"
    cv2.imwrite(str(photo), bait[0][0])
    args = ["detect", str(photo), "--model", str(model), "--json", "--no-progress"]
    main(args)
    assert capsys.readouterr().out.strip() == ""
    main([*args, "--verify-model", ""])
    assert json.loads(capsys.readouterr().out.splitlines()[0])["source"] == str(photo)


def test_a_bright_frontal_face_on_a_light_wall_is_kept(verifier, model):
    # A real photo (tests/data/wild/README.md) of a person the verifier never trained on: a clear, frontal,
    # well-lit face on a light wall, which the verifier trained on FER2013 crops alone gave P(face) 0.02.
    bgr = cv2.imread(str(Path(__file__).resolve().parents[1] / "data" / "wild" / "Billy_Crystal_0004.jpg"))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    boxes = HaarDetector(UNVERIFIED).detect(gray)
    face = max(boxes, key=lambda b: b.area)
    assert verifier.scores(gray, [face.as_list()])[0] >= 0.5
    assert HaarDetector().verify(gray, face)
    faces = Pipeline(HaarDetector(), Classifier(model)).process(Frame(0, 0.0, bgr, gray), still=True).faces
    assert len(faces) == 1 and faces[0].box.iou(face) > 0.8
