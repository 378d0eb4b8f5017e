"""Fixtures for the daemon tests: the shipped int8 model and sample video, a scripted camera (a real
Source subclass replaying real frames, that can fail, freeze or stall), a real mosquitto broker on
loopback, and helpers that run the daemon in-process or as `fer-edge run`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from edge_runtime.classifier import default_model_path
from edge_runtime.daemon.app import Daemon
from edge_runtime.daemon.config import load_config
from edge_runtime.sources import Frame, Source, SourceError, gray_frame
from tests.support import free_port, need_tool, wait_until

SAMPLE = Path(__file__).resolve().parents[2] / "edge_runtime" / "samples" / "faces.mp4"


need_binary = need_tool  # the name this area's tests use


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    return wait_until(predicate, timeout, what, interval)


def http_get(url: str, headers: dict | None = None, timeout: float = 3.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="session")
def model() -> Path:
    path = default_model_path()
    assert path.exists(), f"the shipped model is missing: {path}"
    return path


@pytest.fixture(scope="session")
def sample_frames() -> list:
    """The sample video's frames (three FER faces moving), as BGR arrays."""
    capture = cv2.VideoCapture(str(SAMPLE))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    assert len(frames) >= 60
    return frames


class ScriptedCamera(Source):
    """A live camera replaying real frames at `fps`, then doing `then` after `frames` frames:
    "fail" (a read error), "freeze" (the same frame forever), "stall" (no frame for `stall` seconds,
    then a read error) or "play" (never stops)."""

    live = True

    def __init__(self, images: list, then: str = "play", frames: int = 0, fps: float = 30.0, stall: float = 5.0):
        self.images, self.then, self.frames, self.fps, self.stall = images, then, frames, fps, stall
        self.name = f"scripted:{then}"
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self._closed.is_set():
            if self.then != "play" and index >= self.frames:
                if self.then == "fail":
                    raise SourceError(f"{self.name}: device unplugged")
                if self.then == "stall":
                    self._closed.wait(self.stall)
                    raise SourceError(f"{self.name}: no frame")
                image = self.images[(self.frames - 1) % len(self.images)]  # "freeze": the last frame again
            else:
                image = self.images[index % len(self.images)]
            yield gray_frame(index, index / self.fps, image)
            index += 1
            time.sleep(1.0 / self.fps)

    def close(self) -> None:
        self._closed.set()


class Script:
    """A source factory for the daemon: each (re)open takes the next step; "unplugged" steps fail to open."""

    def __init__(self, images: list, steps: list[dict]):
        self.images, self.steps = images, list(steps)
        self.opened = 0

    def __call__(self) -> Source:
        step = self.steps[min(self.opened, len(self.steps) - 1)]
        self.opened += 1
        if step.get("then") == "unplugged":
            raise SourceError("scripted: no such camera")
        return ScriptedCamera(self.images, **step)


class RunningDaemon:
    """A Daemon running its loop in a thread; `stop()` asks it to stop and waits."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.status = self.daemon.run()

    @property
    def url(self) -> str:
        return self.daemon.http.url

    def stop(self, timeout: float = 5.0) -> int:
        self.daemon.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "daemon did not stop"
        return self.status


@pytest.fixture
def start_daemon(model):
    """start_daemon(config dict, source_factory=None) -> RunningDaemon; stopped at teardown."""
    running = []

    def start(config: dict, source_factory=None) -> RunningDaemon:
        config = {"detection": {"model": str(model)}, **config}
        daemon = Daemon(load_config(None, config), source_factory=source_factory)
        running.append(RunningDaemon(daemon))
        return running[-1]

    yield start
    for r in running:
        if r.thread.is_alive():
            r.stop()


def daemon_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_runtime.cli", "run", *args]


@pytest.fixture
def spawn():
    """spawn(args, **popen) -> Popen of `fer-edge run ARGS`; killed at teardown if still running."""
    procs = []

    def start(args: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.PIPE)
        procs.append(subprocess.Popen(daemon_command(*args), text=True, **kwargs))
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


class Mosquitto:
    """A real mosquitto broker on a loopback port of its own (not the system service)."""

    def __init__(self, binary: str, folder: Path):
        self.binary, self.port = binary, free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                assert self.proc.poll() is None, f"mosquitto exited with {self.proc.returncode}"
                return False

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


@pytest.fixture
def mosquitto():
    binary = need_binary("mosquitto")
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(binary, Path(folder))
        broker.start()
        yield broker
        broker.stop()


class Subscriber:
    """A paho client recording every message under the given topic filters: (topic, payload, retained)."""

    def __init__(self, port: int, *topics: str):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert subscribed.wait(5), f"no SUBACK from the broker on port {port}"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
