"""Models the runtime must refuse, each with a sentence naming the file and what is wrong."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge_runtime.classifier import Classifier
from edge_runtime.interpreter import EdgeTpuError, ModelError
from edge_runtime.metadata import MetadataError, write_json_atomic


def copy_model(src, dst_dir, name: str, meta_changes: dict | None = None):
    dst = dst_dir / name
    shutil.copyfile(src, dst)
    meta = json.loads(src.with_suffix(".json").read_text())
    meta.update(meta_changes or {})
    write_json_atomic(dst.with_suffix(".json"), meta)
    return dst


def test_the_test_model_loads_and_classifies(int8_model):
    clf = Classifier(int8_model)
    probs = clf.predict(np.full((3, 48, 48), 128, np.uint8))
    # Seven int8 outputs (step 1/256), each within half a step: the sum is within 7/512 of 1. A zero point
    # off by one would move it by 7/256.
    assert probs.shape == (3, 7) and np.allclose(probs.sum(1), 1.0, rtol=0, atol=7 / 512)
    assert clf.input.dtype == np.int8 and clf.output.dtype == np.int8


def test_corrupt_model_is_refused(tmp_path, int8_model):
    path = copy_model(int8_model, tmp_path, "noise.tflite")
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match=r"noise\.tflite: not a TFLite model"):
        Classifier(path)


def test_truncated_model_is_refused(tmp_path, int8_model):
    path = copy_model(int8_model, tmp_path, "cut.tflite")
    path.write_bytes(int8_model.read_bytes()[:3000])
    with pytest.raises(ModelError, match=r"cut\.tflite: the TFLite runtime cannot load this model"):
        Classifier(path)


def test_wrong_shaped_model_is_refused(float_models):
    with pytest.raises(ModelError, match=r"rgb32_\w+\.tflite: model input shape \(1, 32, 32, 3\) does not take 48x48"):
        Classifier(float_models["rgb32"])


def test_float_model_runs_when_its_metadata_says_float(float_models):
    assert Classifier(float_models["gray48"]).predict(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)


def test_metadata_that_does_not_fit_the_model_is_refused(tmp_path, int8_model, float_models):
    meta = json.loads(int8_model.with_suffix(".json").read_text())
    wrong_scale = {"quantization": {**meta["quantization"], "input": {"scale": 0.5, "zero_point": -128}}}
    with pytest.raises(ModelError, match="input quantisation .* differs from its metadata"):
        Classifier(copy_model(int8_model, tmp_path, "scale.tflite", wrong_scale))
    with pytest.raises(ModelError, match=r"model input shape .* does not take 64x64"):
        Classifier(copy_model(int8_model, tmp_path, "size.tflite", {"preprocessing": {"size": 64}}))
    with pytest.raises(ModelError, match="has 7 outputs but its metadata names 3 labels"):
        Classifier(copy_model(int8_model, tmp_path, "labels.tflite", {"labels": ["a", "b", "c"]}))
    with pytest.raises(ModelError, match="model's input is float32, not quantised"):
        Classifier(copy_model(float_models["gray48"], tmp_path, "float.tflite", {"quantization": meta["quantization"]}))


def test_missing_metadata_is_refused(tmp_path, int8_model):
    path = tmp_path / "alone.tflite"
    shutil.copyfile(int8_model, path)
    with pytest.raises(MetadataError, match=r"alone\.json: metadata file missing"):
        Classifier(path)


# ai_edge_litert's Delegate.__del__ trips over its own half-built object when the library is missing.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_edge_tpu_model_without_the_runtime_says_how_to_install_it(tmp_path, int8_model):
    path = copy_model(int8_model, tmp_path, "fer_cnn_int8_edgetpu.tflite")
    with pytest.raises(EdgeTpuError, match=r"libedgetpu\.so\.1 is not installed.*libedgetpu1-std"):
        Classifier(path)


# One changed byte here made the shipped fer_mobile_int8.tflite abort the runtime with `double free or corruption`
# (the second-cycle fer_mobile, and the third of 2026-12-06 too: the same architecture and converter lay the file out
# alike).
CRASHING_BYTE = (304943, 127)


def test_a_changed_byte_is_refused_before_the_runtime_parses_it(tmp_path):
    """In a subprocess: were the bytes not checked, the runtime itself would abort the process."""
    from edge_runtime.cli import SAMPLE_VIDEO
    from tests.conftest import SHIPPED

    path = copy_model(SHIPPED["fer_mobile"][1], tmp_path, "flipped.tflite")
    recorded = json.loads(path.with_suffix(".json").read_text())["sha256"][:12]
    content = bytearray(path.read_bytes())
    offset, value = CRASHING_BYTE
    assert content[offset] != value
    content[offset] = value
    path.write_bytes(bytes(content))
    for command in (["detect", str(SAMPLE_VIDEO)], ["run", "--source", str(SAMPLE_VIDEO), "--http", "off"]):
        proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", *command, "--model", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "double free" not in proc.stderr
        assert re.fullmatch(rf"fer-edge {command[0]}: {re.escape(str(path))}: sha256 [0-9a-f]{{12}}\.\.\. differs "
                            rf"from the {recorded}\.\.\. that its metadata flipped\.json records: the model file is "
                            r"corrupt .*\n", proc.stderr), proc.stderr


def test_a_changed_model_reached_through_a_symlinked_folder_is_checked_against_its_bundle(tmp_path, int8_model):
    from edge_runtime.release.manifest import write_manifest

    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    model = copy_model(int8_model, bundle / "models", "fer.tflite")
    write_manifest(bundle, {"name": "fer-edge", "version": "1"})
    # Changed after the bundle was made, with metadata to match: only the manifest can tell.
    model.write_bytes(model.read_bytes() + bytes(16))
    (tmp_path / "linked").symlink_to(bundle / "models")
    for path in (model, tmp_path / "linked" / "fer.tflite"):
        with pytest.raises(ModelError, match=r"fer\.tflite: sha256 .* does not match the bundle manifest"):
            Classifier(path)


def test_a_missing_model_is_named_not_its_metadata(tmp_path, capsys):
    from edge_runtime.cli import main

    assert main(["detect", "--model", str(tmp_path / "nope.tflite")]) == 1
    err = capsys.readouterr().err
    assert err == f"fer-edge detect: --model {tmp_path / 'nope.tflite'}: no such model file\n"
