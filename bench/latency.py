"""Per-face classification latency, one thread on one CPU: fer-edge's Keras float, TFLite float32 and
int8 models and the peer's TFLite, interleaved run by run (A B C D, B C D A, ...).

Each face starts as the uint8 48x48 crop and ends as probabilities, all of it inside the timed call: for
fer-edge, the runtime's Classifier (quantise, invoke, dequantise); for the peer, its resize to 64x64,
[-1, 1] scaling and invoke; for the Keras model, the cast to float and predict_on_batch.
Wall and process-CPU time are both kept: CPU time is what the work costs even while other
processes compete for the core (process time, not thread time: TensorFlow runs ops on its own threads).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.timing import pin_to_one_cpu, spread

WARMUP = 20


def time_faces(predict_one, inputs) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per call, wall and process-CPU, after a warm-up on the first faces."""
    for x in inputs[:WARMUP]:
        predict_one(x)
    wall, cpu = np.empty(len(inputs)), np.empty(len(inputs))
    for i, x in enumerate(inputs):
        w, c = time.perf_counter(), time.process_time()
        predict_one(x)
        wall[i], cpu[i] = time.perf_counter() - w, time.process_time() - c
    return wall, cpu


def per_face_ms(wall: np.ndarray, cpu: np.ndarray) -> dict:
    ms = lambda v, q: float(np.percentile(v, q) * 1e3)  # noqa: E731
    return {"faces": len(wall), "wall_median_ms": ms(wall, 50), "wall_p90_ms": ms(wall, 90),
            "cpu_median_ms": ms(cpu, 50), "cpu_p90_ms": ms(cpu, 90)}


def _single_threaded_tensorflow() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _callers(jobs: list[dict], faces: np.ndarray) -> dict:
    """name -> (predict one input, the inputs) for each job, built inside the worker."""
    from edge_runtime.classifier import Classifier

    callers = {}
    for job in jobs:
        if job["kind"] == "keras":
            import keras

            # predict_on_batch: Keras's fastest one-face call (an eager model(x) costs ~50 ms of overhead).
            model = keras.saving.load_model(job["path"])
            callers[job["name"]] = (lambda f, m=model: m.predict_on_batch(f[None, :, :, None].astype(np.float32)),
                                    faces)
        elif job["kind"] == "peer":
            from bench.peer import PeerTflite, find

            # Inside the timed call like fer-edge's quantise/dequantise: the peer's resize to 64x64 and
            # [-1, 1] scaling (and putting its columns in fer-edge's label order).
            peer = PeerTflite(find(), num_threads=1)
            callers[job["name"]] = (peer.predict, faces[:, None])
        else:
            clf = Classifier(job["path"], num_threads=1)
            callers[job["name"]] = (clf.predict, faces)
    return callers


def worker(jobs: list[dict], faces: np.ndarray, runs: int, cpu: int) -> dict:
    """In a fresh process pinned to `cpu`: every job timed on every face, `runs` times, order rotated."""
    pin_to_one_cpu(cpu)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if any(j["kind"] == "keras" for j in jobs):
        _single_threaded_tensorflow()
    callers = _callers(jobs, faces)
    names = list(callers)
    per_run = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names):] + names[: r % len(names)]:
            predict_one, inputs = callers[name]
            per_run[name].append(per_face_ms(*time_faces(predict_one, inputs)))
    return per_run


def measure(jobs: list[dict], faces: np.ndarray, runs: int, cpu: int) -> list[dict]:
    """jobs: {"name", "kind" (keras, float32, int8 or peer), "path"}. One row per job: medians over runs
    of each run's per-face median and p90, with the runs' spread."""
    jobs = [{**j, "path": str(j["path"]) if j.get("path") else None} for j in jobs]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        per_run = pool.submit(worker, jobs, faces, runs, cpu).result()
    rows = []
    for job in jobs:
        runs_ = per_run[job["name"]]
        row = {"model": job["name"], "kind": job["kind"], "faces": runs_[0]["faces"], "runs": len(runs_)}
        for key in ("wall_median_ms", "wall_p90_ms", "cpu_median_ms", "cpu_p90_ms"):
            s = spread([r[key] for r in runs_])
            row[key] = s["median"]
            row[key.replace("_ms", "_range_ms")] = [s["min"], s["max"]]
        rows.append(row)
    return rows


def job(name: str, kind: str, path: Path | None = None) -> dict:
    return {"name": name, "kind": kind, "path": path}
