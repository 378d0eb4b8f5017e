"""`fer-edge run` as a process: SIGTERM / SIGINT end it cleanly within 2 s with `end` events for open
faces; a file source without --loop ends with status 0; sd_notify READY / WATCHDOG / STOPPING reach a
real notify socket; the unit file is printed filled in."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from edge_runtime.cli import main

from .conftest import SAMPLE, daemon_command, wait_for


def events(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_open_faces_and_exits_0_within_2_s(tmp_path, spawn, model, sig):
    jsonl = tmp_path / "events.jsonl"
    proc = spawn(["--source", str(SAMPLE), "--loop", "--model", str(model), "--jsonl", str(jsonl),
                  "--http", "off", "--camera-name", "sig"])
    wait_for(lambda: sum(e["type"] == "new" for e in events(jsonl)) >= 3, 30, "three faces")
    sent = time.monotonic()
    proc.send_signal(sig)
    status = proc.wait(5)
    took = time.monotonic() - sent
    assert status == 0, proc.stderr.read()
    assert took < 2.0, f"took {took:.2f} s to stop"
    records = events(jsonl)
    started = {e["id"] for e in records if e["type"] == "new"}
    ended = {e["id"] for e in records if e["type"] == "end"}
    assert started == ended
    assert records[-1] == {**records[-1], "type": "camera", "state": "offline", "reason": "stopped"}
    assert all(e["end_time"] >= e["start_time"] for e in records if e["type"] == "end")


def test_file_source_without_loop_ends_with_status_0(tmp_path, model):
    jsonl = tmp_path / "events.jsonl"
    proc = subprocess.run(daemon_command("--source", str(SAMPLE), "--model", str(model), "--jsonl", str(jsonl),
                                         "--http", "off"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = events(jsonl)
    kinds = [e["type"] for e in records]
    assert kinds.count("new") == 3 and kinds.count("end") == 3, kinds
    assert records[-1] == {**records[-1], "type": "camera", "state": "offline", "reason": "end of file"}
    for e in records:
        if e["type"] != "camera":
            assert {"camera", "track", "label", "score", "probabilities", "box", "start_time", "frame_time"} <= set(e)


def test_sd_notify_ready_watchdog_stopping(tmp_path, spawn, model):
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
        proc = spawn(["--source", str(SAMPLE), "--loop", "--model", str(model), "--jsonl", "off", "--http", "off"],
                     env=env)
        messages = [sock.recv(4096).decode()]
        assert messages[0].startswith("READY=1\nSTATUS=camera camera: ")
        # Pings every WATCHDOG_USEC / 2 from the processing loop.
        messages += [sock.recv(4096).decode() for _ in range(3)]
        assert messages[1:] == ["WATCHDOG=1"] * 3
        proc.send_signal(signal.SIGTERM)
        while (message := sock.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
        assert proc.wait(5) == 0


def test_print_unit(capsys):
    assert main(["service", "print-unit", "--config", "/etc/fer-edge/porch.yaml", "--user", "fer",
                 "--watchdog", "20"]) == 0
    unit = capsys.readouterr().out
    for line in ("Type=notify", "WatchdogSec=20", "Restart=on-failure", "StartLimitBurst=5", "User=fer",
                 "SupplementaryGroups=video", "StateDirectory=fer-edge"):
        assert f"\n{line}\n" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(" run --config /etc/fer-edge/porch.yaml")
    assert os.path.isabs(exec_start.removeprefix("ExecStart=").split()[0])
    assert "${" not in unit


def test_outputs_that_cannot_open_are_a_message(tmp_path, capsys, model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", "--source", str(SAMPLE), "--model", str(model), "--jsonl", "off",
                     "--http", f"127.0.0.1:{port}"]) == 1
    assert f"http: cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err
    assert main(["run", "--source", str(SAMPLE), "--model", str(model), "--http", "off",
                 "--jsonl", str(tmp_path / "no" / "such" / "events.jsonl")]) == 1
    assert "jsonl.path: cannot write" in capsys.readouterr().err


def test_sighup_stops_as_cleanly_as_sigterm_with_status_129(tmp_path, spawn, model):
    """Issue 24, N62: SIGHUP (a closed terminal, a `kill -HUP` meant as a reload) killed the daemon at once:
    tracks without `end`, no camera offline, no shutdown line. It is now SIGTERM's clean stop, with the status
    a shell reports for a hangup, so systemd's Restart=on-failure starts it again with its config read anew."""
    jsonl = tmp_path / "events.jsonl"
    proc = spawn(["--source", str(SAMPLE), "--loop", "--model", str(model), "--jsonl", str(jsonl),
                  "--http", "off", "--camera-name", "hup"])
    wait_for(lambda: sum(e["type"] == "new" for e in events(jsonl)) >= 3, 30, "three faces")
    proc.send_signal(signal.SIGHUP)
    status = proc.wait(5)
    err = proc.stderr.read()
    assert status == 128 + signal.SIGHUP, err[-3000:]
    assert "stopped after" in err and "stopped on SIGHUP: exit status 129" in err
    records = events(jsonl)
    assert {e["id"] for e in records if e["type"] == "new"} == {e["id"] for e in records if e["type"] == "end"}
    assert records[-1] == {**records[-1], "type": "camera", "state": "offline", "reason": "stopped"}


def test_watchdog_pings_keep_their_pace_at_a_slow_fps(tmp_path, spawn, model):
    """Issue 24, N37: at camera.fps 0.05 the loop slept 20 s between frames, and pinged only then: under
    WatchdogSec=30 (a ping due every 15 s) systemd killed it forever. The loop now waits between frames in
    ticks, pinging on time; a loop stuck in a frame still stops the pings (they come from the loop)."""
    config = tmp_path / "slow.yaml"
    config.write_text(f"camera:\n  source: {SAMPLE}\n  loop: true\n  fps: 0.05\nhttp: null\njsonl: null\n"
                      f"detection:\n  model: {model}\n")
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}  # a ping every 0.5 s
        proc = spawn(["--config", str(config)], env=env)
        assert sock.recv(4096).decode().startswith("READY=1")
        sock.settimeout(2.0)
        pings = []
        started = time.monotonic()
        while time.monotonic() - started < 4.0:
            try:
                message = sock.recv(4096).decode()
            except TimeoutError:
                pytest.fail(f"no watchdog ping for 2 s at fps 0.05 (pings so far: {len(pings)})")
            assert message == "WATCHDOG=1"
            pings.append(time.monotonic())
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 6 and max(gaps) < 1.0, gaps
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
