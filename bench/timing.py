"""Clocks and the spread of repeated runs."""

from __future__ import annotations

import os
import time

import numpy as np


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def spread(values) -> dict:
    """Median of repeated runs and how far they strayed (min, max, relative range)."""
    v = np.asarray(values, dtype=float)
    median = float(np.median(v))
    return {"median": median, "min": float(v.min()), "max": float(v.max()), "runs": len(v),
            "range_pct": float((v.max() - v.min()) / median * 100) if median else 0.0}


def pin_to_one_cpu(cpu: int) -> None:
    """This process (a benchmark worker) runs on `cpu` alone, with OpenCV single-threaded."""
    import cv2

    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)


def default_cpu() -> int:
    """The last CPU this process may use: the one a 2-core machine's other work is least likely to pick first."""
    return max(os.sched_getaffinity(0))


def interleaved(worker, systems, runs: int, *args) -> dict[str, list]:
    """`worker(system, *args)` for each system, `runs` times, each call in a fresh spawned process (no warm caches,
    no state shared between systems), the order reversed every other run so drift in the machine's speed
    falls on every system alike; {system: [its results in run order]}."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    results: dict[str, list] = {s: [] for s in systems}
    ctx = get_context("spawn")
    for r in range(runs):
        for system in systems if r % 2 == 0 else systems[::-1]:
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                results[system].append(pool.submit(worker, system, *args).result())
    return results
