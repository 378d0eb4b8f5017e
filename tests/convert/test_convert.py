"""`fer-edge convert`: each precision, the metadata that travels with the model, and every refusal."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from convert import calibration
from convert.flatbuffer import float_ops, read_graph
from edge_runtime.classifier import Classifier
from edge_runtime.metadata import read_metadata, sha256_file


def _sample_faces(repo_calibration, n=16):
    """Real FER2013 faces (from the committed calibration set), one per few files across the classes."""
    faces = calibration.load(repo_calibration, 48).faces
    return faces[:: len(faces) // n][:n]


def _keras_probs(model_path, faces):
    import keras

    model = keras.saving.load_model(model_path)
    return model.predict(faces[..., None].astype(np.float32), verbose=0)


def test_float32_tflite_agrees_with_keras_on_real_faces(float32_model, tiny_model, repo_calibration):
    faces = _sample_faces(repo_calibration)
    tflite = Classifier(float32_model, batch_size=len(faces)).predict(faces)
    np.testing.assert_allclose(tflite, _keras_probs(tiny_model, faces), atol=1e-5)
    meta = read_metadata(float32_model)
    assert meta["precision"] == "float32" and meta["quantization"] == {"input": None, "output": None}
    assert meta["calibration"] is None


def test_int8_model_metadata_and_exact_input_quantisation(int8_model, tiny_model, calibration_dir):
    meta = read_metadata(int8_model)
    assert meta["quantization"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}
    assert meta["quantization"]["output"]["dtype"] == "int8"
    assert meta["sha256"] == sha256_file(int8_model) and meta["size_bytes"] == int8_model.stat().st_size
    assert meta["source_model"] == {"file": "fer_tiny.keras", "sha256": sha256_file(tiny_model),
                                    "arch": "tiny_test_cnn"}
    assert meta["calibration"] == {"path": str(calibration_dir), "faces": 21,
                                   "manifest_sha256": sha256_file(calibration_dir / "manifest.csv")}
    assert meta["labels"] == list(read_metadata(tiny_model)["labels"])
    assert meta["preprocessing"] == {"size": 48, "margin": 0.0, "color": "gray"}
    assert {"tensorflow", "keras", "fer_edge"} <= set(meta["converter"])
    # Full integer: not one op reads or writes a float tensor.
    assert float_ops(read_graph(int8_model)) == []
    # The runtime's classifier accepts it and its input really is pixel - 128.
    clf = Classifier(int8_model)
    assert (clf.input.dtype, clf.input.scale, clf.input.zero_point) == (np.int8, 1.0, -128)
    # Nothing but the model and its metadata is left in the output folder.
    assert sorted(p.name for p in int8_model.parent.iterdir()) == ["fer_tiny_int8.json", "fer_tiny_int8.tflite"]


def test_uint8_io_has_zero_point_zero(tiny_model, calibration_dir, tmp_path, cli):
    out = tmp_path / "fer_tiny_uint8.tflite"
    code, _, err = cli(["convert", "--model", str(tiny_model), "--int8", "--io", "uint8",
                        "--calibration", str(calibration_dir), "--out", str(out)])
    assert code == 0, err
    clf = Classifier(out)
    assert (clf.input.dtype, clf.input.scale, clf.input.zero_point) == (np.uint8, 1.0, 0)
    assert read_metadata(out)["quantization"]["input"] == {"dtype": "uint8", "scale": 1.0, "zero_point": 0}


@pytest.mark.parametrize("flag, atol", [("--float16", 2e-3), ("--dynamic", 5e-2)])
def test_float16_and_dynamic_range(tiny_model, repo_calibration, cli, flag, atol):
    code, out, err = cli(["convert", "--model", str(tiny_model), flag])
    assert code == 0, err
    path = tiny_model.with_name(f"fer_tiny_{flag[2:]}.tflite")
    assert str(path) in out
    faces = _sample_faces(repo_calibration, 8)
    np.testing.assert_allclose(Classifier(path, batch_size=8).predict(faces), _keras_probs(tiny_model, faces),
                               atol=atol)
    assert read_metadata(path)["precision"] == flag[2:]


def _assert_refused(cli, argv, out_dir, *needles):
    before = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    code, out, err = cli(argv)
    assert code == 2, (out, err)
    for needle in needles:
        assert needle in err, err
    after = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert after == before, "a failed conversion left files behind"
    return err


def test_missing_and_corrupt_models(tmp_path, cli, calibration_dir):
    missing = tmp_path / "nope.keras"
    _assert_refused(cli, ["convert", "--model", str(missing)], tmp_path, str(missing), "not found")
    corrupt = tmp_path / "broken.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    corrupt.with_suffix(".json").write_text(json.dumps({"labels": ["a", "b"]}))
    _assert_refused(cli, ["convert", "--model", str(corrupt), "--int8", "--calibration", str(calibration_dir)],
                    tmp_path, str(corrupt), "cannot load Keras model")


def test_model_without_metadata_is_refused(tiny_model, tmp_path, cli):
    bare = tmp_path / "bare.keras"
    bare.write_bytes(tiny_model.read_bytes())
    _assert_refused(cli, ["convert", "--model", str(bare)], tmp_path, "bare.json", "metadata file missing")


@pytest.mark.parametrize("damage, needle", [
    ("missing", "calibration folder not found"),
    ("empty", "no face images"),
    ("unreadable", "not a decodable image"),
    ("wrong_size", "is 64x64, but the model takes 48x48"),
])
def test_bad_calibration_folders(tiny_model, tmp_path, cli, damage, needle):
    folder = tmp_path / "cal"
    if damage != "missing":
        folder.mkdir()
    if damage == "unreadable":
        (folder / "face.png").write_bytes(b"not a png")
    elif damage == "wrong_size":
        import cv2

        cv2.imwrite(str(folder / "face.png"), np.zeros((64, 64), np.uint8))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _assert_refused(cli, ["convert", "--model", str(tiny_model), "--int8", "--calibration", str(folder),
                          "--out", str(out_dir / "m.tflite")], out_dir, str(folder), needle)


@pytest.mark.parametrize("dim", ["constant", "dimmed"])
def test_calibration_that_misses_the_pixel_range_is_refused(tiny_model, tmp_path, cli, coded, face_folders, dim):
    """Faces that never reach 255 would give an inexact input scale; the runtime relies on 1.0/-128."""
    images, labels = coded(7)
    images = np.full_like(images, 128) if dim == "constant" else images // 2 + 40
    face_folders(tmp_path / "cal", images, labels)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    brightest = "128" if dim == "constant" else "167"
    _assert_refused(cli, ["convert", "--model", str(tiny_model), "--int8", "--calibration", str(tmp_path / "cal"),
                          "--out", str(out_dir / "m.tflite")], out_dir, "brightest pixel", f"is {brightest},")


def test_model_with_ops_int8_cannot_run(keras_model, tmp_path, cli, calibration_dir):
    from keras import layers

    # squareplus lowers to SQUARE and SQRT, which have no int8 kernels.
    model = keras_model(tmp_path / "sq" / "squareplus.keras", extra=layers.Activation("squareplus"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _assert_refused(cli, ["convert", "--model", str(model), "--int8", "--calibration", str(calibration_dir),
                          "--out", str(out_dir / "m.tflite")], out_dir, str(model), "no int8 kernel", "SQUARE")


def test_wrong_model_input_size(keras_model, tmp_path, cli):
    import keras

    path = keras_model(tmp_path / "m.keras")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["preprocessing"]["size"] = 64
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert keras.saving.load_model(path)  # the model itself is fine; its metadata promises another size
    _assert_refused(cli, ["convert", "--model", str(path)], tmp_path, "is not one 64x64x1 grayscale face")


def test_flags_that_do_not_go_together(tiny_model, cli):
    for argv, needle in ((["--float16", "--io", "uint8"], "--io applies to --int8"),
                         (["--edgetpu"], "--edgetpu needs --int8"),
                         (["--out", "model.bin"], "must name a .tflite")):
        code, _, err = cli(["convert", "--model", str(tiny_model), *argv])
        assert code == 2 and needle in err, err


def test_the_converters_own_chatter_goes_to_the_debug_log(tiny_model, calibration_dir, tmp_path, cli, capfd, caplog):
    """`fully_quantize: 0, inference_type: 6, ...` comes from C++ on fd 2: not printed, logged for -v."""
    caplog.set_level(logging.DEBUG, logger="fer_edge")
    code, _, err = cli(["convert", "--model", str(tiny_model), "--int8", "--calibration", str(calibration_dir),
                        "--out", str(tmp_path / "fer_tiny_int8.tflite")])
    assert code == 0, err
    printed = err + capfd.readouterr().err
    assert "fully_quantize" not in printed and "XNNPACK" not in printed
    logged = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("fully_quantize: 0" in r.getMessage() for r in logged)


def test_importing_tensorflow_for_a_command_prints_nothing():
    """absl's and oneDNN's import-time lines (the oneDNN one twice) are logged, not printed."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    script = ("import logging, sys\nlogging.basicConfig(level=logging.DEBUG, stream=sys.stdout)\n"
              "from train.env import tensorflow_env\ntensorflow_env()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "oneDNN custom operations are on" in proc.stdout
