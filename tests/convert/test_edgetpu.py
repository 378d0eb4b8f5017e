"""Edge TPU: the static op check and `convert --edgetpu` with and without the compiler."""

from __future__ import annotations

import json

from convert.edgetpu import EdgeTpuReport, Op, check
from edge_runtime.metadata import read_metadata, sha256_file


def test_partition_drags_every_later_op_to_the_cpu():
    report = EdgeTpuReport("m.tflite", True, True, [Op(0, "CONV_2D"), Op(1, "EXP", "not supported by the Edge TPU"),
                                                    Op(2, "FULLY_CONNECTED"), Op(3, "SOFTMAX")])
    assert [(op.name, op.reason) for op in report.cpu_ops] == [
        ("EXP", "not supported by the Edge TPU"),
        ("FULLY_CONNECTED", "after the first unsupported op (EXP)"),
        ("SOFTMAX", "after the first unsupported op (EXP)"),
    ]
    assert not report.compatible


def test_float_model_is_not_int8(float32_model, cli):
    code, out, _ = cli(["edgetpu", "check", str(float32_model), "--json"])
    assert code == 1
    report = json.loads(out)
    assert report["fully_int8"] is False and report["compatible"] is False
    assert any("is float32" in p for p in report["problems"])
    # The very first op computes in float, so nothing would run on the Edge TPU.
    assert report["cpu_ops"][0]["index"] == 0 and "computes in float32" in report["cpu_ops"][0]["reason"]
    assert len(report["cpu_ops"]) == len(report["ops"])


def test_dynamic_batch_int8_model_names_the_unsupported_shape_op(int8_model, cli):
    """Flatten with a dynamic batch becomes SHAPE/STRIDED_SLICE/PACK; SHAPE is not on Coral's list."""
    report = check(int8_model)
    assert report.fully_int8 and not report.static_shapes and not report.compatible
    shape_op = next(op for op in report.cpu_ops if op.name == "SHAPE")
    assert "not supported by the Edge TPU" in shape_op.reason
    code, out, _ = cli(["edgetpu", "check", str(int8_model)])
    assert code == 1 and "SHAPE: not supported by the Edge TPU" in out


def test_check_refuses_a_file_that_is_not_tflite(tmp_path, cli):
    bogus = tmp_path / "m.tflite"
    bogus.write_bytes(b"definitely not a flatbuffer")
    code, _, err = cli(["edgetpu", "check", str(bogus)])
    assert code == 2 and "not a TFLite model" in err and str(bogus) in err


def test_edgetpu_without_compiler_says_how_to_install(tiny_model, calibration_dir, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    out_dir = tmp_path / "out"
    code, _, err = cli(["convert", "--model", str(tiny_model), "--int8", "--edgetpu", "--calibration",
                        str(calibration_dir), "--out", str(out_dir / "m_int8.tflite")])
    assert code == 2
    assert "edgetpu_compiler is not on PATH" in err and "apt-get install edgetpu-compiler" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_edgetpu_build_with_compiler_on_path(tiny_model, calibration_dir, tmp_path, cli, fake_compiler):
    args_file = fake_compiler()
    out = tmp_path / "out" / "fer_tiny_int8.tflite"
    code, stdout, err = cli(["convert", "--model", str(tiny_model), "--int8", "--edgetpu", "--calibration",
                             str(calibration_dir), "--out", str(out)])
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "fer_tiny_int8.json", "fer_tiny_int8.tflite", "fer_tiny_int8_edgetpu.json", "fer_tiny_int8_edgetpu.tflite"]
    args = args_file.read_text().splitlines()
    assert args[:3] == ["--out_dir", args[1], "--show_operations"] and args[-1].endswith("fer_tiny_int8.tflite")
    compiled = out.with_name("fer_tiny_int8_edgetpu.tflite")
    meta = read_metadata(compiled)
    assert meta["sha256"] == sha256_file(compiled) and meta["input"]["batch"] == 1
    # What the compiler was given: batch fixed to 1, so every op can map to the Edge TPU.
    assert meta["edgetpu"]["check"]["compatible"] is True and meta["edgetpu"]["check"]["cpu_ops"] == []
    assert meta["edgetpu"]["compiler"].startswith("Edge TPU Compiler version")
    # The stand-in copies its input, so the compiled file is the static build the metadata names.
    assert meta["edgetpu"]["compiler_input_sha256"] == meta["sha256"]
    assert meta["sha256"] != read_metadata(out)["sha256"]  # a separate batch-1 build, not the dynamic model
    assert meta["quantization"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}
    assert str(compiled) in stdout


def test_compiler_failure_leaves_nothing(tiny_model, calibration_dir, tmp_path, cli, fake_compiler):
    fake_compiler(exit_code=1)
    out_dir = tmp_path / "out"
    code, _, err = cli(["convert", "--model", str(tiny_model), "--int8", "--edgetpu", "--calibration",
                        str(calibration_dir), "--out", str(out_dir / "m_int8.tflite")])
    assert code == 2 and "Internal compiler error" in err
    assert list(out_dir.iterdir()) == []


def test_the_shipped_cpu_build_says_what_a_coral_user_does(cli):
    """The README's `fer-edge edgetpu check models/fer_cnn_int8.tflite` exits 1: the message says why and what
    to do, with the command that builds the Coral twin from the model's own float source."""
    from tests.conftest import MODELS

    model = MODELS / "fer_cnn_int8.tflite"
    code, out, _ = cli(["edgetpu", "check", str(model)])
    assert code == 1
    assert out.splitlines()[-1] == (
        "What to do: this is the CPU build (any number of faces per call), which a Pi runs as it is; for a Coral, "
        f"build its static batch-1 twin with `fer-edge convert --model {MODELS / 'fer_cnn.keras'} --int8 --edgetpu` "
        "(needs edgetpu_compiler) and bundle fer_cnn_int8_edgetpu.tflite with `fer-edge bundle --edgetpu-model`.")
    code, out, _ = cli(["edgetpu", "check", str(model), "--json"])
    assert json.loads(out)["advice"].startswith("What to do: this is the CPU build")


def test_a_partial_mapping_is_explained():
    from convert.edgetpu import advice

    report = EdgeTpuReport("m.tflite", True, True, [Op(0, "CONV_2D"), Op(1, "EXP", "not supported by the Edge TPU"),
                                                    Op(2, "SOFTMAX")])
    assert advice(report).startswith("What to do: ops from 1 (EXP) on run on the CPU, the ones before on the Edge "
                                     "TPU; accept the partial mapping")
    assert advice(EdgeTpuReport("m.tflite", True, True, [Op(0, "CONV_2D")])) == ""
