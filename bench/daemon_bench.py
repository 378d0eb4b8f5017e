"""Soak benchmark of the camera daemon: `fer-edge run` on a looping video for N minutes.

Reports the time from start to the first healthy /healthz, resident memory (VmRSS) after a
warm-up and its growth over the rest of the run, and the CPU time per processed frame (user +
system over the post-warm-up window, divided by the frames /metrics says were processed).

    nice python bench/daemon_bench.py --minutes 10            # the issue's 10-minute soak
    python bench/daemon_bench.py --minutes 1 --warmup 20      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "edge_runtime" / "samples" / "faces.mp4"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    # Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def processed_frames(base: str) -> dict[str, float]:
    _, text = get(base + "metrics")
    wanted = {"fer_edge_frames_processed", "fer_edge_frames_skipped", "fer_edge_frames_captured",
              "fer_edge_camera_reconnects"}
    return {f.name: sum(s.value for s in f.samples if s.name.endswith("_total"))
            for f in text_string_to_metric_families(text) if f.name in wanted}


def run(video: Path, minutes: float, warmup: float, interval: float, extra: list[str]) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "edge_runtime.cli", "run", "--source", str(video), "--loop",
           "--http", f"127.0.0.1:{port}", "--jsonl", os.devnull, *extra]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        healthy_after = None
        while healthy_after is None:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                if get(base + "healthz", timeout=0.5)[0] == 200:
                    healthy_after = time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.02)
        samples = []
        # The measured run starts when the daemon is healthy: on a loaded machine start-up alone can take
        # longer than a short run, which left no sample after the warm-up.
        end = started + healthy_after + minutes * 60
        while time.monotonic() < end:
            time.sleep(min(interval, max(0.0, end - time.monotonic())))
            counts = processed_frames(base)
            samples.append({"t": round(time.monotonic() - started, 2), "rss_mb": round(rss_mb(proc.pid), 2),
                            "cpu_s": cpu_seconds(proc.pid), **counts})
        stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(10)
        stopped_after = time.monotonic() - stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = [s for s in samples if s["t"] >= healthy_after + warmup]
    if len(after) < 2:
        raise RuntimeError(f"run too short for a {warmup} s warm-up: {len(samples)} samples")
    first, last = after[0], after[-1]
    frames = last["fer_edge_frames_processed"] - first["fer_edge_frames_processed"]
    return {
        "command": " ".join(cmd), "minutes": minutes, "warmup_s": warmup,
        "time_to_healthy_s": round(healthy_after, 3),
        "rss_after_warmup_mb": first["rss_mb"], "rss_end_mb": last["rss_mb"],
        "rss_max_after_warmup_mb": max(s["rss_mb"] for s in after),
        "rss_growth_after_warmup_mb": round(last["rss_mb"] - first["rss_mb"], 2),
        "frames_processed": int(last["fer_edge_frames_processed"]),
        "frames_skipped": int(last["fer_edge_frames_skipped"]),
        "reconnects": int(last["fer_edge_camera_reconnects"]),
        "processed_fps": round(frames / (last["t"] - first["t"]), 2),
        "cpu_ms_per_frame": round(1000 * (last["cpu_s"] - first["cpu_s"]) / max(1, frames), 3),
        "cpu_share_of_one_core": round((last["cpu_s"] - first["cpu_s"]) / (last["t"] - first["t"]), 3),
        "sigterm_exit_status": status, "sigterm_exit_s": round(stopped_after, 3),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="video replayed in a loop (default: the sample)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before memory growth is counted")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "daemon_bench.json")
    parser.add_argument("daemon_args", nargs="*", help="more `fer-edge run` flags, after --")
    args = parser.parse_args(argv)
    result = run(args.video, args.minutes, args.warmup, args.interval, args.daemon_args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| figure | value |\n|---|---|")
    for key, value in result.items():
        if key != "samples":
            print(f"| {key} | {value} |")
    print(f"samples: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
