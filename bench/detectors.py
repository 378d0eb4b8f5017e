"""Haar against BlazeFace (short range, full range, short range over tiles), side by side, on real photographs.

    python -m bench.detectors --data ../shared/wild_dev

(a) wild_dev photos: the share where a face is found (a system's answer is its largest face; none = a miss),
    and the fit of BlazeFace's box to Haar's (the framing FER2013 crops have) on the photos where both find the
    same face, with the emotion model's label accuracy on each detector's crops of those photos;
(b) 640x480 frames with a wild_dev portrait pasted so that its face (Haar's box on the still photo) has a given
    side, on bench/scenes.py backdrops: found rate per face size; false faces per frame on frames without a face
    (backdrops, noise textures, shelves of blocks);
(c) ms per 640x480 frame on one core, every detector timed on the same frames, interleaved.
Haar runs with its defaults and the face verifier off, so detectors are compared, not verifiers.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.scenes import background
from bench.sections import SECTIONS, publish
from edge_runtime.blazeface import BlazeFaceDetector, BlazeFaceOptions, Framing
from edge_runtime.boxes import Box
from edge_runtime.classifier import Classifier, default_model_path
from edge_runtime.detector import EitherDetector
from edge_runtime.face_path import DetectionSettings, build_detector
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import preprocess_faces

SIZES = (60, 80, 100, 130, 160, 200, 250)
BEGIN, END = SECTIONS["detectors"]
REPORT: list[str] = []  # every line printed, for the RESULTS.md section


def say(line: str) -> None:
    print(line, flush=True)
    REPORT.append(line)
BANDS = ((60, 80), (100, 130), (160, 250))
WIDTH, HEIGHT = 640, 480


def largest(boxes: list[Box]) -> Box | None:
    return max(boxes, key=lambda b: b.area, default=None)


def matches(found: Box, truth: Box) -> bool:
    """A detection is the face when its centre lies inside the face's box and its size is within 2x of it
    (detectors frame a face differently; IoU would punish framing, not misses)."""
    cx, cy = found.center
    ratio = max(found.w, found.h) / max(truth.w, truth.h)
    return truth.x <= cx <= truth.x + truth.w and truth.y <= cy <= truth.y + truth.h and 0.5 <= ratio <= 2.0


def photos(root: Path, limit: int) -> list[tuple[Path, str]]:
    files = sorted((p, p.parent.name) for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no photos under {root}/<class>/ (give --data the wild_dev folder)")
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]
    return files


def fit_framing(pairs: list[tuple[Box, Box]]) -> Framing:
    """Median ratios that turn a BlazeFace box into the Haar box of the same face."""
    sw = [h.w / b.w for b, h in pairs]
    sh = [h.h / b.h for b, h in pairs]
    dx = [(h.center[0] - b.center[0]) / b.w for b, h in pairs]
    dy = [(h.center[1] - b.center[1]) / b.h for b, h in pairs]
    return Framing(*(round(float(np.median(v)), 3) for v in (sw, sh, dx, dy)))


def framed(box: Box, framing: Framing) -> Box:
    x0, y0, x1, y1 = framing.apply(np.array([[box.x, box.y, box.x + box.w, box.y + box.h]], np.float32))[0]
    return Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def touches_edge(box: Box, width: int, height: int) -> bool:
    return box.x <= 0 or box.y <= 0 or box.x + box.w >= width or box.y + box.h >= height


def accuracy(pred: list[int], truth: list[int]) -> tuple[float, float]:
    pred_a, truth_a = np.array(pred), np.array(truth)
    recalls = [np.mean(pred_a[truth_a == c] == c) for c in np.unique(truth_a)]
    return float(np.mean(pred_a == truth_a)), float(np.mean(recalls))


def still_photos(files, systems, raw: dict[str, BlazeFaceDetector], shipped: dict[str, BlazeFaceDetector],
                 classifier: Classifier, haar_raw):
    """Part (a); returns the photos (with Haar's box) where Haar and short range agree, for part (b).
    raw: the BlazeFace models without the FER framing; shipped: the same with the framing their metadata gives."""
    found = {name: 0 for name in systems}
    pairs = {name: [] for name in raw}
    agreed = {name: [] for name in raw}
    kept = []
    for path, label in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        answers = {name: largest(run(gray, bgr)) for name, run in systems.items()}
        for name, box in answers.items():
            found[name] += box is not None
        # The framing fit: the photo padded (so no box is cut by its edge), both detectors on the same picture.
        pad = gray.shape[0] // 4
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        h = largest(haar_raw.detect(padded))
        for name, det in raw.items():
            b = largest(det.detect(padded))
            if h and b and h.iou(b) >= 0.4 and not touches_edge(b, padded.shape[1], padded.shape[0]):
                pairs[name].append((b, h))
        h = answers["haar"]
        for name, det in raw.items():
            b = largest(det.detect(gray))
            if not (h and b and h.iou(b) >= 0.3):
                continue
            if name == "short":
                kept.append((path, h))
            # The shipped setting's own box too (its score threshold may drop a face the raw run keeps).
            ship = largest(shipped[name].detect(gray))
            if ship is not None:
                agreed[name].append((gray, h, b, ship, LABELS.index(label)))
    total = len(files)
    say(f"\n(a) wild_dev photos: {total}; a face found (largest face = the answer)")
    for name, n in found.items():
        say(f"  {name:<24} {n / total:.3f}  ({n})")
    for name, p in pairs.items():
        if not p:
            continue
        fit = fit_framing(p)
        say(f"  framing fit {name}: {fit} from {len(p)} padded photos where Haar and it find the same face")
        labels, preds = [], {"haar": [], name: [], f"{name} framed, this fit": [], f"{name} framed, shipped": []}
        for gray, h, b, ship, truth in agreed[name]:
            labels.append(truth)
            for key, box in (("haar", h), (name, b), (f"{name} framed, this fit", framed(b, fit)),
                             (f"{name} framed, shipped", ship)):
                face = preprocess_faces(gray, [box.as_list()], size=classifier.preprocessing.size,
                                        margin=classifier.preprocessing.margin)
                preds[key].append(int(np.argmax(classifier.predict(face)[0])))
        say(f"  label accuracy / macro recall of {classifier.path.name} on the {len(labels)} photos where Haar "
              f"and {name} find the face:")
        for key, pred in preds.items():
            acc, macro = accuracy(pred, labels)
            say(f"    {key + ' crop':<34} {acc:.3f} / {macro:.3f}")
    return kept


def paste(photo: np.ndarray, face: Box, side: int, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """A 640x480 BGR frame with `photo` scaled so that `face` is `side` px, at a random place on a backdrop."""
    s = side / face.w
    img = cv2.resize(photo, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    fx, fy, fw = round(face.x * s), round(face.y * s), round(face.w * s)
    # Keep at most a frame's worth of the photo around the face.
    x0, y0 = max(0, min(fx - (WIDTH - fw) // 2, img.shape[1] - WIDTH)), max(0, min(fy - (HEIGHT - fw) // 2,
                                                                                  img.shape[0] - HEIGHT))
    img = img[y0 : y0 + HEIGHT, x0 : x0 + WIDTH]
    fx, fy = fx - x0, fy - y0
    frame = background(WIDTH, HEIGHT, rng)
    px = int(rng.integers(0, WIDTH - img.shape[1] + 1))
    py = int(rng.integers(0, HEIGHT - img.shape[0] + 1))
    frame[py : py + img.shape[0], px : px + img.shape[1]] = img
    return frame, Box(fx + px, fy + py, fw, fw)


def faceless(rng: np.random.Generator, kind: int) -> np.ndarray:
    """Frames without a face: a backdrop of blocks, a noise texture at a random grain, or shelves of blocks."""
    frame = background(WIDTH, HEIGHT, rng)
    if kind == 1:
        grain = int(rng.integers(2, 24))
        noise = rng.uniform(0, 255, (HEIGHT // grain + 1, WIDTH // grain + 1, 3)).astype(np.float32)
        texture = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        frame = np.clip(0.5 * frame + 0.5 * texture, 0, 255).astype(np.uint8)
    elif kind == 2:
        for y in range(20, HEIGHT - 40, int(rng.integers(60, 120))):
            cv2.rectangle(frame, (0, y), (WIDTH, y + 6), (60, 60, 60), -1)
            x = 0
            while x < WIDTH:
                w, h = int(rng.integers(10, 60)), int(rng.integers(30, 55))
                cv2.rectangle(frame, (x, y - h), (x + w, y), rng.uniform(20, 235, 3).tolist(), -1)
                x += w + int(rng.integers(0, 8))
    return frame


def frames_bench(kept, systems: dict[str, Callable], faceless_frames: int, seed: int) -> None:
    """Parts (b) and (c)."""
    rng = np.random.default_rng(seed)
    found = {name: {side: [] for side in SIZES} for name in systems}
    false = {name: 0 for name in systems}
    times = {name: [] for name in systems}
    cpu = {name: [] for name in systems}
    order = list(systems)

    def timed(gray, bgr):
        results = {}
        for name in order:  # interleaved: every detector on the same frame, in a rotating order
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = systems[name](gray, bgr)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        order.append(order.pop(0))
        return results

    for path, face in kept:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for side in SIZES:
            frame, truth = paste(photo, face, side, rng)
            for name, boxes in timed(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), frame).items():
                found[name][side].append(any(matches(b, truth) for b in boxes))
    for i in range(faceless_frames):
        frame = faceless(rng, i % 3)
        for name, boxes in timed(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), frame).items():
            false[name] += len(boxes)
    say(f"\n(b) 640x480 frames, {len(kept)} portraits x {len(SIZES)} face sizes; {faceless_frames} frames without "
          "a face. (c) ms per frame, one core: wall median (p90) / CPU median")
    head = " ".join(f"{s:>5}" for s in SIZES) + "  " + " ".join(f"{lo}-{hi:<4}" for lo, hi in BANDS)
    say(f"  {'found rate by face side':<24} {head}  false/frame  ms wall (p90) / CPU")
    for name in systems:
        rates = [np.mean(found[name][s]) for s in SIZES]
        bands = [np.mean([v for s in SIZES if lo <= s <= hi for v in found[name][s]]) for lo, hi in BANDS]
        ms, ms_cpu = np.array(times[name]) * 1000, np.array(cpu[name]) * 1000
        say(f"  {name:<24} " + " ".join(f"{r:5.2f}" for r in rates) + "  " + " ".join(f"{b:7.2f}" for b in bands)
              + f"  {false[name] / faceless_frames:9.3f}  {np.median(ms):6.1f} ({np.percentile(ms, 90):.1f}) / "
            f"{np.median(ms_cpu):.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the wild_dev folder (<class>/<photo>)")
    parser.add_argument("--limit", type=int, default=0, help="photos for (a), evenly spread (0 = all)")
    parser.add_argument("--portraits", type=int, default=150, help="photos pasted into frames for (b)")
    parser.add_argument("--faceless", type=int, default=150, help="frames without a face for (b)")
    parser.add_argument("--tile", type=float, action="append", default=None,
                        help="also short range over tiles of this fraction of the shorter side (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder of RESULTS.md and detectors_results.json (default bench/)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    REPORT.clear()
    haar, blaze, either = shipped("haar"), shipped("blazeface"), shipped("haar+blazeface")
    short = BlazeFaceDetector(BlazeFaceOptions(model="short"))
    full = BlazeFaceDetector(BlazeFaceOptions(model="full"))
    short_full = EitherDetector(short, full)
    vetting = {name: build_detector(DetectionSettings(detector=name)) for name in ("haar", "haar+blazeface")}
    systems: dict[str, Callable] = {
        "haar": lambda g, c: haar.detect(g),
        "blazeface": lambda g, c: blaze.detect(g),
        "haar+blazeface": lambda g, c: either.detect(g),
        # As the face path answers: each box vetted by the face verifier, as a new face is.
        "haar, vetted": lambda g, c: vetted(vetting["haar"], g),
        "haar+blazeface, vetted": lambda g, c: vetted(vetting["haar+blazeface"], g),
        "blazeface short": lambda g, c: short.detect(g),
        "short, colour frame": lambda g, c: short.detect_bgr(c),
        "blazeface full": lambda g, c: full.detect(g),
        "short + full": lambda g, c: short_full.detect(g),
    }
    for tile in args.tile or ():
        tiled = BlazeFaceDetector(BlazeFaceOptions(model="short", tile=tile))
        systems[f"short, tiles {tile:g}"] = lambda g, c, d=tiled: d.detect(g)
    raw = {"short": BlazeFaceDetector(BlazeFaceOptions(model="short", fer_framing=False)),
           "full": BlazeFaceDetector(BlazeFaceOptions(model="full", fer_framing=False))}
    classifier = Classifier(default_model_path())
    files = photos(args.data, args.limit)
    kept = still_photos(files, systems, raw, {"short": short, "full": full}, classifier, haar)
    portraits = [kept[i] for i in np.linspace(0, len(kept) - 1, min(args.portraits, len(kept))).astype(int)]
    if portraits or args.faceless:
        frames_bench(portraits, systems, args.faceless, args.seed)
    command = shlex.join(["python", "-m", "bench.detectors", *(sys.argv[1:] if argv is None else argv)])
    results = {"command": command, "date": started, "data": str(args.data), "report": REPORT}
    section = (f"{BEGIN}\n## Face detectors side by side: Haar and BlazeFace\n\nWritten by `{command}` on {started}. "
               "(a) wild_dev photos, the largest face each detector reports (face verifier off: detectors are "
               "compared, not verifiers; the `vetted` rows keep only the boxes the verifier passes, as the face path "
               "does), the fit of BlazeFace's box to Haar's and the emotion model's labels on "
               "each detector's crops; (b) wild_dev portraits pasted into 640x480 frames at each face side, and "
               "frames without a face; (c) time per 640x480 frame on one core, every detector on the same frames "
               "in a rotating order. `haar`, `blazeface` and `haar+blazeface` are the detectors `--detector` "
               "builds (edge_runtime/face_path.py: build_detector), the others variants measured for the choice.\n\n"
               "```\n" + "\n".join(REPORT).strip("\n") + "\n```\n" + END + "\n")
    return publish(results, args.out, "detectors_results.json", section, BEGIN, END)


def vetted(detector, gray) -> list[Box]:
    """The faces `detector` finds that its verifier keeps."""
    return [b for b in detector.detect(gray) if detector.verify(gray, b)]


def shipped(detector: str):
    """The detector `fer-edge detect --detector DETECTOR --verify-model ''` runs."""
    return build_detector(DetectionSettings(detector=detector, verify_model=""))


if __name__ == "__main__":
    sys.exit(main())
