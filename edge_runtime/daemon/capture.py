"""Capture in its own thread: frames go into a one-slot queue where the newest frame wins.

The processing loop never waits on the camera and the camera never waits on processing:
a frame not taken before the next one arrives is replaced, and counted as skipped. The
watchdog's verdicts (read error, frozen picture, no frame) close the source and reopen it
with backoff; the daemon itself never ends because the camera went away. The backoff starts
again from its shortest wait only after the camera has been healthy for a while: a camera
that fails after every few frames waits longer and longer instead of flapping. An image that
cannot be decoded is skipped and counted, not a camera fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_runtime.daemon.config import CameraConfig
from edge_runtime.daemon.watchdog import Backoff, CameraWatchdog
from edge_runtime.sources import Frame, Source, SourceError

log = logging.getLogger("fer_edge.capture")


class FrozenError(RuntimeError):
    """The camera delivers the same picture over and over."""


@dataclass(frozen=True)
class Captured:
    """A frame, restamped on the daemon's clock, and the stream it belongs to: the stream number
    grows on every reopen and every replay of a file, so frames of two streams are never tracked
    as one scene."""

    frame: Frame
    stream: int


class Capture:
    def __init__(self, open_source: Callable[[], Source], camera: CameraConfig, clock=time.monotonic):
        self.open_source = open_source
        self.camera = camera
        self.clock = clock
        self.watchdog = CameraWatchdog(camera.watchdog.no_frame_seconds, camera.watchdog.frozen_seconds)
        self.backoff = Backoff(camera.watchdog.backoff_min, camera.watchdog.backoff_max)
        self.started = clock()
        self.captured = self.skipped = self.reconnects = 0
        self.unreadable = 0  # images skipped because they could not be decoded
        self.online = False
        self.finished = False
        self.reason = "starting"
        # Every online/offline transition, in order, for the processing loop to publish: (online, reason,
        # reconnects, frames captured before it), so the loop can put each in its place among the frames.
        self.changes: deque[tuple[bool, str, int, int]] = deque(maxlen=100)
        self._slot: Captured | None = None
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._stream = 0
        # A hung read cannot be interrupted safely (OpenCV captures are not thread-safe), so a stalled
        # capture thread is abandoned: it closes its own source if its read ever returns.
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []  # the current one and any abandoned ones still alive

    def start(self) -> None:
        self._spawn()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, waiting up to `timeout` seconds for the capture thread to end. A decode in progress
        is waited for: a process that exits while OpenCV decodes in another thread aborts (SIGABRT,
        "terminate called without an active exception"); headers are checked first, so no decode is long."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("camera %s: the capture thread did not end within %g s (a read that hangs)",
                            self.camera.name, timeout)

    @property
    def stopped(self) -> bool:
        """No capture thread of this Capture is still running (a hung read's included)."""
        return not any(t.is_alive() for t in self._threads)

    def get(self, timeout: float) -> Captured | None:
        """The newest frame not yet taken, waiting up to `timeout` seconds; None if none came."""
        with self._ready:
            self._ready.wait_for(lambda: self._slot is not None or self.finished or self._stop.is_set(), timeout)
            item, self._slot = self._slot, None
            self._ready.notify_all()  # a file read without realtime waits for the slot to be free
            return item

    def poll(self) -> None:
        """Called by the processing loop between frames: abandon a capture that stopped delivering."""
        if self.online and self.watchdog.stalled(self.clock()):
            self._offline(f"no frame for {self.camera.watchdog.no_frame_seconds:g} s", self._generation)
            self._generation += 1
            self._spawn()

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, args=(self._generation,), name="capture", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [self._thread]
        self._thread.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _run(self, generation: int) -> None:
        first = generation == 0
        while self._current(generation):
            if not first:
                delay = self.backoff.next()
                log.info("reopening %s in %.1f s", self.camera.source, delay)
                if self._stop.wait(delay) or not self._current(generation):
                    return
            try:
                source = self.open_source()
            except Exception as exc:  # noqa: BLE001 - any failure to open is a camera fault, never fatal
                self._offline(f"cannot open: {exc}", generation)
                first = False
                continue
            if not first:
                self.reconnects += 1
            first = False
            try:
                ended = self._read(source, generation)
            except FrozenError as exc:
                self._offline(str(exc), generation)
                continue
            except Exception as exc:  # noqa: BLE001 - read errors reopen the camera
                self._offline(f"read error: {exc}", generation)
                continue
            finally:
                source.close()
            if not ended:
                continue  # abandoned or stopping: the loop condition ends this thread
            if source.live:
                self._offline("the stream ended", generation)
            elif not self.camera.loop:
                self._finish()
                return
            else:
                first = True  # replay the file at once: not a fault, no backoff

    def _read(self, source: Source, generation: int) -> bool:
        """Frames from `source` into the slot; True at the clean end of a file, False when abandoned."""
        opened = self.clock()
        self.watchdog.reset(opened)
        self._stream += 1
        period = 1.0 / source.fps if self.camera.realtime and not source.live and source.fps else 0.0
        # A file read without realtime loses no frame: each waits until the last one was taken for processing.
        lossless = not source.live and not self.camera.realtime
        due = opened
        frames = 0
        unreadable = self.unreadable
        for frame in source:
            if not self._current(generation):
                return False
            now = self.clock()
            self.unreadable = unreadable + len(source.unreadable)
            # A still scene in a video file is no fault; a camera repeating one picture is.
            if self.watchdog.frame(frame.gray, now) and source.live:
                raise FrozenError(f"frozen picture for {self.camera.watchdog.frozen_seconds:g} s")
            if not self.online:
                self._online()
            if now - opened >= self.camera.watchdog.healthy_seconds:
                self.backoff.reset()
            frames += 1
            # Without realtime the file's own clock is the frames' (smoothing is in seconds of the scene, not of
            # the processing); a camera's, or a file played like one, is the daemon's.
            stamp = frame.timestamp if lossless else now - self.started
            self._put(Captured(Frame(self.captured, stamp, frame.bgr, frame.gray), self._stream), wait=lossless)
            if period:
                due = max(due + period, now - period)
                if self._stop.wait(max(0.0, due - self.clock())):
                    return False
        self.unreadable = unreadable + len(source.unreadable)
        if not frames:
            # Replaying a file that gives nothing (every image unreadable) would spin: a fault, with backoff.
            raise SourceError(f"{source.name}: no frame could be read")
        return True

    def _put(self, item: Captured, wait: bool = False) -> None:
        with self._ready:
            if wait:
                self._ready.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self.skipped += 1
            self._slot = item
            self.captured += 1
            self._ready.notify_all()

    def _online(self) -> None:
        self.online, self.reason = True, "online"
        self.changes.append((True, self.reason, self.reconnects, self.captured))
        log.info("camera %s online", self.camera.name)

    def _offline(self, reason: str, generation: int) -> None:
        if generation != self._generation:
            return  # an abandoned capture thread whose hung read finally returned: it has no say
        if self.online or reason != self.reason:
            log.warning("camera %s offline: %s", self.camera.name, reason)
            self.changes.append((False, reason, self.reconnects, self.captured))
        self.online, self.reason = False, reason

    def _finish(self) -> None:
        with self._ready:
            self.finished = True
            self.online, self.reason = False, "end of file"
            self.changes.append((False, self.reason, self.reconnects, self.captured))
            self._ready.notify_all()
