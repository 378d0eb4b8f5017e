"""Scoring reported faces against the true faces of a dynamic video (bench/dynamic_scenes.py).

MOTA, IDF1, identity switches and fragmentations come from py-motmetrics. Its `distances.iou_matrix`
calls `np.asfarray`, which numpy 2 removed, so the accumulator gets our own distance matrix
(1 - IoU, no match below MATCH_IOU). Partly visible and hidden faces are "don't care": a report on one
is dropped before scoring, neither a hit nor a false face.

On top of motmetrics: how many frames after its first detectable frame (the first frame the detector,
run on every frame, finds it) a face is first reported, and how many frames a face that left the picture
(or vanished in a cut) is still reported after it went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.dynamic_scenes import TrueFace
from edge_runtime.boxes import Box

MATCH_IOU = 0.3


@dataclass(frozen=True)
class Reported:
    """One face a system reported in one frame (track: its id; None for a system without tracking)."""

    track: int | None
    box: Box
    label: str | None = None


def _iou(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    return np.array([[x.iou(y) for y in b] for x in a], dtype=np.float64).reshape(len(a), len(b))


def _cared(truth: list[TrueFace], reported: list[Reported]) -> list[Reported]:
    """The reports that are not on a don't-care face (partly visible or hidden) without being on a present one."""
    present = [t.box for t in truth if t.present]
    ignored = [t.box for t in truth if not t.present]
    if not ignored:
        return reported
    keep = []
    for r in reported:
        on_present = any(r.box.iou(b) >= MATCH_IOU for b in present)
        on_ignored = any(r.box.iou(b) >= MATCH_IOU or r.box.overlap(b) >= 0.5 for b in ignored)
        if on_present or not on_ignored:
            keep.append(r)
    return keep


def first_detectable(truth: list[list[TrueFace]], detections: list[list[Box]]) -> dict[tuple[int, int], int | None]:
    """For each appearance (true face id, first frame of a run of frames where it is present): the first frame
    of that run in which `detections` (the detector on every frame) finds it, or None if it never does."""
    out: dict[tuple[int, int], int | None] = {}
    previous: set[int] = set()
    start: dict[int, int] = {}
    for index, (faces, boxes) in enumerate(zip(truth, detections)):
        now = {t.id for t in faces if t.present}
        for t in faces:
            if not t.present:
                continue
            if t.id not in previous:
                start[t.id] = index
                out[(t.id, index)] = None
            key = (t.id, start[t.id])
            if out[key] is None and any(t.box.iou(b) >= MATCH_IOU for b in boxes):
                out[key] = index
        previous = now
    return out


def score(truth: list[list[TrueFace]], reported: list[list[Reported]], detections: list[list[Box]],
          tracking: bool = True) -> dict:
    """Recall, false faces per frame, label accuracy; with `tracking`, MOTA, IDF1, switches and fragmentations
    (motmetrics), the delay of each appearance after its first detectable frame, and how long each face that
    went (left the picture, or a cut) is still reported."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    frames_seen = []
    for faces, found in zip(truth, reported):
        present = [t for t in faces if t.present]
        found = _cared(faces, found)
        hyp_ids = [r.track if tracking and r.track is not None else -1 - i for i, r in enumerate(found)]
        iou = _iou([t.box for t in present], [r.box for r in found])
        acc.update([t.id for t in present], hyp_ids, np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan))
        frames_seen.append(({t.id: t for t in present}, dict(zip(hyp_ids, found))))
    events = acc.mot_events
    hits = labelled = correct = 0
    matched_at: dict[tuple[int, int], int] = {}  # (true id, frame) -> reported track
    for (index, _), e in events[events.Type.isin(["MATCH", "SWITCH"])].iterrows():
        by_true, by_hyp = frames_seen[index]
        t, r = by_true[e.OId], by_hyp[e.HId]
        matched_at[(t.id, index)] = e.HId
        hits += 1
        if r.label is not None:
            labelled += 1
            correct += int(r.label == t.label)
    present_total = sum(len(p) for p, _ in frames_seen)
    false = int((events.Type == "FP").sum())
    frames = max(1, len(truth))
    out = {
        "frames": len(truth),
        "present_faces": present_total,
        "recall": hits / max(1, present_total),
        "false_per_frame": false / frames,
        "label_accuracy": correct / labelled if labelled else None,
        "correct_over_all": correct / max(1, present_total),
    }
    if not tracking:
        return out
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "idf1", "num_switches", "num_fragmentations"], name="run")
    out.update(mota=float(summary["mota"].iloc[0]), idf1=float(summary["idf1"].iloc[0]),
               id_switches=int(summary["num_switches"].iloc[0]),
               fragmentations=int(summary["num_fragmentations"].iloc[0]))
    out["delays"] = delays(truth, detections, matched_at)
    out["lingering"] = lingering(truth, reported, matched_at)
    return out


def delays(truth, detections, matched_at) -> dict:
    """Frames from each appearance's first detectable frame to its first report (never: not reported at all)."""
    values, never = [], 0
    for (tid, start), detectable in first_detectable(truth, detections).items():
        if detectable is None:
            continue
        index = start
        while index < len(truth) and any(t.id == tid and t.present for t in truth[index]):
            if (tid, index) in matched_at:
                break
            index += 1
        else:
            never += 1
            continue
        values.append(max(0, index - detectable))
    return _distribution(values) | {"never": never}


def lingering(truth, reported, matched_at) -> dict:
    """For each face that went (its last frame in the picture, or the last frame of its scene): for how many
    frames after it went the track last matched to it is still reported."""
    last_seen: dict[int, int] = {}
    for index, faces in enumerate(truth):
        for t in faces:
            last_seen[t.id] = index
    values = []
    for tid, last in last_seen.items():
        tracks = [(index, h) for (t, index), h in matched_at.items() if t == tid]
        if not tracks or last + 1 >= len(truth):
            continue
        track = max(tracks)[1]
        frames = 0
        for found in reported[last + 1 :]:
            if not any(r.track == track for r in found):
                break
            frames += 1
        values.append(frames)
    return _distribution(values)


def _distribution(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    v = np.array(values)
    return {"count": len(values), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "max": int(v.max()), "histogram": dict(sorted(Counter(int(x) for x in values).items()))}
