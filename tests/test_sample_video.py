"""The README's main job: `fer-edge detect --json` on the bundled sample with the shipped int8 model."""

from __future__ import annotations

import json
import subprocess
import sys

from edge_runtime.cli import SAMPLE_VIDEO


def _iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_detect_on_the_bundled_sample_finds_and_names_the_faces():
    run = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "detect", "--json", "--no-progress"],
                         capture_output=True, text=True, timeout=120, check=True)
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    truth = json.loads(SAMPLE_VIDEO.with_suffix(".json").read_text())
    frames = truth["frames"]
    matched = {}
    for row in rows:
        boxes = frames[row["frame"]] if row["frame"] < len(frames) else []
        best = max(boxes, key=lambda p: _iou(p["box"], row["box"]))
        assert _iou(best["box"], row["box"]) > 0.5, row  # no false faces
        matched.setdefault(best["face"], []).append(row)
    assert set(matched) == {0, 1, 2}
    # Each face keeps one track id; recall over the clip (measured 243 of 270 faces) stays high.
    for rows_of_face in matched.values():
        assert len({r["track"] for r in rows_of_face}) == 1
        assert len(rows_of_face) >= 0.6 * len(frames)
    assert len(rows) >= 0.85 * sum(len(f) for f in frames)
    # The happy and surprised faces are named right on nearly every frame.
    assert [f["label"] for f in truth["faces"]] == ["happy", "surprise", "neutral"]
    for face in (0, 1):
        label = truth["faces"][face]["label"]
        hits = sum(r["label"] == label for r in matched[face])
        assert hits >= 0.9 * len(matched[face]), (label, hits)
    # The third face is neutral in FER2013; the shipped models read it between neutral and angry (about 0.3
    # each at first, then angry leads by more than the hysteresis). Its smoothed label may change once,
    # neutral to angry, and never flickers back: stated so that any other change in what the runtime says
    # about that face shows.
    third = [r["label"] for r in sorted(matched[2], key=lambda r: r["frame"])]
    assert set(third) <= {"neutral", "angry"} and third[-1] == "angry", third
    assert sum(a != b for a, b in zip(third, third[1:])) <= 1, third
