"""The per-frame pipeline: detector -> tracker -> classifier -> smoother.

Full-frame detection runs every `detect_every` frames; in every frame each tracked face is
also followed by template matching around where its track is heading. New faces are
found within `detect_every` frames and known faces placed in every frame, at a fraction of
the cost of detecting on every full frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.boxes import Box
from edge_runtime.classifier import Classifier, Emotion
from edge_runtime.detector import FaceDetector
from edge_runtime.follower import TemplateFollower
from edge_runtime.preprocess import preprocess_faces, to_gray
from edge_runtime.smoother import EmaSmoother
from edge_runtime.sources import Frame
from edge_runtime.tracker import IouTracker, Track


@dataclass(frozen=True)
class PipelineOptions:
    # Full-frame detection every N frames (1 = every frame); tracked faces are followed in between.
    detect_every: int = 10
    # A new face is shown once the detector has found it in this many frames (the frames after
    # its first detection search a window around it), so one-frame false detections never show.
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
    # Smoothing time constant in seconds (0 = off) and label hysteresis; see EmaSmoother.
    smoothing: float = 0.3
    hysteresis: float = 0.1

    def check(self) -> None:
        for name in ("detect_every", "confirm", "classify_every", "detections_missed"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.coast <= self.max_missed:
            raise ValueError(f"coast must be between 0 and max_missed ({self.max_missed}), got {self.coast}")


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
                                  min_hits=o.confirm, confirm_within=o.detect_every)
        self.follower = TemplateFollower()
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
        self._raw.clear()
        self._frames = 0

    def process(self, frame: Frame, *, still: bool = False) -> FrameResult:
        """Run one frame. still=True: the frame stands alone (a photo): every face found is shown
        and classified, with no tracking or smoothing."""
        if still:
            self.reset()
        full = self._frames % self.options.detect_every == 0
        gray = frame.gray
        followed = {}
        for track in self.tracker.tracks:
            box = self.follower.follow(track.id, gray, track.predicted())
            if box is not None:
                followed[track.id] = box
        detections = self._detect(gray, followed) if full else self._confirm(gray, followed)
        update = self.tracker.update(detections, followed)
        for track in update.tracks:
            if track.undetected == 0:
                self.follower.remember(track.id, gray, track.box)
        ended = [t.id for t in update.ended]
        self.follower.forget(ended)
        self.smoother.forget(ended)
        for t in ended:
            self._raw.pop(t, None)
        shown = [t for t in update.tracks
                 if t.missed <= self.options.coast and (still or self.tracker.confirmed(t))]
        faces = self._classify(frame, shown, still)
        self._frames += 1
        return FrameResult(frame.index, frame.timestamp, faces, full)

    def _detect(self, gray, followed: dict[int, Box]) -> list[Box]:
        """Full-frame detection, plus a closer look at tracked faces it missed."""
        boxes = self.detector.detect(gray)
        for track in self.tracker.tracks:
            guess = followed.get(track.id)
            if guess is None or any(track.predicted().iou(b) >= self.options.iou_threshold for b in boxes):
                continue
            # The shrunken full frame missed a face the follower still sees: look again at full
            # resolution around it, so the track is confirmed rather than dropped.
            found = self._look_near(gray, guess)
            if found is not None:
                boxes.append(found)
        return boxes

    def _confirm(self, gray, followed: dict[int, Box]) -> list[Box]:
        """Between full detections, only new faces not yet confirmed are looked for again."""
        boxes = []
        for track in self.tracker.tracks:
            if not self.tracker.confirmed(track):
                found = self._look_near(gray, followed.get(track.id, track.predicted()))
                if found is not None:
                    boxes.append(found)
        return boxes

    def _look_near(self, gray, guess: Box) -> Box | None:
        """The detector on a window around `guess`, at full resolution; the face overlapping it most."""
        window = guess.grown(0.25).clipped(gray.shape[1], gray.shape[0])
        if window is None:
            return None
        crop = gray[window.y : window.y + window.h, window.x : window.x + window.w]
        found = [b.shifted(window.x, window.y) for b in self.detector.detect(crop)]
        best = max(found, key=guess.iou, default=None)
        return best if best is not None and guess.iou(best) >= self.options.iou_threshold else None

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
