"""`fer-edge detect`: JSON lines, annotated output, images and folders, and its error messages."""

import io
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

import edge_runtime.classifier
from bench.scenes import SceneOptions, render
from edge_runtime.boxes import Box
from edge_runtime.cli import main
from edge_runtime.labels import LABELS
from edge_runtime.progress import Progress

KEYS = {"source", "frame", "time", "box", "label", "score", "probabilities", "track"}


@pytest.fixture(scope="module")
def stills(tmp_path_factory, frontal_faces):
    """A folder of two photos with two faces each; (folder, known boxes per photo)."""
    folder = tmp_path_factory.mktemp("photos")
    truth = []
    for i in range(2):
        frame, placements = next(render(frontal_faces[2 * i : 2 * i + 2], SceneOptions(frames=1, seed=30 + i)))
        cv2.imwrite(str(folder / f"photo_{i}.png"), frame)
        truth.append([p.box for p in placements])
    return folder, truth


def test_json_lines_on_a_video_are_the_only_output(scene_video, model):
    path, faces, truth = scene_video
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "detect", str(path), "--model", str(model),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert records and all(set(r) == KEYS and r["source"] == str(path) for r in records)
    assert len(records) >= 0.95 * len(truth) * len(faces)
    for r in records:
        assert isinstance(r["frame"], int) and isinstance(r["track"], int) and isinstance(r["time"], float)
        assert len(r["box"]) == 4 and all(isinstance(v, int) for v in r["box"])
        assert list(r["probabilities"]) == list(LABELS) and r["label"] in LABELS
        # Seven int8 outputs, each within half a step (1/512) of the truth; a zero point off by one is 7/256.
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=7 / 512)
        assert r["score"] == r["probabilities"][r["label"]]
    per_frame = {}
    for r in records:
        per_frame.setdefault(r["frame"], []).append(r["track"])
    assert max(len(v) for v in per_frame.values()) == len(faces)
    assert all(len(set(v)) == len(v) for v in per_frame.values())
    assert "frames" in proc.stderr


