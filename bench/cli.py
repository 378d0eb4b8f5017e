"""`python -m bench` / `fer-edge bench`: every benchmark in one run, written to RESULTS.md and results.json."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PARTS = ("accuracy", "latency", "pipeline", "daemon", "sizes")
# {prog}: `fer-edge bench` or `python -m bench`, whichever help shows it.
EXAMPLE = "nice -n 10 {prog}            # full run (~10 min on 2 cores); writes bench/RESULTS.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edge_runtime.classifier import default_model_path

    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "fer2013" / "val",
                   help="labelled FER faces: image folders, Kaggle CSV or binary records (default "
                   "../shared/fer2013/val)")
    p.add_argument("--split", help="split of --data to use (default: val, else test, else train)")
    p.add_argument("--models-dir", type=Path, default=REPO / "models", help="shipped models with their cards")
    p.add_argument("--presets-dir", type=Path, default=None,
                   help="also list the trained runs in this folder (NAME/model.keras, e.g. runs) in the accuracy "
                   "table (default: the shipped models and the peer only; runs/ is this machine's, not the release's)")
    p.add_argument("--model", type=Path, default=default_model_path(),
                   help="the int8 model of the pipeline, daemon and targets (default: the shipped default)")
    p.add_argument("--runs", type=int, default=3, help="interleaved repetitions of each timing (default 3)")
    p.add_argument("--faces", type=int, default=1000, help="faces per latency run (default 1000)")
    p.add_argument("--frames", type=int, default=300, help="frames of pipeline video, in three clips (default 300)")
    p.add_argument("--daemon-seconds", type=float, default=120.0, help="how long the daemon runs for the memory "
                   "growth figure, after warm-up (default 120)")
    p.add_argument("--warmup", type=float, default=10.0, help="daemon warm-up before the first RSS reading (s)")
    p.add_argument("--cpu", type=int, help="the CPU timed workers are pinned to (default: the last one allowed)")
    p.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    p.add_argument("--out", type=Path, default=REPO / "bench", help="folder for RESULTS.md and results.json")


def _latency_jobs(entries, peer, workdir: Path, model: Path) -> list[dict]:
    """Keras float and TFLite float32 of the family of `model`, every shipped CPU int8 model, the peer's TFLite."""
    from bench import latency
    from bench.models import float32_tflite

    target = next((e for e in entries if e.path.resolve() == model.resolve()), None)
    jobs = []
    keras_entry = next((e for e in entries if target and e.family == target.family and e.kind == "keras"), None)
    if keras_entry:
        jobs.append(latency.job(f"{keras_entry.name} (Keras float, predict_on_batch)", "keras", keras_entry.path))
        f32 = float32_tflite(keras_entry, entries, workdir)
        jobs.append(latency.job(f"{f32.name} (TFLite float32)", "float32", f32.path))
    int8 = [e.path for e in entries if e.kind == "int8" and e.path.resolve() != model.resolve()]
    jobs += [latency.job(f"{path.name} (TFLite int8)", "int8", path) for path in [model, *int8]]
    if peer:
        jobs.append(latency.job(f"fer {peer.version} {peer.tflite.name} (peer TFLite)", "peer", peer.tflite))
    return jobs


def run(args) -> dict:
    from bench import accuracy, daemon, latency, pipeline_fps, sizes
    from bench import peer as peer_mod
    from bench.models import presets, shipped
    from bench.scenes import frontal_faces
    from bench.timing import default_cpu
    from train.predict import load_split

    parts = list(args.only or PARTS)
    cpu = default_cpu() if args.cpu is None else args.cpu
    peer = peer_mod.find()
    entries = shipped(args.models_dir)
    if not args.model.exists():
        raise SystemExit(f"{args.model}: model not found (pass --model)")
    results = {"parts": parts, "cpu": cpu, "model": str(args.model), "data": str(args.data),
               "peer": {"package": peer_mod.PEER, "installed": peer.version if peer else None,
                        "install": peer_mod.INSTALL}, "seconds": {}}
    if not peer:
        print(f"peer not installed ({peer_mod.INSTALL}): fer-edge alone is measured", file=sys.stderr)
    split_name, split = load_split(args.data, args.split)
    results["split"] = {"name": split_name, "faces": len(split)}
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        workdir = Path(tmp)
        clips = None
        for part in parts:
            start = time.perf_counter()
            print(f"bench: {part} ...", file=sys.stderr, flush=True)
            if part == "accuracy":
                models = entries + presets(args.presets_dir, entries) if args.presets_dir else entries
                results["accuracy"] = accuracy.evaluate(models, peer, split.images, split.labels)
            elif part == "latency":
                pick = np.resize(np.random.default_rng(3).permutation(len(split)), args.faces)
                jobs = _latency_jobs(entries, peer, workdir, args.model)
                results["latency"] = latency.measure(jobs, split.images[pick], args.runs, cpu)
            elif part in ("pipeline", "daemon") and clips is None:
                clips = pipeline_fps.make_videos(frontal_faces(split.images, split.labels), args.frames, workdir)
            if part == "pipeline":
                systems = pipeline_fps.SYSTEMS if peer else pipeline_fps.SYSTEMS[:2]
                results["pipeline"] = pipeline_fps.measure(clips, args.model, args.runs, cpu, systems)
            elif part == "daemon":
                results["daemon"] = daemon.measure(clips[-1][0], args.runs, args.warmup, args.daemon_seconds)
            elif part == "sizes":
                files = [(e.name, e.path) for e in entries]
                if peer:
                    files += [(f"fer {peer.version} (peer) Keras", peer.keras), (f"fer {peer.version} (peer) TFLite",
                                                                             peer.tflite)]
                results["sizes"] = sizes.sizes(files)
            results["seconds"][part] = round(time.perf_counter() - start, 1)
    return results


def main_args(args, command: str) -> int:
    """Run, then write RESULTS.md and results.json; `command` is the command line they quote."""
    from bench import report

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.runs < 1 or args.faces < 1 or args.frames < 3:
        raise SystemExit("--runs and --faces must be >= 1 and --frames >= 3")
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = run(args)
    results["load_average_before"] = load_before
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["command"] = command
    results["machine"] = report.machine()
    args.out.mkdir(parents=True, exist_ok=True)
    report.write(results, args.out)
    print(f"bench: {results['total_seconds']:.0f} s; wrote {args.out / 'RESULTS.md'} and "
          f"{args.out / 'results.json'}", file=sys.stderr)
    return 0


def register(sub) -> None:
    """`fer-edge bench`, through the fer_edge.commands entry point group."""
    from edge_runtime.cli_helpers import add_command

    p = add_command(sub, "bench", help="Benchmark fer-edge against its peer (the `fer` package): accuracy, "
                    "per-face latency, pipeline FPS, daemon memory, model sizes; writes bench/RESULTS.md.",
                    example=EXAMPLE.format(prog="fer-edge bench"))
    add_arguments(p)
    p.set_defaults(func=lambda args: main_args(args, shlex.join(["fer-edge", *sys.argv[1:]])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     epilog="example:\n  " + EXAMPLE.format(prog="python -m bench"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return main_args(args, shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]))
