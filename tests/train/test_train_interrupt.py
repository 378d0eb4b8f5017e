"""Ctrl-C in `fer-edge train` (issue 24): one line with the exact command that continues the run, exit 130,
no traceback; and that command does continue it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from edge_runtime.labels import LABELS
from train.history import read_history

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _as_from_a_shell() -> None:
    """In the child before exec: Ctrl-C as a shell hands it to a command, default and not blocked. Ignored and
    blocked signals are inherited across exec, and this test runs inside pytest beside hundreds of others."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _signal_state(pid: int) -> str:
    """The kernel's view of a process's signals (blocked, ignored, caught: hex masks), for a run that did not stop."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"(no /proc status: {exc})"
    return " ".join(line for line in lines if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")))


def _interrupt_when(argv: list[str], ready, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `fer-edge ARGV`, send SIGINT (Ctrl-C) once ready() holds, and wait for it to end."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime.cli", *argv], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_as_from_a_shell)
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        state = _signal_state(proc.pid)
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running 120 s after Ctrl-C; {state}; stderr: {err[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _epochs(history: Path) -> list[int]:
    """The epochs the run's history.csv holds (none while Keras has not written its first row)."""
    try:
        return [int(e) for e in read_history(history).get("epoch", [])]
    except (OSError, ValueError):
        return []


def test_ctrl_c_says_how_to_resume_and_that_command_continues(tmp_path, class_coded_faces):
    data = tmp_path / "fer"
    for split, seed in (("train", 0), ("val", 1)):
        images, labels = class_coded_faces(21, seed=seed)
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            path = data / split / LABELS[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), img)
    out = tmp_path / "run"
    history = out / "history.csv"
    # No early stopping: these faces are learnt at once, and with it the run ended by itself after ~16 epochs, before
    # a Ctrl-C sent late on a loaded machine (exit 0, the report written: a race, not the behaviour under test).
    argv = ["train", "--data", str(data), "--arch", "shallow_cnn", "--epochs", "1000", "--batch-size", "7",
            "--warmup-epochs", "0", "--patience", "0", "--out", str(out)]
    first = _interrupt_when(argv, lambda: len(_epochs(history)) >= 2)
    assert first.returncode == 130, first.stderr[-3000:]
    assert "Traceback" not in first.stderr and "KeyboardInterrupt" not in first.stderr
    line = (first.stderr.rstrip("\n").splitlines() or ["(nothing said)"])[-1]
    assert line == f"fer-edge train: interrupted; continue this run with: fer-edge {' '.join(argv)} --resume", line
    done = _epochs(history)

    resumed_argv = line.split("continue this run with: fer-edge ", 1)[1].split(" ")
    second = _interrupt_when(resumed_argv, lambda: len(_epochs(history)) >= len(done) + 2)
    assert second.returncode == 130 and "Traceback" not in second.stderr, second.stderr[-3000:]
    epochs = _epochs(history)
    assert epochs[: len(done)] == done and epochs == list(range(len(epochs)))  # continued, not restarted at 0
