"""The arm64 device check's comparison of `fer-edge detect --json` outputs, on generated JSON lines.

The check itself (tests/device/arm64_check.sh) is slow and needs root; this only tests the rules
it judges by: what passes, what fails, and the exit status.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("compare_detections", HERE / "compare_detections.py")
cd = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("compare_detections", cd)  # dataclasses look their module up there
_spec.loader.exec_module(cd)

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def record(frame, track, box, label="happy", top=0.8125):
    rest = (1.0 - top) / (len(LABELS) - 1)
    probs = {name: (top if name == label else round(rest, 6)) for name in LABELS}
    return {"frame": frame, "time": round(frame / 30, 4), "box": box, "label": label, "score": top,
            "probabilities": probs, "track": track}


def video(frames=5):
    """Two tracked faces per frame, moving a little."""
    return [r for f in range(1, frames + 1)
            for r in (record(f, 1, [250 - f, 54, 143, 143], "surprise", 0.90625),
                      record(f, 2, [55, 150 + f, 123, 123], "happy", 0.8125))]


def write(path: Path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def run(tmp_path, reference, candidate, *args):
    return cd.main([write(tmp_path / "ref.jsonl", reference), write(tmp_path / "cand.jsonl", candidate), *args])


def test_identical_outputs_agree(tmp_path, capsys):
    assert run(tmp_path, video(), video()) == 0
    out = capsys.readouterr().out
    assert "matched 10 (5 frames, 2 tracks)" in out
    assert "SAME within the tolerances" in out


def test_probabilities_within_tolerance_agree_and_are_counted(tmp_path, capsys):
    cand = video()
    cand[3]["probabilities"]["neutral"] += 0.0117  # three int8 output steps (1/256 each)
    cand[4]["score"] -= 0.0039
    summary = tmp_path / "summary.json"
    assert run(tmp_path, video(), cand, "--prob-tol", "0.02", "--summary", str(summary)) == 0
    s = json.loads(summary.read_text())
    assert s["ok"] is True
    assert s["probability_values_differing"] == 2
    assert s["max_prob_diff"] == pytest.approx(0.0117, abs=1e-6)
    assert s["probability_values"] == 10 * (len(LABELS) + 1)


def test_probability_beyond_tolerance_fails(tmp_path, capsys):
    cand = video()
    cand[0]["probabilities"]["fear"] += 0.021
    assert run(tmp_path, video(), cand, "--prob-tol", "0.02") == 1
    out = capsys.readouterr().out
    assert "frame 1 track 1: fear" in out
    assert "DIFFERENT (1 problems)" in out


def test_a_moved_box_fails_unless_within_box_tolerance(tmp_path, capsys):
    cand = video()
    cand[2]["box"][0] += 1
    assert run(tmp_path, video(), cand) == 1
    assert "frame 2 track 1: box" in capsys.readouterr().out
    assert run(tmp_path, video(), cand, "--box-tol", "1") == 0


def test_labels_only_measures_boxes_and_probabilities_without_judging_them(tmp_path, capsys):
    cand = video()
    cand[0]["box"][0] += 20
    cand[1]["probabilities"]["happy"] -= 0.13
    assert run(tmp_path, video(), cand, "--labels-only") == 0
    out = capsys.readouterr().out
    assert "largest coordinate difference 20 px, not judged" in out
    assert "largest |diff| 0.130000" in out
    cand[2]["label"] = "fear"
    assert run(tmp_path, video(), cand, "--labels-only") == 1
    del cand[3]
    assert "in the reference only" in (run(tmp_path, video(), cand, "--labels-only"), capsys.readouterr().out)[1]


def test_a_different_label_fails(tmp_path, capsys):
    cand = video()
    cand[5]["label"] = "neutral"
    assert run(tmp_path, video(), cand) == 1
    assert "frame 3 track 2: label happy vs neutral" in capsys.readouterr().out


@pytest.mark.parametrize("side", ["candidate", "reference"])
def test_a_missing_face_fails(tmp_path, capsys, side):
    short = video()
    del short[7]  # frame 4, track 2
    ref, cand = (video(), short) if side == "candidate" else (short, video())
    assert run(tmp_path, ref, cand) == 1
    only = "reference" if side == "candidate" else "candidate"
    assert f"frame 4 track 2: in the {only} only" in capsys.readouterr().out


def test_a_face_under_another_track_id_fails(tmp_path, capsys):
    cand = video()
    cand[1]["track"] = 3
    assert run(tmp_path, video(), cand) == 1
    out = capsys.readouterr().out
    assert "frame 1 track 2: in the reference only" in out
    assert "frame 1 track 3: in the candidate only" in out


def test_an_empty_reference_is_not_a_pass(tmp_path, capsys):
    assert run(tmp_path, [], []) == 1
    assert "nothing to compare" in capsys.readouterr().out


def test_faces_without_track_ids_match_by_position(tmp_path):
    stills = [record(0, None, [10, 10, 50, 50]), record(0, None, [100, 10, 50, 50], "sad")]
    assert run(tmp_path, stills, stills) == 0
    assert run(tmp_path, stills, stills[::-1]) == 1


def test_bad_input_is_exit_status_2(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"frame": 1}\n')
    good = write(tmp_path / "good.jsonl", video())
    assert cd.main([good, str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:1: not a face record" in capsys.readouterr().err
    (tmp_path / "junk.jsonl").write_text("INFO: Created TensorFlow Lite XNNPACK delegate\n")
    assert cd.main([good, str(tmp_path / "junk.jsonl")]) == 2
    assert cd.main([good, str(tmp_path / "absent.jsonl")]) == 2
    dup = video()
    dup.append(dict(dup[0]))
    assert cd.main([good, write(tmp_path / "dup.jsonl", dup)]) == 2
    assert "a second face with track 1 in frame 1" in capsys.readouterr().err
