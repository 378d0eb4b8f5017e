"""The shipped models on the in-repo val sample: a guard against preprocessing and label drift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.classifier import Classifier, default_model_path
from edge_runtime.labels import LABELS
from edge_runtime.metadata import read_metadata, sha256_file
from tests.conftest import SHIPPED, SHIPPED_INT8

# name: (accuracy floor on the 350-face val sample, top-1 int8/float agreement floor, parameter ceiling,
# largest int8 accuracy drop in pp on the sample). The shipped files score: fer_mobile float 60.6 %,
# int8 59.1 %, agreement 96.3 %; fer_cnn (vgg_c3r) 66.6 %, 66.9 %, 98.9 % (on all of val the int8 drops are
# 0.39 and -0.11 pp); fer_faceapi 54.6 %, 55.4 %, 94.9 % (made for real photographs, not FER2013's crops).
# Floors sit ~2 pp under, so only a real regression trips them.
GUARDS = {"fer_mobile": (0.57, 0.94, 300_000, 2.0), "fer_cnn": (0.645, 0.97, 2_000_000, 1.0),
          "fer_blend": (0.645, 0.97, 2_100_000, 1.0), "fer_faceapi": (0.52, 0.93, 330_000, 2.0)}
NAMES = sorted(SHIPPED)


@pytest.fixture(scope="module")
def probs(val_sample):
    """name -> (float probabilities, int8 probabilities) on the val sample."""
    pytest.importorskip("keras")
    from train.predict import load_predictor

    return {name: (load_predictor(f).predict(val_sample.images),
                   Classifier(q, batch_size=50).predict(val_sample.images)) for name, (f, q) in SHIPPED.items()}


def test_the_device_default_is_the_shipped_fer_blend_int8():
    assert default_model_path() == SHIPPED_INT8 == SHIPPED["fer_blend"][1] and SHIPPED_INT8.exists()


def test_the_blend_is_made_of_the_shipped_models_it_names():
    """fer_blend's card names its members by file and sha256: they are the shipped fer_cnn and fer_mobile, so the
    blend is what the card says (a member retrained and published again must be blended again)."""
    card = json.loads(SHIPPED["fer_blend"][0].with_suffix(".json").read_text())
    members = card["training"]["members"]
    assert [(m["name"], m["weight"]) for m in members] == [("fer_cnn", 0.6), ("fer_mobile", 0.4)]
    for m in members:
        assert m["sha256"] == sha256_file(SHIPPED[m["name"]][0])
    assert card["training"]["command"].startswith("fer-edge blend ")
    mine = card["tflite"]["int8"]["parity"]
    assert (mine["split"], mine["n"]) == ("val", 3589) and mine["accuracy_drop_pp"] <= 0.5
    assert mine["quant_accuracy"] >= 0.67  # the device default: int8 >= 67.0 % (issue 16), single crop
    assert card["multiply_adds"] == sum(json.loads(SHIPPED[m["name"]][0].with_suffix(".json").read_text())
                                        ["multiply_adds"] for m in members)


def test_the_default_corrects_its_class_prior_by_the_weights_its_card_records(val_sample):
    """fer_blend multiplies each class's probability by the weight its card names (fitted on half 0 of wild_dev's
    people with FER2013 val held at 67 %, train/class_weights.py): its answers are the plain 0.6 / 0.4 blend of
    the shipped members, reweighted by exactly those numbers."""
    keras = pytest.importorskip("keras")
    from train.blend import build_blend
    from train.class_weights import log_bias, reweighted

    card = json.loads(SHIPPED["fer_blend"][0].with_suffix(".json").read_text())
    weights = card["training"]["class_weights"]
    assert list(weights) == list(LABELS)
    fit = card["training"]["class_weights_fit"]
    assert (fit["half"], fit["floor"], fit["wild"]) == (0, 0.67, "../shared/wild_dev")
    assert min(fit["figures"]["after"]["val_single"], fit["figures"]["after"]["val_flip"]) >= 0.67
    faces = val_sample.images[:120, ..., None].astype("float32")
    plain = build_blend([keras.saving.load_model(SHIPPED[n][0]) for n in ("fer_cnn", "fer_mobile")], [0.6, 0.4])
    shipped = keras.saving.load_model(SHIPPED["fer_blend"][0])
    expected = reweighted(plain.predict(faces, verbose=0), log_bias(list(weights.values())))
    np.testing.assert_allclose(shipped.predict(faces, verbose=0), expected, atol=1e-4)
    assert not np.allclose(plain.predict(faces, verbose=0), expected, atol=1e-3)  # the weights do something


def test_the_real_photo_model_names_the_weights_it_started_from_and_carries_their_licences():
    """fer_faceapi started from face-api's expression weights (train/faceapi_weights.py): its card names the npm
    package by version and sha256, and both MIT notices travel with it into the int8 card (and so a bundle)."""
    from train.faceapi_weights import NOTICES, TARBALL_SHA256

    card = json.loads(SHIPPED["fer_faceapi"][0].with_suffix(".json").read_text())
    source = card["training"]["init_from"]["training"]["source"]
    assert (source["package"], source["version"], source["sha256"]) == ("@vladmandic/face-api", "1.7.15",
                                                                       TARBALL_SHA256)
    assert card["arch"] == "faceapi_dense" and "--init runs/faceapi_init96.keras" in card["training"]["command"]
    assert card["notices"] == list(NOTICES) == read_metadata(SHIPPED["fer_faceapi"][1])["notices"]


def test_models_that_learnt_from_face_apis_answers_carry_its_licences_to_the_device():
    """fer_mobile (since session 12) was distilled from a pool holding fer_faceapi, and fer_blend holds that
    fer_mobile: face-api's MIT notices are in their float and int8 cards (and so in a bundle); fer_cnn owes it none."""
    from train.faceapi_weights import NOTICES

    mobile = read_metadata(SHIPPED["fer_mobile"][0])
    assert any(t["sha256"] and "--teacher runs/pool_t2/model.keras" in mobile["training"]["command"]
               for t in mobile["training"]["teachers"])
    for name in ("fer_mobile", "fer_blend"):
        for path in SHIPPED[name]:
            assert read_metadata(path)["notices"] == list(NOTICES), path
    assert "notices" not in read_metadata(SHIPPED["fer_cnn"][1])


