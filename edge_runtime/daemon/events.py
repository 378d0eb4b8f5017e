"""Faces become events: `new` when a track appears, `update` when its smoothed label changes,
`end` when the track ends (or the camera goes away, or the daemon stops).

A face the pipeline does not show for a frame or two (it coasts) is still the same event: an
event ends only when the tracker drops its track.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_runtime.pipeline import Face


@dataclass
class FaceEvent:
    """One face's event as it stands; `record(type)` is what the sinks publish."""

    camera: str
    track: int
    start_time: float
    label: str
    score: float
    probabilities: dict[str, float]
    box: list[int]
    frame_time: float

    @property
    def id(self) -> str:
        return f"{self.start_time:.3f}-{self.camera}-{self.track}"

    def record(self, type_: str, end_time: float | None = None) -> dict:
        return {
            "type": type_, "id": self.id, "camera": self.camera, "track": self.track, "label": self.label,
            "score": round(self.score, 4), "probabilities": self.probabilities, "box": self.box,
            "start_time": round(self.start_time, 3), "frame_time": round(self.frame_time, 3),
            "end_time": None if end_time is None else round(end_time, 3),
        }


class EventTracker:
    def __init__(self, camera: str, labels: Iterable[str]):
        self.camera = camera
        self.labels = tuple(labels)
        self.open: dict[int, FaceEvent] = {}

    def update(self, faces: Iterable[Face], alive: Iterable[int], now: float) -> list[dict]:
        """The events of one processed frame: `faces` shown in it, `alive` the tracker's live track ids,
        `now` the wall-clock time."""
        records = []
        for face in faces:
            e = face.emotion
            event = self.open.get(face.track)
            kind = "new" if event is None else "update" if event.label != e.label else None
            if event is None:
                event = self.open[face.track] = FaceEvent(self.camera, face.track, now, e.label, e.score, {}, [], now)
            event.label, event.score, event.frame_time = e.label, e.score, now
            event.probabilities = e.as_dict(self.labels)
            event.box = face.box.as_list()
            if kind:
                records.append(event.record(kind))
        alive = set(alive)
        records += self.end([t for t in self.open if t not in alive], now)
        return records

    def end(self, tracks: Iterable[int] | None, now: float) -> list[dict]:
        """End the given tracks' events (all of them when None)."""
        tracks = list(self.open) if tracks is None else list(tracks)
        return [self.open.pop(t).record("end", now) for t in tracks if t in self.open]
