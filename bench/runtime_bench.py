"""Device-runtime benchmarks: per-face int8 latency, pipeline FPS, peak RSS, crop margin.

Run pinned to one core, e.g.

    taskset -c 0 python bench/runtime_bench.py --model models/fer_cnn_int8.tflite

`python -m bench` compares fer-edge with its peer; this script looks closer at the runtime alone.
Every timing is reported twice: wall clock, and CPU time of this process (what the work
costs on one core even when other processes compete for it). Full-frame Haar at 640x480
is measured in the same run as a yardstick, so figures from a busy machine can be scaled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench.latency import per_face_ms, time_faces
from bench.pipeline_fps import match
from bench.scenes import SceneOptions, is_frontal, read_faces, render, write_video
from bench.timing import Clock
from edge_runtime.classifier import Classifier, default_model_path
from edge_runtime.detector import HaarDetector, HaarOptions
from edge_runtime.labels import LABELS
from edge_runtime.pipeline import PipelineOptions
from edge_runtime.preprocess import preprocess_face
from edge_runtime.sources import VideoSource

REPO = Path(__file__).resolve().parents[1]


def fer_faces(root: Path, split: str, n: int, seed: int) -> list[Path]:
    files = sorted(root.glob(f"{split}/*/*.jpg"))
    if len(files) < n:
        sys.exit(f"need {n} FER images under {root}/{split}/<class>/, found {len(files)}")
    idx = np.random.default_rng(seed).choice(len(files), size=n, replace=False)
    return [files[i] for i in sorted(idx)]


def bench_latency(model: Path, faces: list[Path]) -> dict:
    clf = Classifier(model, num_threads=1)
    crops = np.stack([preprocess_face(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in faces])
    return per_face_ms(*time_faces(clf.predict, crops))


def haar_reference(frames: list[np.ndarray]) -> dict:
    """Full-resolution Haar on every frame: the cost the pipeline's strategy avoids."""
    detector = HaarDetector(HaarOptions(detect_width=0))
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    with Clock() as t:
        for g in grays:
            detector.detect(g)
    return {"frames": len(grays), "wall_ms": t.wall / len(grays) * 1e3, "cpu_ms": t.cpu / len(grays) * 1e3}


def run_video(model: Path, video: Path, truth, options: PipelineOptions) -> dict:
    from dataclasses import asdict

    from edge_runtime.face_path import DetectionSettings, build_pipeline

    pipeline = build_pipeline(DetectionSettings(model=model, threads=1), **asdict(options))
    hits = total = false = 0
    ids: dict[int, set[int]] = {}
    with Clock() as t, VideoSource(video) as source:
        results = [pipeline.process(frame) for frame in source]
    for result, placements in zip(results, truth):
        matched = set()
        for p, found in zip(placements, match([f.box for f in result.faces], [p.box for p in placements])):
            total += 1
            if found is not None:
                track = result.faces[found].track
                hits += 1
                matched.add(track)
                ids.setdefault(p.face, set()).add(track)
        false += sum(f.track not in matched for f in result.faces)
    n = len(results)
    return {"frames": n, "fps_wall": n / t.wall, "fps_cpu": n / t.cpu, "ms_cpu": t.cpu / n * 1e3,
            "recall": hits / total, "false_faces": false, "ids_per_face": max(len(v) for v in ids.values())}


