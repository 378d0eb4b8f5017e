"""Pipeline FPS on one CPU: fer-edge's detect pipeline vs the peer's `FER(mtcnn=False).detect_emotions`
on every frame of the same 640x480 videos (1, 2 and 3 FER faces moving on known paths), with
detection recall and false detections per frame scored against the known boxes.

Each run is a fresh worker process pinned to one CPU; runs alternate fer-edge, peer, fer-edge, peer.
Both decode the video with OpenCV inside the timed loop.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from bench.scenes import SceneFace, SceneOptions, write_video
from bench.timing import Clock, interleaved, pin_to_one_cpu, spread
from edge_runtime.boxes import Box

MATCH_IOU = 0.4
# "fer-edge confirm=1" shows a face from its first detection, as the peer does: the like-for-like recall.
FIRST_DETECTION = "fer-edge confirm=1"
SYSTEMS = ("fer-edge", FIRST_DETECTION, "peer")


def make_videos(faces: list[SceneFace], frames: int, workdir: Path) -> list[tuple[Path, list[list[Box]]]]:
    """Three clips of frames // 3 frames, with 1, 2 and 3 faces; each with its boxes per frame."""
    clips = []
    for count in (1, 2, 3):
        path = workdir / f"scene_{count}_faces.mp4"
        truth = write_video(path, faces[:count], SceneOptions(frames=max(1, frames // 3), seed=10 + count))
        clips.append((path, [[p.box for p in placements] for placements in truth]))
    return clips


def match(found: list[Box], truth: list[Box], iou: float = MATCH_IOU) -> list[int | None]:
    """For each true box, the index of the found box that overlaps it most, if by at least `iou`."""
    out = []
    for t in truth:
        best = max(range(len(found)), key=lambda i: t.iou(found[i]), default=None)
        out.append(best if best is not None and t.iou(found[best]) >= iou else None)
    return out


def score(found: list[list[Box]], truth: list[list[Box]]) -> dict:
    """Detection recall over all true faces, found boxes that match no true face per frame, and the first
    frames with a missed face (a face shown only once confirmed is missed in the frames before)."""
    hits = total = false = 0
    missed = []
    for index, (boxes, true_boxes) in enumerate(zip(found, truth)):
        matched = {i for i in match(boxes, true_boxes) if i is not None}
        hits += len(matched)
        total += len(true_boxes)
        false += len(boxes) - len(matched)
        if len(matched) < len(true_boxes):
            missed.append(index)
    return {"recall": hits / total if total else 0.0, "false_per_frame": false / max(1, len(found)),
            "missed_frames": missed[:10]}


def _fer_edge_frames(video: Path, model: str, confirm: int):
    from edge_runtime.face_path import DetectionSettings, build_pipeline
    from edge_runtime.sources import VideoSource

    pipeline = build_pipeline(DetectionSettings(model=model, threads=1), confirm=confirm)

    def run():
        with VideoSource(video) as source:
            return [[f.box for f in pipeline.process(frame).faces] for frame in source]

    return run


def peer_frames(video: Path):
    """The peer on every frame of `video`: a function that runs it and returns, per frame, (box, top label) per face."""
    from bench.peer import detector

    fer = detector()

    def run():
        capture = cv2.VideoCapture(str(video))
        faces = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces.append([(Box(*(int(v) for v in f["box"])), max(f["emotions"], key=f["emotions"].get))
                          for f in fer.detect_emotions(frame)])
        capture.release()
        return faces

    return run


def worker(system: str, videos: list[str], model: str, cpu: int) -> dict:
    """In a fresh process pinned to `cpu`: every clip once; seconds (wall, CPU) and the boxes of each frame."""
    pin_to_one_cpu(cpu)
    out = {"frames": 0, "wall_s": 0.0, "cpu_s": 0.0, "boxes": []}
    for video in videos:
        if system == "peer":
            run = peer_frames(Path(video))
        else:
            run = _fer_edge_frames(Path(video), model, confirm=1 if system == FIRST_DETECTION else 2)
        with Clock() as t:
            boxes = run()
        if system == "peer":
            boxes = [[box for box, _ in frame] for frame in boxes]
        out["frames"] += len(boxes)
        out["wall_s"] += t.wall
        out["cpu_s"] += t.cpu
        out["boxes"].append([[b.as_list() for b in frame] for frame in boxes])
    return out


def measure(clips, model: Path, runs: int, cpu: int, systems=SYSTEMS) -> dict:
    """Per system: FPS (wall and CPU) over runs, with spread; recall and false detections of the first run,
    per clip and overall (the pipelines are deterministic, so every run finds the same boxes)."""
    videos = [str(path) for path, _ in clips]
    results = interleaved(worker, systems, runs, videos, str(model), cpu)
    summary = {}
    for system, rows in results.items():
        if not rows:
            continue
        found = [[[Box(*b) for b in frame] for frame in clip] for clip in rows[0]["boxes"]]
        per_clip = [{"faces": i + 1, "frames": len(f), **score(f, truth)}
                    for i, (f, (_, truth)) in enumerate(zip(found, clips))]
        overall = score([fr for clip in found for fr in clip], [fr for _, truth in clips for fr in truth])
        del overall["missed_frames"]  # frame numbers are per clip
        summary[system] = {
            "frames": rows[0]["frames"],
            "fps_wall": spread([r["frames"] / r["wall_s"] for r in rows]),
            "fps_cpu": spread([r["frames"] / r["cpu_s"] for r in rows]),
            **overall,
            "clips": per_clip,
        }
    return summary
