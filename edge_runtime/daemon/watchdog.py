"""Camera watchdog: decides when a camera has stopped delivering, and how long to wait before reopening.

Three faults, as Frigate's watchdog sees them: no frame for a while (a hung driver, a dead
stream), frozen frames (some USB backends repeat the last frame forever after an unplug),
and read errors (the source raises). The capture thread acts on the verdicts.
"""

from __future__ import annotations

import numpy as np


class Backoff:
    """Exponential backoff: `low`, 2*low, 4*low, ... capped at `high`; `reset` after a success."""

    def __init__(self, low: float, high: float):
        self.low, self.high = low, high
        self.failures = 0

    def next(self) -> float:
        delay = min(self.high, self.low * 2 ** min(self.failures, 30))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class CameraWatchdog:
    """Feed it every frame with `frame(gray, now)`; ask `stalled(now)` between frames.

    no_frame_seconds: stalled when the last frame is older than this.
    frozen_seconds: frozen when every frame for this long was identical to the one before (0 = off).
    """

    def __init__(self, no_frame_seconds: float, frozen_seconds: float):
        self.no_frame_seconds = no_frame_seconds
        self.frozen_seconds = frozen_seconds
        self.reset(0.0)

    def reset(self, now: float) -> None:
        """A (re)opened camera: the clocks start again."""
        self.last_frame = now
        self.last_change = now
        self._signature: np.ndarray | None = None

    def frame(self, gray: np.ndarray, now: float) -> bool:
        """Record a frame; True when the picture has been frozen for frozen_seconds."""
        self.last_frame = now
        # A sparse grid of pixels: real sensor noise changes some of them in every frame.
        signature = np.ascontiguousarray(gray[::4, ::4])
        if self._signature is None or not np.array_equal(signature, self._signature):
            self._signature = signature
            self.last_change = now
            return False
        return self.frozen_seconds > 0 and now - self.last_change >= self.frozen_seconds

    def stalled(self, now: float) -> bool:
        return now - self.last_frame >= self.no_frame_seconds
