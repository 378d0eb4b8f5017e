"""The per-frame pipeline: detector -> tracker -> classifier -> smoother.

Full-frame detection runs every `detect_every` frames, and at once when the picture changes as a
whole (a cut: every face that detection does not find again is dropped, none is followed onto the
new picture). In between, the
detector looks only where something moved outside the tracked faces (a face entering, a hand taken
off a face), and each tracked face is followed by template matching around where its track is
heading. New faces are found within `detect_every` frames (most in the frame they become
detectable) and known faces placed in every frame, at a fraction of the cost of detecting on every
full frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.boxes import Box
from edge_runtime.classifier import Classifier, Emotion
from edge_runtime.detector import FaceDetector
from edge_runtime.follower import TemplateFollower
from edge_runtime.motion import ChangeDetector
from edge_runtime.preprocess import preprocess_faces, to_gray
from edge_runtime.smoother import EmaSmoother
from edge_runtime.sources import Frame
from edge_runtime.tracker import IouTracker, Track

# Across a cut a face is kept only if its template matches a detected face this well: the same face after a
# move correlates 0.9 and more (0.92-0.997 where a cut was seen within a scene of the dynamic videos, FER crops and
# portraits), different faces shrunk to 32 px mostly up to 0.7 but up to 0.82 (two FER crops; at 0.8 the
# second took the first's track). A face that changed more gets a new id: better than another face's.
CUT_MATCH = 0.9


@dataclass(frozen=True)
class PipelineOptions:
    # Full-frame detection every N frames (1 = every frame); tracked faces are followed in between.
    detect_every: int = 10
    # A new face is shown once the detector has found it in this many frames (the frames after
    # its first detection search a window around it), so one-frame false detections never show;
    # a strong detection (confirm_score) is shown at once.
    confirm: int = 2
    # Each face is classified every N frames (staggered across faces); its smoothed emotion is
    # reported in every frame. Expressions change over hundreds of milliseconds, frames come every 33.
    classify_every: int = 2
    # A face neither detector nor follower placed is still reported, at its predicted box, for this
    # many frames, and its track ends after max_missed such frames.
    coast: int = 2
    max_missed: int = 10
    # A track ends when this many full detections in a row did not find it, however well it is followed.
    detections_missed: int = 5
    iou_threshold: float = 0.3
    # A detection scoring at least this (Haar: the cascade's last-stage weight) shows its face at once,
    # without waiting for a confirming detection; 0 = always wait. On val faces, 4 confirms about 80 % of
    # true faces at once and none of the detector's false ones.
    confirm_score: float = 4.0
    # A cut (full detection; the faces it does not find again are dropped) when the correlation of the
    # picture outside tracked faces with the last frame's falls below this; -1 = never. Within a scene it
    # stays above 0.85 (light changes included), across a cut it falls near 0.
    cut_below: float = 0.6
    # Motion outside tracked faces (a thumbnail cell changing by this much of the picture's contrast)
    # makes the detector look there in that frame; 0 = off.
    motion: float = 0.25
    # Motion looks between two full detections cover at most this many frames' area in all (0 = no limit): what a
    # background that moves everywhere can cost (at most 4 more full-frame looks per detect_every frames, where
    # it looked at the whole frame in every frame). On 16-scene dynamic videos (2026-12-06) 4 kept the recall of
    # no limit on portraits (0.835) and FER crops (0.954 vs 0.956); 2 cost 1-2 points of recall.
    motion_budget: float = 4.0
    # The least template-matching score (-1..1) for the follower to place a face; below it the face coasts.
    follow_score: float = 0.6
    # A face that nothing placed for max_missed frames (covered, turned away) keeps its id for this many
    # more frames: a detection where it was brings it back.
    remember: int = 48
    # A face whose box is less than this fraction inside the picture has left it: it is dropped at once.
    leave_below: float = 0.5
    # Smoothing time constant in seconds (0 = off) and label hysteresis; see EmaSmoother.
    smoothing: float = 0.3
    hysteresis: float = 0.1

    def check(self) -> None:
        for name in ("detect_every", "confirm", "classify_every", "detections_missed"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.coast <= self.max_missed:
            raise ValueError(f"coast must be between 0 and max_missed ({self.max_missed}), got {self.coast}")
        bounds = {"cut_below": (-1.0, 1.0), "leave_below": (0.0, 1.0), "motion": (0.0, 10.0)}
        for name, (lo, hi) in bounds.items():
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}, got {getattr(self, name)}")
        if not -1.0 < self.follow_score < 1.0:
            raise ValueError(f"follow_score must be above -1 and below 1, got {self.follow_score}")
        for name in ("remember", "confirm_score", "motion_budget"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Face:
    """One face in one frame: its track, its box in input pixels, its smoothed emotion, and its latest
    single-frame classification (`classified`: made on this frame's crop; otherwise an earlier
    frame's, when classify_every > 1)."""

    track: int
    box: Box
    emotion: Emotion
    raw: Emotion
    classified: bool = True


@dataclass(frozen=True)
class FrameResult:
    index: int
    time: float
    faces: list[Face]
    # Whether this frame ran full-frame detection (otherwise tracked faces were re-found near their tracks).
    full_detection: bool

    def json_records(self, labels) -> list[dict]:
        """One JSON-ready record per face (the `fer-edge detect --json` line format)."""
        return [
            {"frame": self.index, "time": round(self.time, 4), "box": f.box.as_list(), "label": f.emotion.label,
             "score": round(f.emotion.score, 6), "probabilities": f.emotion.as_dict(labels), "track": f.track}
            for f in self.faces
        ]


class Pipeline:
    """Frames in, faces with stable ids and smoothed emotions out."""

    def __init__(self, detector: FaceDetector, classifier: Classifier, options: PipelineOptions | None = None):
        self.options = options or PipelineOptions()
        self.options.check()
        self.detector = detector
        self.classifier = classifier
        o = self.options
        undetected = max(o.max_missed, o.detections_missed * o.detect_every)
        self.tracker = IouTracker(o.iou_threshold, o.max_missed, undetected,
                                  min_hits=o.confirm, confirm_within=o.detect_every, remember=o.remember,
                                  confirm_score=o.confirm_score)
        # The follower looks for a face down to half as far inside the picture as where it is dropped as gone.
        self.follower = TemplateFollower(min_score=o.follow_score, min_inside=o.leave_below / 2)
        self.change = ChangeDetector(o.cut_below, o.motion)
        self._since_full = 0
        self._motion_area = 0  # pixels looked at for motion since the last full detection
        self.smoother = EmaSmoother(classifier.labels, o.smoothing, o.hysteresis)
        self._raw: dict[int, Emotion] = {}
        self._frames = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def reset(self) -> None:
        """Forget every face (a new video, or the camera was restarted)."""
        self.tracker.reset()
        self.follower.reset()
        self.smoother.reset()
        self.change.reset()
        self._raw.clear()
        self._frames = 0
        self._since_full = 0
        self._motion_area = 0

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        """Run one frame. still=True: the frame stands alone (a photo): every face found is shown
        and classified, with no tracking or smoothing."""
        if still:
            self.reset()
        o = self.options
        gray = frame.gray
        change = self.change.update(gray, [t.box for t in self.tracker.tracks])
        full = change.cut or self._since_full >= o.detect_every - 1
        self._since_full = 0 if full else self._since_full + 1
        followed = {}
        for track in self.tracker.tracks:
            box = self.follower.follow(track.id, gray, track.predicted())
            if box is not None:
                followed[track.id] = box
        ended = []
        if full:
            detections = self.detector.detect(gray)
            if change.cut:
                ended = self._cut(gray, detections, followed)
            detections += self._look_again(gray, detections, followed)
        else:
            detections = self._confirm(gray, followed)
            if change.moving is not None:
                detections += self._look_at(gray, change.moving)
        if full:
            self._motion_area = 0
        update = self.tracker.update(self._verified(gray, detections), followed)
        height, width = gray.shape
        left = [t.id for t in update.tracks if _inside(t.box, width, height) < o.leave_below]
        ended += update.ended + self.tracker.drop(left)
        for track in self.tracker.tracks:
            if track.undetected == 0:
                self.follower.remember(track.id, gray, track.box)
        ended_ids = [t.id for t in ended]
        self.follower.forget(ended_ids)
        self.smoother.forget(ended_ids)
        for t in ended_ids:
            self._raw.pop(t, None)
        shown = [t for t in self.tracker.tracks
                 if t.missed <= o.coast and (still or self.tracker.confirmed(t))]
        faces = self._classify(frame, shown, still)
        self._frames += 1
        return FrameResult(frame.index, frame.timestamp, faces, full)

    def _cut(self, gray, detections: list[Box], followed: dict[int, Box]) -> list[Track]:
        """The picture changed as a whole: a face is kept only where the full detection finds a face that its
        template matches (one that moved far between two frames of a slow camera is found again there); the
        others are gone at once, and none out of sight comes back, so no face of the last scene is followed
        onto the new picture."""
        gone = []
        for track in self.tracker.tracks:
            found = (self.follower.follow(track.id, gray, d, min_score=CUT_MATCH) for d in detections)
            box = next((b for b in found if b is not None), None)
            if box is None:
                gone.append(track.id)
                followed.pop(track.id, None)
            else:
                # Where it was on the last picture says nothing of how it moves on this one.
                self.tracker.place(track.id, box)
                followed[track.id] = box
        self.tracker.lost.clear()
        return self.tracker.drop(gone)

    def _verified(self, gray, detections: list[Box]) -> list[Box]:
        """The detections, less those that would start or confirm a track (they lie on no face shown or out of
        sight) and that the detector's second opinion does not confirm. A face not yet shown was vetted at its first
        detection, but the detection that confirms it is another box, maybe on another patch: a patch the verifier
        passed once (P 0.34) and the cascade found again weakly ten frames later, P 0.02 there, was shown and
        followed for 22 frames as a face (the portrait video of bench.dynamic drawn with the detector of e30056f)."""
        tracked = [t.predicted() for t in self.tracker.tracks if self.tracker.confirmed(t)] + \
            [t.box for t, _ in self.tracker.lost]
        return [d for d in detections
                if any(d.iou(b) >= self.options.iou_threshold or d.overlap(b) >= 0.5 for b in tracked)
                or self.detector.verify(gray, d)]

    def _look_again(self, gray, detections: list[Box], followed: dict[int, Box]) -> list[Box]:
        """Followed faces the shrunken full frame missed, looked for at full resolution where the follower puts
        them (a window of one face, so it costs little): a face the cascade finds only weakly stays confirmed by
        the detector instead of ending after detections_missed full detections."""
        th = self.options.iou_threshold
        found = []
        for track in self.tracker.tracks:
            guess = followed.get(track.id)
            if guess is None or any(d.iou(guess) >= th or d.iou(track.predicted()) >= th for d in detections):
                continue
            side = max(guess.w, guess.h)
            near = self.detector.detect_in(gray, guess.grown(0.25), (round(side * 0.7), round(side * 1.4)), fine=True)
            best = max(near, key=guess.iou, default=None)
            if best is not None and guess.iou(best) >= th:
                found.append(best)
        return found

    def _confirm(self, gray, followed: dict[int, Box]) -> list[Box]:
        """Between full detections, new faces not yet confirmed are looked for again where they are."""
        boxes = []
        for track in self.tracker.tracks:
            if not self.tracker.confirmed(track):
                guess = followed.get(track.id, track.predicted())
                side = max(guess.w, guess.h)
                found = self.detector.detect_in(gray, guess.grown(0.25), (round(side * 0.7), round(side * 1.4)))
                best = max(found, key=guess.iou, default=None)
                if best is not None and guess.iou(best) >= self.options.iou_threshold:
                    boxes.append(best)
        return boxes

    def _look_at(self, gray, moving: Box) -> list[Box]:
        """The detector where something moved, with a face's margin around it (a face coming in from an edge
        moves only at its visible part). Between two full detections these looks cover at most motion_budget
        frames' area in all: a background that moves everywhere (leaves, a screen, a panning camera) costs at most
        that many more full detections per detect_every frames instead of one per frame; what moved past the
        budget is seen at the next full detection, as without motion."""
        pad = min(max(moving.w, moving.h) // 2, min(gray.shape) // 4)
        region = Box(moving.x - pad, moving.y - pad, moving.w + 2 * pad, moving.h + 2 * pad).clipped(
            gray.shape[1], gray.shape[0])
        budget = self.options.motion_budget * gray.size
        if region is None or (budget and self._motion_area + region.area > budget):
            return []
        self._motion_area += region.area
        return self.detector.detect_in(gray, region)

    def _classify(self, frame: Frame, tracks: list[Track], still: bool) -> list[Face]:
        sx, sy = frame.detection_scale
        height, width = frame.bgr.shape[:2]
        every = self.options.classify_every
        placed, due = [], []
        for track in tracks:
            box = track.box.scaled(sx, sy).clipped(width, height)
            if box is None:
                continue
            placed.append((track, box))
            if still or track.id not in self._raw or (self._frames + track.id) % every == 0:
                due.append((track, box))
        if due:
            # Crop from the full-resolution picture; gray already is it unless it is a camera's lores stream.
            image = frame.gray if (sx, sy) == (1.0, 1.0) else to_gray(frame.bgr)
            p = self.classifier.preprocessing
            crops = preprocess_faces(image, [b.as_list() for _, b in due], size=p.size, margin=p.margin)
            for (track, _), raw in zip(due, self.classifier.classify(crops)):
                self._raw[track.id] = raw
                if not still:
                    self.smoother.update(track.id, raw.probabilities, frame.timestamp)
        now = {track.id for track, _ in due}
        faces = []
        for track, box in placed:
            raw = self._raw[track.id]
            shown = raw if still else self.smoother.current(track.id)
            faces.append(Face(track.id, box, shown, raw, track.id in now))
        return faces


def _inside(box: Box, width: int, height: int) -> float:
    """The fraction of `box` inside a width x height picture."""
    inside = box.clipped(width, height)
    return 0.0 if inside is None else inside.area / max(1, box.area)
