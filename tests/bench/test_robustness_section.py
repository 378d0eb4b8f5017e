"""bench/robustness.py's section: the table, the verdict at the edge of the target, and a full
`python -m bench` run keeping it (and the dynamic-scene section) in RESULTS.md."""

from __future__ import annotations

import pytest

from bench import dynamic, report, robustness
from bench.sections import write_section


def result(clean: float, mean: float) -> dict:
    conditions = {"blur": mean - 0.01, "jpeg": mean + 0.01}
    return {"clean": clean, "conditions": conditions, "mean": mean, "retention": mean / clean}


def results(default_share: float, accurate_share: float = 0.925) -> dict:
    return {"data": "val", "split": "val", "faces": 3589,
            "models": {"fer_cnn_int8.tflite": result(0.66, 0.66 * accurate_share),
                       "fer_mobile_int8.tflite": result(0.62, 0.62 * default_share)}}


def test_the_table_has_every_model_and_condition():
    text = robustness.markdown(results(0.986))
    assert text.startswith(robustness.BEGIN) and text.rstrip().endswith(robustness.END)
    assert "| model | clean | blur | jpeg | mean | share |" in text
    assert "| `fer_mobile_int8.tflite` | 62.00 | 60.1 | 62.1 | 61.13 | 0.986 |" in text


@pytest.mark.parametrize(("share", "accurate", "verdict"), [
    (0.921, 0.925, "met"), (0.919, 0.925, "NOT met"),     # the 92 % floor
    (0.951, 0.97, "met"), (0.949, 0.97, "NOT met"),       # the accurate model's share minus 2 pp
])
def test_the_verdict_at_the_edges_of_the_target(share, accurate, verdict):
    assert robustness.markdown(results(share, accurate)).rstrip().splitlines()[-2].endswith(f": {verdict}")


def test_the_verdict_judges_the_model_the_runtime_uses_by_default():
    r = results(0.90)  # fer_mobile under the floor ...
    r["models"]["fer_cnn_int8.tflite"] = result(0.66, 0.66 * 0.93)
    assert robustness.markdown(r).rstrip().splitlines()[-2].endswith(": NOT met")
    r["default"] = "fer_cnn_int8.tflite"  # ... but the default is fer_cnn, which holds it
    line = robustness.markdown(r).rstrip().splitlines()[-2]
    assert "(`fer_cnn_int8.tflite`) share 0.930" in line and line.endswith(": met")


def test_the_daemon_crop_table_gives_both_accuracies_and_their_difference():
    r = results(0.95)
    r["pipeline_faces"] = 2451
    r["models"]["fer_cnn_int8.tflite"].update(pipeline=0.6712, pipeline_fer_crop=0.6769)
    r["models"]["fer_mobile_int8.tflite"].update(pipeline=0.6377, pipeline_fer_crop=0.6385)
    text = robustness.markdown(r)
    assert "As the daemon crops them: 2,451 of the faces" in text
    assert "| `fer_cnn_int8.tflite` | 67.12 | 67.69 | -0.57 |" in text
    assert "| `fer_mobile_int8.tflite` | 63.77 | 63.85 | -0.08 |" in text


def test_a_missing_data_folder_is_one_sentence_not_a_traceback(tmp_path, capsys):
    assert robustness.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"python -m bench.robustness: {tmp_path / 'nope'}: no such file or folder\n"
    assert not (tmp_path / "RESULTS.md").exists()


def test_a_full_bench_run_keeps_both_owned_sections(tmp_path, monkeypatch):
    out = tmp_path / "RESULTS.md"
    out.write_text("# old\n")
    write_section(f"{dynamic.BEGIN}\nDYNAMIC\n{dynamic.END}\n", out, dynamic.BEGIN, dynamic.END)
    write_section(robustness.markdown(results(0.986)), out, robustness.BEGIN, robustness.END)
    # Writing a section again replaces it instead of adding a second one.
    write_section(robustness.markdown(results(0.95)), out, robustness.BEGIN, robustness.END)
    assert out.read_text().count(robustness.BEGIN) == 1 and "0.950 |" in out.read_text()
    monkeypatch.setattr(report, "markdown", lambda results: "# new\n")
    report.write({}, tmp_path)
    text = out.read_text()
    assert text.startswith("# new\n") and "# old" not in text
    assert "DYNAMIC" in text and "| `fer_mobile_int8.tflite` | 62.00 |" in text
