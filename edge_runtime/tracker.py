"""Tracking: detections in consecutive frames joined by box overlap (IoU) into tracks with stable ids.

Between full detections a follower (template matching) may place a track's face itself;
those boxes belong to their track already and need no association. Each track keeps a
velocity, so a face that nothing placed in a frame moves on, and the follower searches
where the face is going rather than where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge_runtime.boxes import Box


@dataclass
class Track:
    """One face followed across frames."""

    id: int
    box: Box
    # Updates in which the detector found this face.
    hits: int = 1
    # Consecutive updates in which nothing (neither detector nor follower) placed the face.
    missed: int = 0
    # Consecutive updates since the detector last found it (the follower alone does not reset this).
    undetected: int = 0
    # Updates since the track started.
    age: int = 0
    # Centre velocity in pixels per update, smoothed.
    velocity: tuple[float, float] = (0.0, 0.0)

    def predicted(self) -> Box:
        return self.box.shifted(*self.velocity)


@dataclass
class TrackerUpdate:
    """What one update did: the tracks alive now (placed or coasting) and the ones that ended."""

    tracks: list[Track]
    ended: list[Track] = field(default_factory=list)


class IouTracker:
    """Greedy IoU association: the best-overlapping (track, detection) pairs first.

    iou_threshold: least overlap between a track's predicted box and a detection to join them.
    max_missed: a track that nothing placed for more than this many updates ends.
    max_undetected: a track the detector has not confirmed for more than this many updates
        ends, even if the follower still places it (it may be following a background patch).
    min_hits, confirm_within: a new track is confirmed once the detector has found it in
        min_hits updates; one still unconfirmed after confirm_within updates ends (a
        one-frame false detection never becomes a face).
    max_overlap: no new track starts on a detection covering more than this fraction of a
        tracked box (or lying that much inside it): Haar fires on windows straddling the top of
        a face (hair, forehead and eyes), while two real faces' boxes rarely overlap at all.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, max_undetected: int = 30,
                 min_hits: int = 1, confirm_within: int = 10, max_overlap: float = 0.1,
                 velocity_smoothing: float = 0.5):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if not 0 <= max_missed <= max_undetected:
            raise ValueError(f"need 0 <= max_missed <= max_undetected, got {max_missed}, {max_undetected}")
        if min_hits < 1 or confirm_within < 1:
            raise ValueError(f"min_hits and confirm_within must be >= 1, got {min_hits}, {confirm_within}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.max_undetected = max_undetected
        self.min_hits = min_hits
        self.confirm_within = confirm_within
        self.max_overlap = max_overlap
        self.velocity_smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Drop every track; ids keep counting, so an id never names two faces."""
        self.tracks = []

    def update(self, detections: Sequence[Box], followed: Mapping[int, Box] | None = None) -> TrackerUpdate:
        """One frame: `detections` from the detector, `followed` boxes by track id from the follower
        (used for tracks no detection matched)."""
        followed = followed or {}
        predicted = [t.predicted() for t in self.tracks]
        pairs = sorted(
            ((p.iou(d), ti, di) for ti, p in enumerate(predicted) for di, d in enumerate(detections)),
            reverse=True,
        )
        matched: dict[int, int] = {}
        for iou, ti, di in pairs:
            if iou < self.iou_threshold:
                break
            if ti not in matched and di not in matched.values():
                matched[ti] = di
        alive, ended = [], []
        for ti, track in enumerate(self.tracks):
            if ti in matched:
                self._move(track, detections[matched[ti]])
                track.hits += 1
                track.undetected = 0
            elif track.id in followed:
                self._move(track, followed[track.id])
                track.undetected += 1
            else:
                track.box = predicted[ti]
                track.missed += 1
                track.undetected += 1
            track.age += 1
            gone = (track.missed > self.max_missed or track.undetected > self.max_undetected
                    or (not self.confirmed(track) and track.age >= self.confirm_within))
            (ended if gone else alive).append(track)
        used = set(matched.values())
        for di, det in enumerate(detections):
            # A box lying largely over a face already tracked is the detector firing on part of that
            # face (Haar likes forehead-and-eyes windows), not a new face.
            if di not in used and all(det.overlap(t.box) < self.max_overlap for t in alive):
                alive.append(Track(self._next_id, det))
                self._next_id += 1
        self.tracks = alive
        return TrackerUpdate(list(alive), ended)

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.min_hits

    def _move(self, track: Track, box: Box) -> None:
        # Velocity per update, spread over the updates the face was missed (its box coasted meanwhile).
        steps = track.missed + 1
        (cx, cy), (nx, ny) = track.box.center, box.center
        vx, vy = track.velocity
        cx, cy = cx - vx * track.missed, cy - vy * track.missed
        a = self.velocity_smoothing
        track.velocity = (a * vx + (1 - a) * (nx - cx) / steps, a * vy + (1 - a) * (ny - cy) / steps)
        track.box = box
        track.missed = 0
