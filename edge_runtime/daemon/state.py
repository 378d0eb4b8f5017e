"""What the daemon sees now, shared with the HTTP server and MQTT: an immutable snapshot the
processing loop replaces after each frame, and the latest annotated JPEG for the preview stream."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FaceState:
    track: int
    label: str
    score: float
    box: list[int]
    probabilities: dict[str, float]


@dataclass(frozen=True)
class State:
    camera: str
    camera_state: str = "offline"
    reason: str = "starting"
    faces: tuple[FaceState, ...] = ()
    camera_fps: float = 0.0
    processed_fps: float = 0.0
    frames_processed: int = 0
    frames_skipped: int = 0
    reconnects: int = 0
    # Monotonic time of the last processed frame (None before the first): /healthz reads it.
    last_frame: float | None = field(default=None, compare=False)
    time: float = 0.0

    @property
    def dominant(self) -> str | None:
        """The emotion most faces show (ties: the larger summed score); None without faces."""
        if not self.faces:
            return None
        votes = Counter(f.label for f in self.faces)
        scores = Counter()
        for f in self.faces:
            scores[f.label] += f.score
        return max(votes, key=lambda label: (votes[label], scores[label]))

    def summary(self) -> dict:
        """The retained MQTT state and the core of /api/state."""
        return {"camera": self.camera, "camera_state": self.camera_state, "faces": len(self.faces),
                "dominant": self.dominant, "time": round(self.time, 3)}

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("last_frame")
        out["dominant"] = self.dominant
        out["faces"] = [asdict(f) for f in self.faces]
        for key in ("camera_fps", "processed_fps", "time"):
            out[key] = round(out[key], 3)
        return out

    def healthy(self, now: float, within: float) -> bool:
        return self.camera_state == "online" and self.last_frame is not None and now - self.last_frame <= within


class Preview:
    """The newest annotated JPEG; stream readers wait for the next one. The processing loop encodes
    frames only while someone watches (`viewers`), so an unwatched daemon spends nothing on it."""

    def __init__(self):
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self.viewers = 0
        self.closed = False

    def put(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg, self._seq = jpeg, self._seq + 1
            self._cond.notify_all()

    def next(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The first JPEG newer than sequence number `after` (waiting up to `timeout`): (seq, jpeg)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
            return self._seq, (self._jpeg if self._seq > after else None)

    def watching(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