def test_the_cards_record_the_campaign_targets_that_the_shipped_models_meet():
    """Issue 16, on all 3,589 val faces, as `fer-edge convert --parity-data ../shared/fer2013` recorded them for
    exactly these files (the card's int8 sha256 is checked below). Not held here because not met: the accurate
    model's float >= 70 % (67.07 %) and the default's time per face <= 1.5x the peer's (fer_cnn 1.31x and 1.60x in
    two bench runs, fer_blend 1.82x and 1.92x: bench/RESULTS.md)."""
    float_model, int8_model = SHIPPED["fer_cnn"]
    card = json.loads(float_model.with_suffix(".json").read_text())
    parity = card["tflite"]["int8"]["parity"]
    assert card["tflite"]["int8"]["sha256"] == sha256_file(int8_model)
    assert (parity["split"], parity["n"]) == ("val", 3589)
    assert parity["quant_accuracy"] >= 0.67  # int8 >= 67.0 %, as the blend below, the device default since 2026-12-06
    assert parity["accuracy_drop_pp"] <= 0.3  # the accurate model's bar (the default's is 0.5 pp)
    assert int8_model.stat().st_size <= 8_000_000


@pytest.mark.parametrize("name", NAMES)
def test_model_card_describes_the_float_model(name):
    float_model, int8_model = SHIPPED[name]
    card = json.loads(float_model.with_suffix(".json").read_text())
    assert card["tflite"]["int8"]["sha256"] == sha256_file(int8_model)
    assert card["tflite"]["int8"]["parity"]["split"] == "val"
    assert card["labels"] == list(LABELS)
    assert card["sha256"] == sha256_file(float_model)
    assert card["parameters"] <= GUARDS[name][2]
    assert card["multiply_adds"] > 0
    assert set(card["evaluation"]["per_class"]) == set(LABELS)
    assert card["training"]["command"].startswith("fer-edge blend" if name == "fer_blend" else "fer-edge train")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_models_score_on_val_sample(name, probs, val_sample):
    for kind, p in zip(("float", "int8"), probs[name], strict=True):
        accuracy = float((p.argmax(1) == val_sample.labels).mean())
        assert accuracy >= GUARDS[name][0], f"shipped {name} {kind}: {accuracy:.3f} on the val sample"


@pytest.mark.parametrize("name", NAMES)
def test_int8_keeps_the_float_accuracy(name, probs, val_sample):
    float_probs, int8_probs = probs[name]
    float_acc = (float_probs.argmax(1) == val_sample.labels).mean()
    int8_acc = (int8_probs.argmax(1) == val_sample.labels).mean()
    agreement = (float_probs.argmax(1) == int8_probs.argmax(1)).mean()
    assert (float_acc - int8_acc) * 100 <= GUARDS[name][3]
    assert agreement >= GUARDS[name][1]
    assert np.abs(float_probs - int8_probs).mean() < 0.02


@pytest.mark.parametrize("name", NAMES)
def test_int8_metadata_matches_the_model(name):
    float_model, int8_model = SHIPPED[name]
    meta = read_metadata(int8_model)
    assert meta["labels"] == list(LABELS)
    assert meta["sha256"] == sha256_file(int8_model)
    # uint8-range input normalised in the graph: int8 input is exactly pixel - 128.
    assert (meta["quantization"]["input"]["scale"], meta["quantization"]["input"]["zero_point"]) == (1.0, -128)
    assert meta["source_model"]["sha256"] == sha256_file(float_model)


def test_converting_the_default_model_reproduces_the_shipped_int8(tmp_path, val_sample, probs):
    """The whole conversion journey on the real model: calibrate on calibration_data/, gate on parity."""
    pytest.importorskip("tensorflow")
    import shutil

    from edge_runtime.cli import main
    from tests.conftest import REPO, SHIPPED_FLOAT, VAL_SAMPLE

    float_model, name = SHIPPED_FLOAT, SHIPPED_FLOAT.stem
    source = tmp_path / float_model.name
    shutil.copyfile(float_model, source)
    shutil.copyfile(float_model.with_suffix(".json"), source.with_suffix(".json"))
    status = main(["convert", "--model", str(source), "--int8", "--calibration", str(REPO / "calibration_data"),
                   "--parity-data", str(VAL_SAMPLE), "--parity-split", "train", "--max-drop", "1.5"])
    assert status == 0  # the parity gate passed
    rebuilt_path = tmp_path / f"{name}_int8.tflite"
    rebuilt = Classifier(rebuilt_path, batch_size=50).predict(val_sample.images)
    assert (rebuilt.argmax(1) == probs[name][1].argmax(1)).mean() >= 0.99
    assert read_metadata(rebuilt_path)["parity"]["passed"] is True
