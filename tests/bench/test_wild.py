"""bench.wild's scoring: a photo's answer is its largest face, no face is a miss, recall per class counts misses."""

from pathlib import Path

import pytest

from bench.wild import detection_settings, score, settings


def test_misses_count_against_recall_and_right_label_but_not_right_where_found():
    labels = [3, 3, 6, 6]  # happy, happy, neutral, neutral
    answers = [{"label": 3}, None, {"label": 3}, {"label": 6}]
    s = score(labels, answers)
    assert s["found"] == 0.75 and s["right"] == 0.5 and s["right_where_found"] == pytest.approx(2 / 3)
    assert s["recall"]["happy"] == 0.5 and s["recall"]["neutral"] == 0.5 and s["recall"]["angry"] is None
    assert s["macro_recall"] == 0.5  # over the classes present
    assert score([0], [None])["right_where_found"] is None


def test_settings_parse_numbers_and_empty_strings():
    assert settings("pad=0.25,pad_from=0") == {"pad": 0.25, "pad_from": 0}
    assert settings("verify_model=''") == {"verify_model": ""}
    assert settings("verify_model=runs/v/f.tflite") == {"verify_model": "runs/v/f.tflite"}


def test_a_setting_may_name_its_own_model_and_keeps_the_benchs_otherwise(tmp_path):
    default, other = Path("models/fer_blend_int8.tflite"), Path("models/fer_cnn_int8.tflite")
    assert detection_settings(default, settings(f"model={other},pad=0.1")).model == other
    run = detection_settings(default, settings("pad=0.1"))
    assert run.model == default and run.pad == 0.1 and run.threads == 1
