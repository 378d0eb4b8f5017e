"""`python -m bench.wild`: real photographs (../shared/wild_dev) through the face path `fer-edge detect FOLDER`
runs, against the peer in the same run.

Each photo goes through the Pipeline in still mode, built as edge_runtime/cli.py's cmd_detect builds it
(HaarDetector with the verifier, the device's default model, the default pipeline options); its answer is
its largest face, and a photo with no face is a miss. Reported: the share of photos with a face, the right
label over all photos and over those with a face, recall of each class (misses count as wrong) and their
mean over the 7 classes (macro recall; the classes are unbalanced). The peer (`fer`, Haar + mini-Xception,
bench/peer.py) answers the same way: its largest face.

Besides, the verifier alone: P(face) of the detector's largest box in each photo without the verifier (the
box the verifier is asked about), as the share kept at the threshold. `--person-split 1` runs only the
held-out half of the people (train/wild_data.py: what the verifier trains on is half 0).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from bench.sections import SECTIONS, publish

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = SECTIONS["wild"]


def settings(text: str) -> dict:
    """`--setting NAME:KEY=VALUE,KEY=VALUE` -> {KEY: VALUE} (detection settings, the daemon's `detection:` keys:
    model, detector, pad, pad_from, verify_model, verify_threshold, ...); numbers are parsed, '' is the empty
    string."""
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key.strip()] = value.strip().strip("'\"")
    return out


def detection_settings(model: Path, haar: dict):
    """The face path's settings for one run: the bench's model unless the run names its own (`model=...`)."""
    from edge_runtime.face_path import DetectionSettings

    return DetectionSettings(**{"model": model, "threads": 1, **haar})


def fer_edge_answers(photos, model: Path, haar: dict) -> list[dict]:
    """Each photo through the still-image Pipeline that `fer-edge detect` builds with these detection settings
    on top of the defaults: its largest face's box and label."""
    from edge_runtime.labels import label_index
    from train.wild_data import largest_faces

    return [None if face is None else {"box": face.box.as_list(), "label": label_index(face.emotion.label)}
            for face in largest_faces(photos, detection_settings(model, haar))]


def peer_answers(photos) -> list[dict]:
    """The peer's largest face in each photo (FER(mtcnn=False).detect_emotions, its default face path)."""
    import cv2

    from bench.peer import detector
    from edge_runtime.labels import label_index

    fer = detector()
    out = []
    for photo in photos:
        faces = fer.detect_emotions(cv2.imread(str(photo.path), cv2.IMREAD_COLOR))
        best = max(faces, key=lambda f: f["box"][2] * f["box"][3], default=None)
        out.append(None if best is None else {"box": [int(v) for v in best["box"]],
                                              "label": label_index(max(best["emotions"], key=best["emotions"].get))})
    return out


def score(labels: list[int], answers: list[dict | None]) -> dict:
    """Found share, right label over all photos and where found, per-class and macro recall over the 7 classes."""
    from edge_runtime.labels import LABELS

    labels = np.asarray(labels)
    found = np.array([a is not None for a in answers])
    right = np.array([a is not None and a["label"] == y for a, y in zip(answers, labels)])
    recall = {name: float(right[labels == c].mean()) if (labels == c).any() else None for c, name in enumerate(LABELS)}
    present = [v for v in recall.values() if v is not None]
    return {"photos": len(labels), "found": float(found.mean()), "right": float(right.mean()),
            "right_where_found": float(right[found].mean()) if found.any() else None,
            "macro_recall": float(np.mean(present)), "recall": recall}


