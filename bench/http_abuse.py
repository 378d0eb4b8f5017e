"""The daemon's HTTP server under abusive clients: `fer-edge run` on the looping sample video, then
N connections that send nothing, then K stream viewers that never read.

Reports the daemon's thread count and the /healthz round trip (median and worst of 5) before and
while they are open, how many of the idle connections the server has closed after `--hold`
seconds, and whether an honest stream viewer still gets frames next to the stalled ones.

    python -m bench.http_abuse                        # 300 idle, 20 stalled viewers, 15 s hold
    python -m bench.http_abuse --idle 1023 --hold 30     # past the 1024 open files systemd allows
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.daemon_bench import SAMPLE, free_port, get


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no thread count for pid {pid}")


def health_times(base: str, tries: int = 5) -> dict:
    """Round trips of GET /healthz (a failure counts as the timeout, 5 s)."""
    times, statuses, failures = [], set(), 0
    for _ in range(tries):
        started = time.monotonic()
        try:
            statuses.add(get(base + "healthz", timeout=5.0)[0])
        except OSError:
            failures += 1
        times.append(time.monotonic() - started)
    return {"median_ms": round(1000 * statistics.median(times), 1), "worst_ms": round(1000 * max(times), 1),
            "statuses": sorted(statuses), "failures": failures}


def closed_by_server(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has closed (or answered and closed: a refusal)."""
    closed = 0
    for s in sockets:
        s.setblocking(False)
        try:
            while s.recv(65536, socket.MSG_DONTWAIT):
                pass
            closed += 1  # recv returned b"": end of stream
        except BlockingIOError:
            pass  # still open
        except OSError:
            closed += 1  # reset
    return closed


def stalled_viewer(port: int) -> socket.socket:
    """A stream request from a client whose receive buffer is tiny and which never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return s


def honest_viewer_frames(port: int, seconds: float = 3.0) -> int:
    """JPEG parts an honest viewer of /stream.mjpeg receives in `seconds`."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
        s.sendall(f"GET /stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        received = bytearray()
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            for chunk in iter(lambda: s.recv(65536) if time.monotonic() < deadline else b"", b""):
                received += chunk
        return received.count(b"Content-Type: image/jpeg")


def run(idle: int, stalled: int, hold: float, nofile: int, extra: list[str]) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "edge_runtime.cli", "run", "--source", str(SAMPLE), "--loop",
           "--http", f"127.0.0.1:{port}", "--jsonl", os.devnull, *extra]
    # The open-file limit systemd gives a service (1024) by default, as on the device.
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)
    opened: list[socket.socket] = []
    try:
        end = time.monotonic() + 60
        while not _healthy(base):
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"daemon not healthy (exit status {proc.poll()})")
            time.sleep(0.05)
        out = {"command": " ".join(cmd), "nofile": nofile or None, "threads_quiet": threads(proc.pid),
               "healthz_quiet": health_times(base)}
        refused = 0
        for _ in range(idle):
            try:
                opened.append(socket.create_connection(("127.0.0.1", port), timeout=3))
            except OSError:
                refused += 1  # the listen queue is full: the server stopped accepting
                if refused >= 10:
                    break
        time.sleep(1.0)
        out |= {"idle_connections": len(opened), "connects_failed": refused, "threads_idle": threads(proc.pid),
                "healthz_idle": health_times(base)}
        time.sleep(max(0.0, hold - 1.0))
        out |= {"hold_s": hold, "idle_closed_by_server_after_hold": closed_by_server(opened)}
        for s in opened:
            s.close()
        opened = [stalled_viewer(port) for _ in range(stalled)]
        time.sleep(hold)
        out |= {"stalled_viewers": stalled, "threads_stalled": threads(proc.pid),
                "healthz_stalled": health_times(base), "stalled_closed_by_server_after_hold": closed_by_server(opened),
                "honest_viewer_frames_in_3s": honest_viewer_frames(port)}
        return out
    finally:
        for s in opened:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _healthy(base: str) -> bool:
    try:
        return get(base + "healthz", timeout=0.5)[0] == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=300, help="connections that send nothing (default 300)")
    parser.add_argument("--stalled", type=int, default=20, help="stream viewers that never read (default 20)")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds each abuse is held (default 15)")
    parser.add_argument("--nofile", type=int, default=1024, help="the daemon's open-file limit (systemd's: 1024; "
                        "0 = inherit)")
    parser.add_argument("extra", nargs="*", help="more `fer-edge run` arguments (after --)")
    args = parser.parse_args()
    print(json.dumps(run(args.idle, args.stalled, args.hold, args.nofile, args.extra), indent=2))


if __name__ == "__main__":
    main()
