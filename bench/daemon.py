"""The camera daemon, `fer-edge run --source VIDEO --loop --http 127.0.0.1:PORT`, measured by the daemon's
own soak benchmark (bench/daemon_bench.py): time until /healthz answers 200, resident memory after a
warm-up and its growth over a longer run. The peer has no daemon to compare with.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.timing import spread

SAMPLE_EVERY = 5.0


def available() -> str | None:
    """None when `fer-edge run` and its soak benchmark work here, else why not."""
    probe = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--help"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or "--loop" not in probe.stdout or "--http" not in probe.stdout:
        return "`fer-edge run --source VIDEO --loop --http HOST:PORT` is not available in this checkout"
    try:
        import bench.daemon_bench  # noqa: F401
    except ImportError as exc:
        return f"the daemon's soak benchmark bench/daemon_bench.py cannot run here ({exc})"
    return None


def measure(video: Path, runs: int, warmup: float, hold: float) -> dict:
    """`runs` starts; the first runs `hold` seconds after warm-up for the growth figure, the others only
    long enough for two memory readings after warm-up."""
    why = available()
    if why:
        return {"available": False, "note": why}
    from bench.daemon_bench import run

    every = max(0.5, min(SAMPLE_EVERY, hold / 4))
    starts = []
    for i in range(runs):
        seconds = warmup + (hold if i == 0 else 2 * every) + every
        starts.append(run(video, seconds / 60.0, warmup, every, []))
    return {"available": True, "runs": starts, "warmup_s": warmup, "held_s": hold,
            "time_to_healthy_s": spread([s["time_to_healthy_s"] for s in starts]),
            "rss_after_warmup_mb": spread([s["rss_after_warmup_mb"] for s in starts]),
            "rss_growth_mb": starts[0]["rss_growth_after_warmup_mb"],
            "processed_fps": starts[0]["processed_fps"], "cpu_ms_per_frame": starts[0]["cpu_ms_per_frame"]}
