#!/usr/bin/env python3
"""Compare two `fer-edge detect --json` outputs: a reference (x86-64) and a candidate (arm64).

    python3 tests/device/compare_detections.py host.jsonl arm64.jsonl --prob-tol 0.02

Faces are matched by (frame, track id); a face without a track id (a still image) is matched by
its position within the frame. The outputs agree when they have the same frames and faces, every
matched face has the same box (within --box-tol pixels per coordinate, 0 by default), the same
label and the same set of class names, and every probability and the score differ by at most
--prob-tol (absolute). The figures (counts, the largest and mean probability difference, how many
values differ at all) are printed either way, and written as JSON with --summary. With --labels-only
the boxes and probabilities are measured and printed but not judged: for inputs that are not the
same pixels on both machines (a lossy video decoded by two different builds of FFmpeg).

Exit status: 0 the outputs agree; 1 they differ beyond the tolerances, or the reference has no
faces at all (nothing was compared); 2 a file is missing or holds a line that isn't a face record.

Standard library only, so it runs anywhere Python 3.9+ does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

REQUIRED = ("frame", "box", "label", "probabilities")


class BadInput(ValueError):
    """A file that is not `fer-edge detect --json` output."""


def load(path: str) -> dict[tuple, dict]:
    """The face records in a JSON-lines file, keyed by (frame, track) or (frame, "#position")."""
    faces: dict[tuple, dict] = {}
    position: dict[int, int] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{n}: not JSON ({e.msg}): {line.strip()[:80]}") from e
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED):
            raise BadInput(f"{path}:{n}: not a face record (needs {', '.join(REQUIRED)}): {line.strip()[:80]}")
        frame = rec["frame"]
        track = rec.get("track")
        if track is None:
            track = f"#{position.get(frame, 0)}"
        position[frame] = position.get(frame, 0) + 1
        key = (frame, track)
        if key in faces:
            raise BadInput(f"{path}:{n}: a second face with track {track} in frame {frame}")
        faces[key] = rec
    return faces


@dataclass
class Comparison:
    prob_tol: float
    box_tol: int
    reference_faces: int = 0
    candidate_faces: int = 0
    frames: int = 0
    tracks: int = 0
    matched: int = 0
    labels_equal: int = 0
    boxes_equal: int = 0
    values_compared: int = 0
    values_differing: int = 0
    max_prob_diff: float = 0.0
    sum_prob_diff: float = 0.0
    max_box_diff: int = 0
    labels_only: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def mean_prob_diff(self) -> float:
        return self.sum_prob_diff / self.values_compared if self.values_compared else 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.reference_faces > 0

    def summary(self) -> dict:
        return {
            "ok": self.ok, "prob_tol": None if self.labels_only else self.prob_tol,
            "box_tol": None if self.labels_only else self.box_tol,
            "reference_faces": self.reference_faces, "candidate_faces": self.candidate_faces,
            "frames": self.frames, "tracks": self.tracks, "matched_faces": self.matched,
            "labels_equal": self.labels_equal, "boxes_equal": self.boxes_equal,
            "max_box_diff_px": self.max_box_diff,
            "probability_values": self.values_compared, "probability_values_differing": self.values_differing,
            "max_prob_diff": round(self.max_prob_diff, 6), "mean_prob_diff": round(self.mean_prob_diff, 8),
            "problems": len(self.problems),
        }


def compare(reference: dict[tuple, dict], candidate: dict[tuple, dict], prob_tol: float = 0.02,
            box_tol: int = 0, labels_only: bool = False) -> Comparison:
    c = Comparison(prob_tol=prob_tol, box_tol=box_tol, reference_faces=len(reference),
                   candidate_faces=len(candidate), labels_only=labels_only)
    c.frames = len({k[0] for k in reference})
    c.tracks = len({k[1] for k in reference if not str(k[1]).startswith("#")})
    if not reference:
        c.problems.append("the reference has no faces: nothing to compare")
    for key in sorted(reference.keys() - candidate.keys(), key=str):
        c.problems.append(f"frame {key[0]} track {key[1]}: in the reference only")
    for key in sorted(candidate.keys() - reference.keys(), key=str):
        c.problems.append(f"frame {key[0]} track {key[1]}: in the candidate only")
    for key in sorted(reference.keys() & candidate.keys(), key=str):
        r, a = reference[key], candidate[key]
        where = f"frame {key[0]} track {key[1]}"
        c.matched += 1
        rbox, abox = list(r["box"]), list(a["box"])
        if len(rbox) != len(abox):
            c.problems.append(f"{where}: box {rbox} vs {abox}")
        else:
            diff = max((abs(x - y) for x, y in zip(rbox, abox)), default=0)
            c.max_box_diff = max(c.max_box_diff, diff)
            if diff == 0:
                c.boxes_equal += 1
            if diff > box_tol and not labels_only:
                c.problems.append(f"{where}: box {rbox} vs {abox}")
        if r["label"] == a["label"]:
            c.labels_equal += 1
        else:
            c.problems.append(f"{where}: label {r['label']} vs {a['label']}")
        rp, ap = r["probabilities"], a["probabilities"]
        if set(rp) != set(ap):
            c.problems.append(f"{where}: classes {sorted(rp)} vs {sorted(ap)}")
            continue
        pairs = [(name, rp[name], ap[name]) for name in rp]
        if "score" in r and "score" in a:
            pairs.append(("score", r["score"], a["score"]))
        for name, x, y in pairs:
            d = abs(float(x) - float(y))
            c.values_compared += 1
            c.sum_prob_diff += d
            c.values_differing += d > 0
            c.max_prob_diff = max(c.max_prob_diff, d)
            if d > prob_tol and not labels_only:
                c.problems.append(f"{where}: {name} {x} vs {y} (|diff| {d:.6f} > {prob_tol})")
    return c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="JSON lines from the reference machine (x86-64)")
    p.add_argument("candidate", help="JSON lines from the machine under test (arm64)")
    p.add_argument("--prob-tol", type=float, default=0.02, help="largest absolute probability difference (0.02)")
    p.add_argument("--box-tol", type=int, default=0, help="largest box coordinate difference in pixels (0)")
    p.add_argument("--labels-only", action="store_true",
                   help="judge frames, faces and labels; measure boxes and probabilities without judging them")
    p.add_argument("--summary", help="also write the figures here as JSON")
    p.add_argument("--show", type=int, default=20, help="print at most this many differences (20)")
    args = p.parse_args(argv)
    try:
        c = compare(load(args.reference), load(args.candidate), args.prob_tol, args.box_tol, args.labels_only)
    except BadInput as e:
        print(f"compare_detections: {e}", file=sys.stderr)
        return 2
    s = c.summary()
    print(f"faces: reference {c.reference_faces}, candidate {c.candidate_faces}, matched {c.matched} "
          f"({c.frames} frames, {c.tracks} tracks)")
    box_allowed = "not judged" if c.labels_only else f"allowed {c.box_tol}"
    prob_allowed = "not judged" if c.labels_only else f"allowed {c.prob_tol}"
    print(f"labels equal: {c.labels_equal}/{c.matched}; boxes equal: {c.boxes_equal}/{c.matched} "
          f"(largest coordinate difference {c.max_box_diff} px, {box_allowed})")
    print(f"probabilities: {c.values_differing} of {c.values_compared} values differ; largest |diff| "
          f"{c.max_prob_diff:.6f}, mean {c.mean_prob_diff:.6f} ({prob_allowed})")
    for line in c.problems[: args.show]:
        print(f"  DIFF {line}")
    if len(c.problems) > args.show:
        print(f"  ... and {len(c.problems) - args.show} more")
    print("compare: " + ("SAME within the tolerances" if c.ok else f"DIFFERENT ({len(c.problems)} problems)"))
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(s, f, indent=1)
            f.write("\n")
    return 0 if c.ok else 1


if __name__ == "__main__":
    sys.exit(main())
