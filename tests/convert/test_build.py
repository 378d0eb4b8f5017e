"""convert/build.py: the one way to build a model file, which `fer-edge convert` goes through (issue 22, item 3)."""

from __future__ import annotations

import pytest

from convert import calibration
from convert.build import Parity, build_model_file
from convert.tflite import ConversionError
from edge_runtime.metadata import read_metadata
from train.data import load_dataset


def _without_date(card: dict) -> dict:
    return {k: v for k, v in card.items() if k != "date"}  # a build either side of midnight is the same build


def test_the_cli_writes_the_files_and_card_the_library_writes(int8_model, tiny_model, calibration_dir, parity_data,
                                                               tmp_path):
    faces = load_dataset(parity_data).split("val")
    built = build_model_file(tiny_model, tmp_path / int8_model.name, "int8", io="int8",
                             calibration=calibration.load(calibration_dir, 48),
                             parity=Parity(faces.images, faces.labels, record={"data": str(parity_data),
                                                                                "split": "val"}))
    assert built.paths == [tmp_path / "fer_tiny_int8.tflite", tmp_path / "fer_tiny_int8.json"]
    assert read_metadata(built.path) == built.meta
    assert _without_date(built.meta) == _without_date(read_metadata(int8_model))
    assert built.meta["parity"]["passed"] and built.report.to_dict().items() <= built.meta["parity"].items()
    assert built.path.read_bytes() == int8_model.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer_tiny_int8.json", "fer_tiny_int8.tflite"]


def test_parity_without_a_record_is_returned_not_written(float32_model, tiny_model, parity_data, tmp_path):
    faces = load_dataset(parity_data).split("val")
    built = build_model_file(tiny_model, tmp_path / "shown.tflite", parity=Parity(faces.images, faces.labels))
    assert built.report.n == len(faces.labels) and built.report.agreement == 1.0
    assert "parity" not in built.meta and built.meta == read_metadata(built.path)
    # The same card `fer-edge convert` writes for float32, but for its name.
    assert _without_date(built.meta) == {**_without_date(read_metadata(float32_model)), "name": "shown"}


def test_a_failed_build_leaves_nothing(tiny_model, tmp_path):
    with pytest.raises(ConversionError, match="calibration"):
        build_model_file(tiny_model, tmp_path / "out" / "x_int8.tflite", "int8")
    assert list((tmp_path / "out").iterdir()) == []