def bench_pipeline(model: Path, faces, frames: int, workdir: Path) -> list[dict]:
    rows = []
    for count in (1, 2, 3):
        opts = SceneOptions(frames=frames, fps=30.0, seed=10 + count)
        video = workdir / f"scene_{count}.mp4"
        truth = write_video(video, faces[:count], opts)
        default = PipelineOptions()
        # The default; classifying every frame; and detecting + classifying every frame (the baseline).
        for options in (default, replace(default, classify_every=1),
                        replace(default, detect_every=1, classify_every=1)):
            row = run_video(model, video, truth, options)
            rows.append({"faces": count, "detect_every": options.detect_every,
                         "classify_every": options.classify_every, **row})
    return rows


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident memory of a command, from its VmHWM while it runs. (wait4's ru_maxrss would
    count this big benchmark process, which the child is a copy of until it execs.)"""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = Path(f"/proc/{proc.pid}/status")
    peak = 0
    while proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            peak = max(peak, int(fields["VmHWM"].split()[0]))
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.02)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return peak / 1024.0


def bench_rss(model: Path, video: Path) -> dict:
    out = {}
    for name, extra in (("json", ["--json"]), ("json+out", ["--json", "--out", str(video.with_name("ann.mp4"))])):
        out[name] = peak_rss_mb([sys.executable, "-m", "edge_runtime.cli", "detect", str(video),
                                 "--model", str(model), "--no-progress", *extra])
    return out


def bench_margin(model: Path, faces, margins: np.ndarray) -> list[dict]:
    """How well a crop of the Haar box, grown by each margin, matches the original FER face."""
    clf = Classifier(model, num_threads=1)
    detector = HaarDetector()
    originals = np.stack([f.image for f in faces])
    direct = clf.predict(originals).argmax(1)
    corr = {m: [] for m in margins}
    agree = {m: [] for m in margins}
    for start in range(0, len(faces) - 2, 3):
        trio = faces[start : start + 3]
        for frame, placements in render(trio, SceneOptions(frames=4, seed=start)):
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            found = detector.detect(gray)
            for p in placements:
                box = max(found, key=p.box.iou, default=None)
                if box is None or p.box.iou(box) < 0.4:
                    continue
                original = originals[start + p.face].astype(np.float32)
                crops = np.stack([preprocess_face(gray, box.as_list(), margin=m) for m in margins])
                labels = clf.predict(crops).argmax(1)
                for m, crop, label in zip(margins, crops, labels):
                    corr[m].append(np.corrcoef(crop.astype(np.float32).ravel(), original.ravel())[0, 1])
                    agree[m].append(label == direct[start + p.face])
    return [{"margin": round(float(m), 3), "pixel_correlation": float(np.mean(corr[m])),
             "label_agreement": float(np.mean(agree[m])), "crops": len(corr[m])} for m in margins]


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=default_model_path(), help="int8 .tflite with its .json")
    parser.add_argument("--fer", type=Path, default=REPO.parent / "shared" / "fer2013", help="FER2013 image folders")
    parser.add_argument("--faces", type=int, default=1000, help="faces for the latency run (>= 1000)")
    parser.add_argument("--frames", type=int, default=300, help="frames per pipeline video")
    parser.add_argument("--only", nargs="*", choices=("latency", "pipeline", "rss", "margin"),
                        help="run only these parts")
    parser.add_argument("--results", type=Path, help="also write the results (JSON) here")
    args = parser.parse_args(argv)
    if not args.model.exists():
        sys.exit(f"{args.model}: model not found (pass --model)")
    parts = set(args.only or ("latency", "pipeline", "rss", "margin"))
    cv2.setNumThreads(1)
    results: dict = {"model": str(args.model), "cpu_affinity": sorted(os.sched_getaffinity(0))}
    print(f"model {args.model}; cores {results['cpu_affinity']}; labels {len(LABELS)}")
    detector = HaarDetector(HaarOptions(detect_width=0))
    faces = [f for f in read_faces(fer_faces(args.fer, "val", 120, seed=7)) if is_frontal(f, detector)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "latency" in parts:
            results["latency"] = bench_latency(args.model, fer_faces(args.fer, "val", args.faces, seed=3))
            print("\n## Per-face int8 classification (num_threads=1)\n" + table([results["latency"]]))
        if "pipeline" in parts:
            frames = [f for f, _ in render(faces[:3], SceneOptions(frames=60, seed=13))]
            results["haar_full_frame_640x480"] = haar_reference(frames)
            results["pipeline"] = bench_pipeline(args.model, faces, args.frames, workdir)
            print("\n## Full-frame Haar at 640x480 (the yardstick)\n" + table([results["haar_full_frame_640x480"]]))
            print("\n## Pipeline on 640x480 mp4 (decode + detect + track + classify + smooth)\n"
                  + table(results["pipeline"]))
        if "rss" in parts:
            video = workdir / "rss.mp4"
            write_video(video, faces[:3], SceneOptions(frames=args.frames, seed=21))
            results["rss_mb"] = bench_rss(args.model, video)
            print("\n## Peak RSS of `fer-edge detect` on a 640x480 video (MB)\n" + table([results["rss_mb"]]))
        if "margin" in parts:
            results["margin"] = bench_margin(args.model, faces, np.round(np.arange(-0.1, 0.201, 0.025), 3))
            print("\n## Crop margin around Haar boxes vs the original FER face\n" + table(results["margin"]))
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