def test_annotated_video_has_every_frame_and_the_boxes(scene_video, model, tmp_path, capsys):
    path, _, truth = scene_video
    out = tmp_path / "annotated.avi"
    assert main(["detect", str(path), "--model", str(model), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("track ") == 3 and "mostly" in printed
    annotated, original = cv2.VideoCapture(str(out)), cv2.VideoCapture(str(path))
    frames = 0
    while True:
        ok, drawn = annotated.read()
        if not ok:
            break
        _, plain = original.read()
        # A box outline was drawn near the left edge of every known face (from frame 1: a new face
        # is shown once a second detection confirms it): one column of the band around that edge
        # differs from the input along the face's height far more than the untouched part of the band
        # (its lower quartile: MJPG's few grey levels; other columns may hold a label or bar). How much
        # depends on the label's colour against the background (a grey "neutral" box on a light wall:
        # ~27; most: > 40), so the bar is a floor plus a contrast, not one colour's figure.
        for p in truth[frames] if frames else ():
            b = p.box
            band = np.s_[b.y + b.h // 4 : b.y + 3 * b.h // 4, max(0, b.x - 12) : b.x + 12]
            columns = np.abs(drawn[band].astype(int) - plain[band]).mean(axis=(0, 2))
            assert columns.max() > max(15.0, 4 * np.percentile(columns, 25)), columns.round(1)
        frames += 1
    assert frames == len(truth)


def test_image_folder_json_and_annotated_folder(stills, model, tmp_path, capsys):
    folder, truth = stills
    out = tmp_path / "drawn"
    assert main(["detect", str(folder), "--model", str(model), "--json", "--out", str(out)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(p.name for p in out.iterdir()) == ["photo_0.png", "photo_1.png"]
    for index, boxes in enumerate(truth):
        found = [r for r in records if r["frame"] == index]
        assert len(found) == 2 and all(r["time"] == 0.0 for r in found)
        for box in boxes:
            assert max(box.iou(Box(*r["box"])) for r in found) >= 0.5


def test_single_image_prints_a_line_per_face(stills, model, tmp_path, capsys):
    folder, _ = stills
    out = tmp_path / "one.jpg"
    assert main(["detect", str(folder / "photo_0.png"), "--model", str(model), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{folder / 'photo_0.png'}: ") for line in lines)
    assert cv2.imread(str(out)).shape == (480, 640, 3)


def test_missing_shipped_model_is_a_clear_error(stills, tmp_path, monkeypatch, capsys):
    folder, _ = stills
    monkeypatch.setattr(edge_runtime.classifier, "default_model_path", lambda: tmp_path / "fer_cnn_int8.tflite")
    assert main(["detect", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "no model given, and no shipped model" in err and "pass --model PATH" in err


@pytest.mark.parametrize("name, content, message", [
    ("broken.jpg", b"\xff\xd8\xff not a jpeg", r"broken\.jpg: cannot read image"),
    ("noise.mp4", bytes(range(256)) * 200, r"noise\.mp4: cannot open video"),
])
def test_unreadable_input_is_a_clear_error(model, tmp_path, capsys, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    assert main(["detect", str(bad), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fer-edge detect: ")
    assert re.search(message, err), err


def test_out_must_fit_the_input(scene_video, model, tmp_path, capsys):
    path, _, _ = scene_video
    assert main(["detect", str(path), "--model", str(model), "--out", str(tmp_path / "x.png")]) == 1
    assert "input is a video, so --out must be a video file" in capsys.readouterr().err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["detect", "--help"])
    assert exc.value.code == 0
    assert "example:\n  fer-edge detect" in capsys.readouterr().out


def test_progress_line():
    stream = io.StringIO()
    progress = Progress(3, stream=stream, enabled=True, interval=0.0)
    for _ in range(3):
        progress.update()
    progress.close()
    assert "\rframe 1/3 (33%)" in stream.getvalue() and stream.getvalue().endswith("fps\n")
    quiet = io.StringIO()
    Progress(3, stream=quiet).update()
    assert quiet.getvalue() == ""


def test_the_runtimes_own_chatter_shows_only_with_verbose(stills, model):
    """LiteRT's `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` comes from C++ on fd 2."""
    folder, _ = stills
    args = ["detect", str(folder / "photo_0.png"), "--model", str(model), "--no-progress"]
    quiet, verbose = (subprocess.run([sys.executable, "-m", "edge_runtime.cli", *flags, *args], capture_output=True,
                                     text=True, timeout=60) for flags in ([], ["-v"]))
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert "XNNPACK" not in quiet.stderr and quiet.stderr.startswith("fer-edge detect: ")
    assert "DEBUG fer_edge.interpreter: INFO: Created TensorFlow Lite XNNPACK delegate" in verbose.stderr


def test_detection_schedule_options_are_in_help_with_their_defaults(capsys):
    from edge_runtime.pipeline import PipelineOptions

    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = PipelineOptions()
    for flag, value in (("--cut-below", defaults.cut_below), ("--motion", defaults.motion),
                        ("--follow-score", defaults.follow_score), ("--confirm-score", defaults.confirm_score)):
        assert re.search(rf"{flag} \w+ .*?\(default {value}\)", text), flag


@pytest.mark.parametrize("flag, value", [("--cut-below", "1.5"), ("--motion", "-1"), ("--follow-score", "1"),
                                         ("--confirm-score", "-2"), ("--threads", "0"), ("--smoothing", "-1"),
                                         ("--blazeface-tile", "0.05"), ("--detector", "dnn")])
def test_detection_schedule_options_out_of_bounds_are_refused(flag, value, model, capsys):
    assert main(["detect", "--model", str(model), flag, value, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    # The option as the user gave it, not the setting's internal name.
    assert err.startswith(f"fer-edge detect: {flag} {value}: ") and len(err.splitlines()) == 1, err
    assert "-" not in flag[2:] or flag[2:].replace("-", "_") not in err, err


def test_a_folder_with_a_bad_image_and_a_faceless_one_is_read_to_the_end(stills, model, tmp_path, capsys):
    """The bad image is skipped and named (exit 1 says one was), the faceless one listed, every line named."""
    folder, truth = stills
    photos = tmp_path / "photos"
    shutil.copytree(folder, photos)
    (photos / "photo_0b.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    cv2.imwrite(str(photos / "wall.png"), np.full((120, 160, 3), 90, np.uint8))
    assert main(["detect", str(photos), "--model", str(model), "--json", "--no-progress"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert sorted({r["source"] for r in records}) == [str(photos / "photo_0.png"), str(photos / "photo_1.png")]
    assert len(records) == sum(len(boxes) for boxes in truth)
    assert captured.err.splitlines() == [
        f"fer-edge detect: skipped {photos / 'photo_0b.jpg'}: cannot read image (not an image OpenCV can decode, "
        "or corrupt)",
        "fer-edge detect: no face found in 1 image:",
        f"  {photos / 'wall.png'}",
        "fer-edge detect: 3 images, 4 faces",
    ]


def test_detect_runs_with_no_stderr_at_all(stills, model):
    """Started with fd 2 closed (`2>&-`), catching the runtime's chatter must not be what fails."""
    folder, _ = stills
    image = folder / "photo_0.png"
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "detect", str(image), "--model", str(model),
                           "--no-progress"], stdout=subprocess.PIPE, text=True, timeout=60,
                          preexec_fn=lambda: os.close(2))
    assert proc.returncode == 0
    assert proc.stdout.count(f"{image}: ") == 2


def test_a_reader_that_goes_away_stops_detect_quietly():
    """`fer-edge detect --json | head -2`: two lines, then silence (status 141 as Unix tools), not an error."""
    import subprocess
    import sys

    proc = subprocess.run(f"{sys.executable} -m edge_runtime.cli detect --json --no-progress | head -2",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert len(proc.stdout.splitlines()) == 2
    assert "Broken pipe" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_an_empty_default_is_shown_as_such_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default '')" in text and "(default )" not in text
