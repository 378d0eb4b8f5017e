"""A one-line progress display on stderr; the device install stays without tqdm."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`frame 120/450 (27%)  95.1 fps`, redrawn in place at most every `interval` seconds.

    Shown only on a terminal unless `enabled` says otherwise, so logs and pipes stay clean.
    """

    def __init__(self, total: int | None, *, label: str = "frame", stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.5):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self.count = 0
        self._start = time.monotonic()
        self._shown = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        if self.total:
            return f"{self.label} {self.count}/{self.total} ({100 * self.count // self.total}%)  {self.rate:.1f} fps"
        return f"{self.label} {self.count}  {self.rate:.1f} fps"

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._shown >= self.interval:
            self._shown = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.count:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
