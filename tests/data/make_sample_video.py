"""Regenerates edge_runtime/samples/faces.mp4, the bundled sample `fer-edge detect` runs on by default.

Three frontal FER2013 PublicTest faces from convert/val_sample (happy, surprise, neutral),
upscaled and feathered into a 640x480 scene, moving; faces.json beside it holds the true boxes.
Run from the repository root: python tests/data/make_sample_video.py
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.scenes import SceneOptions, is_frontal, read_faces, write_video
from edge_runtime.detector import HaarDetector

SAMPLE = Path("convert/val_sample")
OUT = Path("edge_runtime/samples/faces.mp4")
OPTIONS = SceneOptions(frames=90, sizes=(110, 150), seed=3)


def main() -> None:
    detector = HaarDetector()
    faces = []
    for label in ("happy", "surprise", "neutral"):
        for candidate in read_faces(sorted((SAMPLE / label).glob("*.jpg"))):
            if is_frontal(candidate, detector):
                faces.append(candidate)
                break
    truth = write_video(OUT, faces, OPTIONS)
    OUT.with_suffix(".json").write_text(json.dumps({
        "faces": [{"label": f.label, "source": Path(f.path).name} for f in faces],
        "fps": OPTIONS.fps,
        "frames": [[{"face": p.face, "box": [p.box.x, p.box.y, p.box.w, p.box.h]} for p in frame] for frame in truth],
    }) + "\n")


if __name__ == "__main__":
    main()
