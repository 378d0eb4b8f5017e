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
    confirm_score: a detection whose score (Box.score) reaches this starts a track confirmed at
        once (0 = never): a face the detector is sure of needs no second look.
    max_overlap: no new track starts on a detection covering more than this fraction of a
        tracked box (or lying that much inside it): Haar fires on windows straddling the top of
        a face (hair, forehead and eyes), while two real faces' boxes rarely overlap at all.
    remember: a confirmed track that ended because nothing placed it (a face covered or turned
        away) is kept out of sight for this many updates; a detection overlapping its last box by
        iou_threshold brings it back, same id and confirmed, instead of starting a new track.
        Tracks ended by `drop` (a face that left the picture, a cut) are not kept.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, max_undetected: int = 30,
                 min_hits: int = 1, confirm_within: int = 10, max_overlap: float = 0.1,
                 velocity_smoothing: float = 0.5, remember: int = 0, confirm_score: float = 0.0):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if not 0 <= max_missed <= max_undetected:
            raise ValueError(f"need 0 <= max_missed <= max_undetected, got {max_missed}, {max_undetected}")
        if min_hits < 1 or confirm_within < 1:
            raise ValueError(f"min_hits and confirm_within must be >= 1, got {min_hits}, {confirm_within}")
        if remember < 0:
            raise ValueError(f"remember must be >= 0, got {remember}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.max_undetected = max_undetected
        self.min_hits = min_hits
        self.confirm_within = confirm_within
        self.max_overlap = max_overlap
        self.velocity_smoothing = velocity_smoothing
        self.remember = remember
        self.confirm_score = confirm_score
        self.tracks: list[Track] = []
        # Tracks out of sight that a detection may bring back, with the update count when they ended.
        self.lost: list[tuple[Track, int]] = []
        self._next_id = 1
        self._updates = 0

    def reset(self) -> None:
        """Drop every track, those out of sight too; ids keep counting, so an id never names two faces."""
        self.tracks = []
        self.lost = []

    def drop(self, ids) -> list[Track]:
        """End the tracks with these ids now, without keeping them out of sight (they left the picture)."""
        ids = set(ids)
        dropped = [t for t in self.tracks if t.id in ids]
        self.tracks = [t for t in self.tracks if t.id not in ids]
        return dropped

    def place(self, track_id: int, box: Box) -> None:
        """Put a track at `box` with no velocity: a jump that is not motion (across a cut, a face found again
        somewhere else), which would otherwise send the face on at the jump's speed while it coasts."""
        for track in self.tracks:
            if track.id == track_id:
                track.box, track.velocity = box, (0.0, 0.0)

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
        self._updates += 1
        self.lost = [(t, when) for t, when in self.lost if self._updates - when <= self.remember]
        if self.remember:
            self.lost += [(t, self._updates) for t in ended if t.missed > self.max_missed and self.confirmed(t)]
        used = set(matched.values())
        for di, det in enumerate(detections):
            # A box lying largely over a face already tracked is the detector firing on part of that
            # face (Haar likes forehead-and-eyes windows), not a new face.
            if di not in used and all(det.overlap(t.box) < self.max_overlap for t in alive):
                alive.append(self._revive(det) or self._start(det))
        self.tracks = alive
        return TrackerUpdate(list(alive), ended)

    def _start(self, box: Box) -> Track:
        self._next_id += 1
        strong = self.confirm_score > 0 and box.score >= self.confirm_score
        return Track(self._next_id - 1, box, hits=max(1, self.min_hits) if strong else 1)

    def _revive(self, box: Box) -> Track | None:
        """The track out of sight whose last box `box` overlaps most (by iou_threshold at least), back in sight."""
        best = max(self.lost, key=lambda lost: lost[0].box.iou(box), default=None)
        if best is None or best[0].box.iou(box) < self.iou_threshold:
            return None
        self.lost.remove(best)
        track = best[0]
        track.box, track.missed, track.undetected, track.velocity = box, 0, 0, (0.0, 0.0)
        track.hits += 1
        return track

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
