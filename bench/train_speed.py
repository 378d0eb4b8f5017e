"""Training throughput: the real trainer (`train.trainer.train`, augmentation and Keras fit included)
against a bare `train_on_batch` loop on the same network, in float32 and mixed bfloat16.

    python -m bench.train_speed [--arch fer_vgg] [--steps 30] [--batch-size 64]

The trainer's figure is the difference between a 3-epoch and a 1-epoch run divided by the faces of
the two extra epochs, so start-up, graph tracing and the final save cancel out. Faces are random
uint8 images (speed does not depend on what they show). Run it on a quiet machine: another process
on the same cores changes every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np


def bare_loop(arch: str, precision: str, steps: int, batch: int) -> float:
    import keras

    from train.architectures import build_model

    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_model(arch)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch, 48, 48, 1)).astype(np.float32)
        y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, batch)]
        model.train_on_batch(x, y)  # trace
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return steps * batch / (time.perf_counter() - started)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def trainer(arch: str, precision: str, steps: int, batch: int) -> float:
    from train.data import Split
    from train.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    n = steps * batch
    faces = Split(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n))
    val = Split(faces.images[:batch], faces.labels[:batch])
    seconds = {}
    for epochs in (1, 3):
        cfg = TrainConfig(arch=arch, epochs=epochs, batch_size=batch, patience=0, precision=precision)
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            train(faces, val, cfg, out, verbose=0)
            seconds[epochs] = time.perf_counter() - started
    return 2 * n / (seconds[3] - seconds[1])


def main(argv: list[str] | None = None) -> int:
    from train.env import tensorflow_env

    p = argparse.ArgumentParser(prog="python -m bench.train_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="fer_vgg")
    p.add_argument("--steps", type=int, default=30, help="training steps per timed epoch (default 30)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", nargs="+", default=["float32", "mixed_bfloat16"])
    args = p.parse_args(argv)
    tensorflow_env()
    rows = []
    for precision in args.precision:
        row = {"arch": args.arch, "precision": precision, "batch": args.batch_size,
               "bare_faces_per_s": bare_loop(args.arch, precision, args.steps, args.batch_size),
               "trainer_faces_per_s": trainer(args.arch, precision, args.steps, args.batch_size)}
        row["trainer_share"] = row["trainer_faces_per_s"] / row["bare_faces_per_s"]
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
