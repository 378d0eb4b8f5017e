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


def test_a_photos_answer_is_the_largest_face_detect_reports_and_none_without_one(tmp_path, capsys):
    """fer_edge_answers on real photos: the box and label `fer-edge detect --json` gives the photo's largest face,
    with the setting's model; a picture of a wall is a miss."""
    import json

    import cv2
    import numpy as np

    from bench.wild import fer_edge_answers
    from edge_runtime.cli import main as fer_edge
    from edge_runtime.labels import label_index
    from train.wild_data import Photo

    repo = Path(__file__).resolve().parents[2]
    wall = tmp_path / "Wall_0001.jpg"
    cv2.imwrite(str(wall), np.full((300, 300, 3), 200, np.uint8))
    photos = [Photo(repo / "tests" / "data" / "wild" / "Jennifer_Capriati_0030.jpg", 0, "Jennifer_Capriati"),
              Photo(wall, 3, "Wall")]
    model = repo / "models" / "fer_mobile_int8.tflite"
    answers = fer_edge_answers(photos, repo / "models" / "fer_blend_int8.tflite", settings(f"model={model}"))
    assert answers[1] is None
    assert fer_edge(["detect", str(photos[0].path), "--json", "--model", str(model)]) == 0
    reported = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    best = max(reported, key=lambda a: a["box"][2] * a["box"][3])
    assert answers[0] == {"box": best["box"], "label": label_index(best["label"])}
