"""`fer-edge parity` and `convert --parity-data`: the figures, and the gate that fails a broken model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_runtime.metadata import read_metadata, sha256_file, sidecar_path, write_json_atomic


def test_convert_records_parity_in_metadata(int8_model, parity_data):
    parity = read_metadata(int8_model)["parity"]
    assert parity["data"] == str(parity_data) and parity["split"] == "val" and parity["n"] == 70
    assert parity["float_accuracy"] > 0.9  # the tiny model learnt the coded faces
    assert parity["passed"] is True and parity["accuracy_drop_pp"] <= 1.0
    assert np.sum(parity["label_confusion"]) == 70
    assert set(parity["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_parity_json_on_a_good_int8_model(int8_model, tiny_model, parity_data, cli):
    code, out, err = cli(["parity", "--float", str(tiny_model), "--quant", str(int8_model),
                          "--data", str(parity_data), "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["agreement"] >= 0.95 and report["mean_abs_prob_diff"] < 0.05
    assert report["quant_accuracy"] == pytest.approx(report["float_accuracy"], abs=0.02)
    # Each per-class delta is the difference of the two per-class accuracies.
    for c in report["per_class"].values():
        assert c["delta_pp"] == pytest.approx(100 * (c["quant_accuracy"] - c["float_accuracy"]))
    assert np.trace(report["label_confusion"]) == round(report["agreement"] * report["n"])


def test_parity_on_faces_the_models_get_wrong(int8_model, tiny_model, coded, face_folders, tmp_path, cli):
    # Every third face carries the next class's label: both models are then right on only ~2/3 of the
    # faces, while they still agree with each other on nearly all, so agreement is not accuracy.
    images, labels = coded(63, seed=4)
    labels[::3] = (labels[::3] + 1) % 7
    face_folders(tmp_path / "mislabelled" / "val", images, labels)
    code, out, err = cli(["parity", "--float", str(tiny_model), "--quant", str(int8_model),
                          "--data", str(tmp_path / "mislabelled"), "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["float_accuracy"] < 0.7 and report["agreement"] >= 0.95
    for c in report["per_class"].values():
        assert c["delta_pp"] == pytest.approx(100 * (c["quant_accuracy"] - c["float_accuracy"]))


def test_parity_fails_a_model_calibrated_on_a_constant_image(tiny_model, int8_model, parity_data, tmp_path, cli):
    from convert import calibration, tflite
    from edge_runtime.interpreter import input_info, make_interpreter

    # `convert` refuses a constant calibration set (see test_convert), so build the broken model the
    # way a careless script would: the library's conversion, then the bytes written out by hand.
    (tmp_path / "cal").mkdir()
    cv2.imwrite(str(tmp_path / "cal" / "grey.png"), np.full((48, 48), 128, np.uint8))
    constant = calibration.load(tmp_path / "cal", 48)
    broken = tmp_path / "broken_int8.tflite"
    broken.write_bytes(tflite.to_tflite(tflite.load_source(tiny_model), "int8", calibration=constant))
    inp = input_info(make_interpreter(broken))
    meta = read_metadata(int8_model)
    meta["quantization"]["input"] = {"dtype": "int8", "scale": inp.scale, "zero_point": inp.zero_point}
    meta.update(sha256=sha256_file(broken), size_bytes=broken.stat().st_size)  # the loader checks the file's hash
    write_json_atomic(sidecar_path(broken), meta)

    code, out, err = cli(["parity", "--float", str(tiny_model), "--quant", str(broken), "--data", str(parity_data)])
    assert code == 1, out + err
    assert "FAIL: quantised accuracy" in out
    # The exit status follows --max-drop: a gate wide enough lets the same model through.
    code, _, _ = cli(["parity", "--float", str(tiny_model), "--quant", str(broken), "--data", str(parity_data),
                      "--max-drop", "100"])
    assert code == 0


def test_parity_refuses_models_with_different_labels(int8_model, tiny_model, parity_data, tmp_path, cli):
    relabelled = tmp_path / "relabelled.tflite"
    relabelled.write_bytes(int8_model.read_bytes())
    meta = read_metadata(int8_model)
    meta["labels"] = meta["labels"][1:] + meta["labels"][:1]
    relabelled.with_suffix(".json").write_text(json.dumps(meta))
    code, _, err = cli(["parity", "--float", str(tiny_model), "--quant", str(relabelled), "--data", str(parity_data)])
    assert code == 2 and "different classes" in err


def test_parity_refuses_unlabelled_or_missing_inputs(int8_model, tiny_model, tmp_path, cli):
    code, _, err = cli(["parity", "--float", str(tmp_path / "x.keras"), "--quant", str(int8_model),
                        "--data", str(tmp_path)])
    assert code == 2 and "x.keras: model file not found" in err
    (tmp_path / "test.csv").write_text("pixels\n" + " ".join(["0"] * 2304) + "\n")
    code, _, err = cli(["parity", "--float", str(tiny_model), "--quant", str(int8_model),
                        "--data", str(tmp_path / "test.csv")])
    assert code == 2 and "unlabelled" in err


def test_parity_refuses_swapped_or_unquantised_models(int8_model, tiny_model, float32_model, parity_data, cli):
    """--float and --quant swapped used to run and print the report with its labels reversed."""
    code, out, err = cli(["parity", "--float", str(int8_model), "--quant", str(tiny_model), "--data", str(parity_data)])
    assert (code, out) == (2, "") and err == (f"fer-edge parity: {int8_model}: --float takes the float model, but this "
                                              "is a quantised (int8) model; did you swap --float and --quant?\n")
    code, out, err = cli(["parity", "--float", str(tiny_model), "--quant", str(float32_model),
                          "--data", str(parity_data)])
    assert (code, out) == (2, "") and err == (f"fer-edge parity: {float32_model}: --quant takes a quantised model "
                                              "(int8, float16, dynamic), but this is a float32 model\n")
