"""What the daemon sees now, shared with the HTTP server and MQTT: an immutable snapshot the
processing loop replaces after each frame, and the latest annotated JPEG for the preview stream."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
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
    """The newest annotated JPEG for the preview stream. The processing loop encodes frames only while
    someone watches (`viewers`), so an unwatched daemon spends nothing on it. `on_frame` callbacks run
    after each new one (the HTTP server wakes its stream viewers with one)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._seq = 0
        self.viewers = 0
        self.on_frame: list[Callable[[], None]] = []

    def put(self, jpeg: bytes) -> None:
        with self._lock:
            self._jpeg, self._seq = jpeg, self._seq + 1
        for callback in list(self.on_frame):
            callback()

    def latest(self) -> tuple[int, bytes | None]:
        """(sequence number, JPEG) of the newest frame; (0, None) before the first."""
        with self._lock:
            return self._seq, self._jpeg

    def watching(self, delta: int) -> None:
        with self._lock:
            self.viewers += delta