def verifier_keeps(photos, verify_model: str | None, thresholds=(0.05, 0.1, 0.2, 0.3, 0.5)) -> dict:
    """P(face) the verifier gives the largest box of the default detector (verifier off) in each photo: the share
    kept at each threshold."""
    from edge_runtime.face_path import DetectionSettings, build_detector
    from edge_runtime.verifier import SHIPPED_VERIFIER, FaceVerifier
    from train.wild_data import read_gray

    detector = build_detector(DetectionSettings(verify_model=""))
    verifier = FaceVerifier(verify_model or SHIPPED_VERIFIER)
    p = []
    for photo in photos:
        gray = read_gray(photo.path)
        boxes = detector.detect(gray)
        if boxes:
            p.append(float(verifier.scores(gray, [max(boxes, key=lambda b: b.area).as_list()])[0]))
    p = np.asarray(p)
    return {"boxes": len(p), "kept": {str(t): float((p >= t).mean()) for t in thresholds}}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def markdown(results: dict) -> str:
    from edge_runtime.labels import LABELS

    lines = [BEGIN, f"## Real photographs: {results['photos']} photos of `{results['data']}`"
             + (f" (person half {results['person_split']})" if results["person_split"] is not None else ""), "",
             f"Written by `{results['command']}` on {results['date']}. Each photo through the still-image face "
             "path of `fer-edge detect FOLDER` (model `" + Path(results["model"]).name + "`); its answer is its "
             "largest face, no face is a miss. Per cent of all photos; recall of a class counts misses as wrong.",
             "", "| system | found | right label | right where found | macro recall | "
             + " | ".join(LABELS) + " |", "|---" * (5 + len(LABELS)) + "|"]
    for name, s in results["systems"].items():
        lines.append(f"| {name} | {_pct(s['found'])} | {_pct(s['right'])} | {_pct(s['right_where_found'])} | "
                     f"{_pct(s['macro_recall'])} | " + " | ".join(_pct(s["recall"][c]) for c in LABELS) + " |")
    if results.get("verifier"):
        lines += ["", "The verifier alone, on the largest box the default detector finds without it (per cent of "
                  "those boxes kept at each P(face) threshold):", ""]
        for name, v in results["verifier"].items():
            lines.append(f"- {name} ({v['boxes']} boxes): "
                         + ", ".join(f"{t}: {_pct(k)}" for t, k in v["kept"].items()))
    if results.get("peer_missing"):
        lines += ["", f"The peer did not run: {results['peer_missing']}."]
    return "\n".join(lines + [END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench import peer as peer_mod
    from edge_runtime.classifier import default_model_path
    from train.wild_data import photos as list_photos

    p = argparse.ArgumentParser(prog="python -m bench.wild", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "wild_dev",
                   help="photos in one folder per class (default ../shared/wild_dev)")
    p.add_argument("--model", type=Path, default=default_model_path(), help="int8 model (default: the device default)")
    p.add_argument("--verify-model", default=None, metavar="TFLITE",
                   help="face verifier of the default setting (default: the shipped one; '' = none)")
    p.add_argument("--pad", type=float, default=None, help="HaarOptions.pad of the default setting")
    p.add_argument("--setting", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="another fer-edge setting to measure in the same run, e.g. 'no pad:pad=0' or "
                   "\"no verifier:verify_model=''\" (HaarOptions fields)")
    p.add_argument("--person-split", type=int, choices=(0, 1), help="only this half of the people "
                   "(train/wild_data.py; 1 = held out from the verifier's training)")
    p.add_argument("--no-peer", action="store_true", help="leave the peer out")
    p.add_argument("--no-verifier-table", action="store_true", help="skip the verifier-alone figures")
    p.add_argument("--out", type=Path, default=REPO / "bench", help="folder of RESULTS.md and wild_results.json")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    photos = list_photos(args.data, args.person_split)
    labels = [ph.label for ph in photos]
    default = {k: v for k, v in (("verify_model", args.verify_model), ("pad", args.pad)) if v is not None}
    runs = {"fer-edge" + (f" ({', '.join(f'{k}={v!r}' for k, v in default.items())})" if default else ""): default}
    for text in args.setting:
        name, _, spec = text.partition(":")
        runs[f"fer-edge, {name}"] = {**default, **settings(spec)}
    systems, answers = {}, {}
    for name, haar in runs.items():
        print(f"bench.wild: {name} ...", file=sys.stderr, flush=True)
        answers[name] = fer_edge_answers(photos, args.model, haar)
        systems[name] = score(labels, answers[name])
    peer_missing = None
    if not args.no_peer:
        peer = peer_mod.find()
        if peer is None:
            peer_missing = f"`fer` is not installed ({peer_mod.INSTALL})"
        else:
            print("bench.wild: peer ...", file=sys.stderr, flush=True)
            name = f"peer fer {peer.version} (Haar, its default)"
            try:
                answers[name] = peer_answers(photos)
                systems[name] = score(labels, answers[name])
            except Exception as exc:  # noqa: BLE001 - the peer's own failure is reported, not ours
                peer_missing = f"{type(exc).__name__}: {exc}"
    verifier = {}
    if not args.no_verifier_table:
        models = {haar.get("verify_model") for haar in runs.values() if haar.get("verify_model") != ""}
        for m in sorted(models, key=str):
            verifier["shipped" if m is None else m] = verifier_keeps(photos, m)
    results = {
        "command": shlex.join(["python", "-m", "bench.wild", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": str(args.data), "model": str(args.model), "person_split": args.person_split,
        "photos": len(photos), "settings": runs, "systems": systems, "verifier": verifier,
        "peer_missing": peer_missing,
    }
    return publish(results, args.out, "wild_results.json", markdown(results), BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
