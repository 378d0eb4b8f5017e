"""The pipeline's rules, one at a time, on small synthetic frames with a scripted detector and classifier.

The video tests (`test_video_pipeline.py`) judge the whole path on real faces; these pin the decisions in between
that a plausible slip would change without moving a recall figure: which frames run full detection, where and for
which sizes the detector is asked to look again, which detections are vetted, when a face is dropped, which faces are
classified in a frame, what a cut keeps. The faces are textured patches, so the real template follower and change
detector run on them; the detector finds what the test says is there.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.classifier import Emotion
from edge_runtime.detector import FaceDetector
from edge_runtime.motion import Change
from edge_runtime.pipeline import Face, FrameResult, Pipeline, PipelineOptions
from edge_runtime.preprocess import Preprocessing
from edge_runtime.sources import Frame

W, H = 320, 240
LABELS = ("calm", "glad", "sad")


def _texture(seed: int, w: int, h: int, mean: float = 128.0, blur: float = 2.0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 60, (h, w)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), blur) * 1.5 * blur + mean, 0, 255).astype(np.uint8)


class Scene:
    """A textured backdrop with faces (textured patches, one look per name) pasted where the test puts them."""

    def __init__(self, seed: int = 0, width: int = W, height: int = H):
        self.seed, self.backdrop = seed, _texture(seed, width, height)
        self._looks: dict[tuple[str, int, int], np.ndarray] = {}

    def picture(self, faces: dict[str, Box]) -> np.ndarray:
        gray = self.backdrop.copy()
        for name, box in faces.items():
            key = (name, box.w, box.h)
            if key not in self._looks:
                mean = 60.0 + 130.0 * (sum(map(ord, name)) % 7) / 6
                # The same look on any backdrop.
                self._looks[key] = _texture(1000 + sum(map(ord, name)), box.w, box.h, mean, blur=4.0)
            inside = box.clipped(gray.shape[1], gray.shape[0])
            if inside is not None:
                look = self._looks[key]
                gray[inside.y : inside.y + inside.h, inside.x : inside.x + inside.w] = look[
                    inside.y - box.y : inside.y - box.y + inside.h, inside.x - box.x : inside.x - box.x + inside.w]
        return gray


def frame_of(index: int, gray: np.ndarray, bgr: np.ndarray | None = None) -> Frame:
    return Frame(index, index / 15, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR) if bgr is None else bgr, gray)


def _inside(box: Box, region: Box) -> bool:
    return region.x <= box.x and region.y <= box.y and box.x + box.w <= region.x + region.w \
        and box.y + box.h <= region.y + region.h


class Scripted(FaceDetector):
    """Full-frame detection finds `full`; a look at a region finds the boxes of `near` (by default `full`) lying
    wholly inside it whose side is within the sizes asked, those of `fine_only` too when told to look hard. Every
    call is recorded; `vets` answers the second opinion."""

    def __init__(self):
        self.full: list[Box] = []
        self.near: list[Box] | None = None
        self.fine_only: list[Box] = []
        self.vets = lambda box: True
        self.calls: list[tuple] = []

    def detect(self, gray):
        self.calls.append(("detect",))
        return list(self.full)

    def detect_in(self, gray, region, sizes=None, fine=False):
        self.calls.append(("detect_in", region, sizes, fine))
        window = region.clipped(gray.shape[1], gray.shape[0])
        if window is not None:  # as a real detector does: the window's pixels (integer coordinates only)
            assert gray[window.y : window.y + window.h, window.x : window.x + window.w].size == window.area
        boxes = (self.full if self.near is None else self.near) + (self.fine_only if fine else [])
        return [b for b in boxes if window is not None and _inside(b, window)
                and (sizes is None or sizes[0] <= max(b.w, b.h) <= sizes[1])]

    def verify(self, gray, box):
        assert gray.ndim == 2  # the verifier looks at the frame's pixels
        self.calls.append(("verify", box))
        return self.vets(box)

    def looks(self, fine: bool | None = None) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == "detect_in" and (fine is None or c[3] == fine)]

    def vetted(self) -> list[Box]:
        return [c[1] for c in self.calls if c[0] == "verify"]


class Brightness:
    """A classifier that reads a crop's brightness: probabilities (1 - m, m, 0) for mean level m / 255; it records
    each batch it is given."""

    labels = LABELS
    preprocessing = Preprocessing(size=16, margin=0.0)

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def classify(self, crops):
        size = self.preprocessing.size
        assert crops.shape[1:] == (size, size)  # cropped for this model
        self.batches.append(np.array(crops))
        out = []
        for crop in crops:
            m = float(crop.mean()) / 255
            p = (1 - m, m, 0.0)
            out.append(Emotion(LABELS[int(np.argmax(p))], max(p), p))
        return out


class Placed:
    """A follower that places each track where the test says (`at`), or nowhere: for rules about the boxes the
    pipeline works from, without template matching's pixel of rounding."""

    def __init__(self):
        self.at: dict[int, Box] = {}

    def follow(self, track, gray, guess, min_score=None):
        return self.at.get(track)

    def remember(self, track, gray, box):
        pass

    def forget(self, tracks):
        pass

    def reset(self):
        self.at.clear()


class Changes:
    """A change detector that reports what the test queues (a cut first, as the real one does), then no change."""

    def __init__(self):
        self.queue = [Change(True, None)]

    def update(self, gray, tracked=()):
        return self.queue.pop(0) if self.queue else Change(False, None)

    def reset(self):
        self.queue = [Change(True, None)]


def pipeline(**options) -> tuple[Pipeline, Scripted, Brightness]:
    detector, classifier = Scripted(), Brightness()
    return Pipeline(detector, classifier, PipelineOptions(**options)), detector, classifier


def ids(result: FrameResult) -> list[int]:
    return sorted(f.track for f in result.faces)


def face_of(result: FrameResult, track: int) -> Face | None:
    return next((f for f in result.faces if f.track == track), None)


FACE = Box(100, 70, 80, 80)


@settings(max_examples=25, deadline=None)
@given(every=st.integers(1, 5), frames=st.integers(1, 13))
def test_full_detection_runs_on_the_first_frame_and_then_every_detect_every_frames(every, frames):
    p, detector, _ = pipeline(detect_every=every)
    picture = Scene().picture({})
    full = [p.process(frame_of(i, picture)).full_detection for i in range(frames)]
    assert full == [i % every == 0 for i in range(frames)]
    assert detector.calls.count(("detect",)) == sum(full)


def test_a_face_is_shown_once_found_in_confirm_frames_and_classified_on_its_crop():
    scene = Scene()
    p, detector, classifier = pipeline(confirm=2)
    picture = scene.picture({"ann": FACE})
    detector.full = [FACE]
    first = p.process(frame_of(0, picture))
    assert first.faces == []  # found once: not shown yet
    second = p.process(frame_of(1, picture))  # between full detections: looked for again where it is
    (face,) = second.faces
    assert face.box == FACE and face.classified
    crop = picture[FACE.y : FACE.y + FACE.h, FACE.x : FACE.x + FACE.w]
    assert face.raw.probabilities[1] == pytest.approx(crop.mean() / 255, abs=0.02)
    assert face.emotion == face.raw  # the first observation is shown as it is


def test_json_records_hold_one_line_per_face():
    result = FrameResult(7, 0.466666, [Face(3, Box(1, 2, 30, 40), Emotion("glad", 0.70000049, (0.2, 0.7, 0.1)),
                                            Emotion("calm", 0.5, (0.5, 0.4, 0.1)), False)], False)
    assert result.json_records(LABELS) == [{
        "frame": 7, "time": 0.4667, "box": [1, 2, 30, 40], "label": "glad", "score": 0.7,
        "probabilities": {"calm": 0.2, "glad": 0.7, "sad": 0.1}, "track": 3}]


def scripted(**options) -> tuple[Pipeline, Scripted, Placed, Changes]:
    """A pipeline whose follower and change detector are the test's too."""
    p, detector, _ = pipeline(**options)
    p.follower, p.change = Placed(), Changes()
    return p, detector, p.follower, p.change


BLANK = np.full((H, W), 128, np.uint8)


def run(p: Pipeline, start: int, count: int = 1) -> list[FrameResult]:
    return [p.process(frame_of(i, BLANK)) for i in range(start, start + count)]


# The look that confirms a new face between full detections: around the face (grown by a quarter of its side each
# way), for faces of 0.7 to 1.4 times its side, taking the found box that overlaps it most, by the IoU threshold.
# FACE is 80 px: the window is (80, 50, 120, 120), the sizes 56..112.
@pytest.mark.parametrize("found, shown", [
    (Box(84, 54, 112, 112), True), (Box(84, 54, 113, 113), False),  # the largest side, and one more
    (Box(112, 82, 56, 56), True), (Box(112, 82, 55, 55), False),  # the smallest
    (Box(120, 70, 80, 80), True), (Box(121, 70, 80, 80), False),  # at the window's edge, one past it
    (Box(100, 70, 24, 80), True), (Box(100, 70, 23, 80), False),  # IoU with the face exactly 0.3, and 0.2875
])
def test_a_new_face_is_confirmed_by_a_look_around_it_for_a_face_of_its_size(found, shown):
    p, detector, _, _ = scripted(confirm=2)
    detector.full = [FACE]
    assert run(p, 0)[0].faces == []
    detector.full, detector.near = [], [found]
    (result,) = run(p, 1)
    assert detector.looks() == [(Box(80, 50, 120, 120), (56, 112), False)]
    assert [f.box for f in result.faces] == ([found] if shown else [])


def test_the_confirming_look_takes_the_box_closest_to_the_face():
    p, detector, _, _ = scripted(confirm=2)
    detector.full = [FACE]
    run(p, 0)
    detector.full, detector.near = [], [Box(100, 70, 24, 80), Box(104, 72, 80, 80), Box(96, 66, 90, 90)]
    (result,) = run(p, 1)
    assert [f.box for f in result.faces] == [Box(104, 72, 80, 80)]


def test_the_confirming_look_goes_where_the_follower_puts_the_face_or_else_where_its_track_heads():
    p, detector, follower, _ = scripted(confirm=3, detect_every=10)
    detector.full = [FACE]
    run(p, 0)
    moved = FACE.shifted(30, 0)  # beyond the window around where the track was
    follower.at[1], detector.full, detector.near = moved, [], [moved]
    run(p, 1)
    assert detector.looks()[-1][0] == moved.grown(0.25)
    del follower.at[1]
    detector.near = []  # not followed and not found: looked for where the track heads, not found, not confirmed
    (result,) = run(p, 2)
    track = p.tracker.tracks[0]
    assert detector.looks()[-1][0] == track.box.grown(0.25) and track.box != moved
    assert result.faces == []


# Motion looks: what moved, grown by half its longer side each way (at most a quarter of the frame's shorter side),
# within the frame; between two full detections at most motion_budget frames' area in all.
@pytest.mark.parametrize("moving, region", [
    (Box(150, 100, 40, 20), Box(130, 80, 80, 60)),  # pad 20: half the longer side
    (Box(100, 80, 130, 10), Box(40, 20, 250, 130)),  # pad 60, not 65: a quarter of the frame's height
    (Box(10, 200, 40, 30), Box(0, 180, 70, 60)),  # cut by the frame's edges
])
def test_motion_is_looked_at_with_a_faces_margin_around_it(moving, region):
    p, detector, _, changes = scripted(detect_every=10)
    run(p, 0)
    changes.queue = [Change(False, moving)]
    run(p, 1)
    assert detector.looks() == [(region, None, False)]


@pytest.mark.parametrize("budget, looked", [(1.0, [1, 11]), (2.0, [1, 2, 11, 12]), (0.0, [1, 2, 3, 11, 12, 13])])
def test_motion_looks_stop_at_the_budget_until_the_next_full_detection(budget, looked):
    p, detector, _, changes = scripted(detect_every=10, motion_budget=budget)
    frames = []
    for i in range(14):
        changes.queue = [Change(i == 0, Box(0, 0, W, H) if i else None)]  # everything moves: a whole frame a look
        before = len(detector.looks())
        run(p, i)
        frames += [i] * (len(detector.looks()) - before)
    assert [f for f in frames if f not in (4, 5, 6, 7, 8, 9)] == looked
    assert len(frames) == (9 + 3 if budget == 0 else 2 * budget)


# A face less than leave_below of whose box is inside the picture has left it: exactly half inside stays.
@pytest.mark.parametrize("box, stays", [
    (Box(-40, 70, 80, 80), True), (Box(-41, 70, 80, 80), False),
    (Box(W - 40, 70, 80, 80), True), (Box(W - 39, 70, 80, 80), False),
    (Box(100, H - 40, 80, 80), True), (Box(100, H - 39, 80, 80), False),
    (Box(-16, -60, 80, 160), True), (Box(-17, -60, 80, 160), False),  # 64 x 100 of 80 x 160 inside
])
def test_a_face_half_out_of_the_picture_stays_and_one_further_out_has_left(box, stays):
    p, detector, _, _ = scripted(confirm=1, detect_every=1)
    detector.full = [box]
    (result,) = run(p, 0)
    assert [f.track for f in result.faces] == ([1] if stays else [])
    assert [t.id for t in p.tracker.tracks] == ([1] if stays else [])
    if stays:
        assert result.faces[0].box == box.clipped(W, H)  # reported as far as it is in the picture


@pytest.mark.parametrize("leave_below", [0.0, 0.05])
def test_a_face_coasting_wholly_out_of_the_picture_is_never_shown_there(leave_below):
    """A face running left out of the picture, found until 20 px of it are left inside: its track coasts on at its
    speed, wholly outside in the next frame (where, with leave_below 0.05, it has left)."""
    p, detector, _, _ = scripted(confirm=1, detect_every=1, leave_below=leave_below)
    for i, x in enumerate((100, 60, 20, -20, -60)):
        detector.full = [Box(x, 70, 80, 80)]
        assert ids(run(p, i)[0]) == [1]
    detector.full = []
    (result,) = run(p, 5)
    assert result.faces == []
    assert [t.id for t in p.tracker.tracks] == ([1] if leave_below == 0 else [])


def test_a_followed_face_the_full_detection_misses_is_looked_for_at_full_resolution_and_kept():
    """With detections_missed 2 and detect_every 2 a face not found by 2 full detections in a row ends, however well
    it is followed; a fine look where the follower puts it (grown by a quarter, sizes 0.7 to 1.4 of its side) that
    finds it keeps it."""
    p, detector, follower, _ = scripted(confirm=1, detect_every=2, detections_missed=2, max_missed=2)
    detector.full = [FACE]
    run(p, 0)
    follower.at[1] = FACE.shifted(4, 0)
    detector.full, detector.near, detector.fine_only = [], [], [FACE.shifted(6, 0)]
    results = run(p, 1, 12)
    assert all(ids(r) == [1] for r in results)
    assert detector.looks(fine=True) == [(FACE.shifted(4, 0).grown(0.25), (56, 112), True)] * 6  # frames 2, 4, .. 12
    assert face_of(results[-1], 1).box == FACE.shifted(6, 0)
    detector.fine_only = []
    assert [ids(r) for r in run(p, 13, 5)] == [[1], [1], [1], [1], []]  # undetected for more than 2 x 2 frames


# The track's face T heads to T (it stood still); the follower puts it at `followed`.
T = Box(50, 70, 130, 80)


@pytest.mark.parametrize("followed, found, looks_again", [
    (T, Box(120, 70, 130, 80), False), (T, Box(121, 70, 130, 80), True),  # IoU 0.3 with both, 0.2935
    (T.shifted(10, 0), Box(130, 70, 130, 80), False),  # IoU 0.3 with the followed box, 0.24 with T
    (T.shifted(-10, 0), Box(120, 70, 130, 80), False),  # 0.24 with the followed box, 0.3 with T
    (T.shifted(60, 0), T, False),  # where the track heads, though the follower puts it elsewhere
])
def test_no_fine_look_for_a_face_the_full_detection_found(followed, found, looks_again):
    """Found: a full-frame box overlapping the followed box or where the track heads by the IoU threshold."""
    p, detector, follower, _ = scripted(confirm=1, detect_every=1)
    detector.full = [T]
    run(p, 0)
    follower.at[1], detector.full = followed, [found]
    run(p, 1)
    assert len(detector.looks(fine=True)) == int(looks_again)


def test_each_followed_face_the_full_detection_missed_gets_its_fine_look():
    p, detector, follower, _ = scripted(confirm=1, detect_every=1)
    other = Box(200, 20, 80, 80)
    detector.full = [FACE, other]
    run(p, 0)
    follower.at, detector.full = {1: FACE, 2: other}, [FACE]  # the first found again, the second not
    run(p, 1)
    assert [look[0] for look in detector.looks(fine=True)] == [other.grown(0.25)]


@pytest.mark.parametrize("fine, kept", [(Box(100, 70, 24, 80), True), (Box(100, 70, 23, 80), False)])
def test_the_fine_look_keeps_a_box_overlapping_the_followed_face_by_the_threshold(fine, kept):
    p, detector, follower, _ = scripted(confirm=1, detect_every=1)
    detector.full = [FACE]
    run(p, 0)
    follower.at[1], detector.full, detector.fine_only = FACE, [], [fine, Box(84, 54, 60, 60)]  # the second: IoU 0.24
    (result,) = run(p, 1)
    assert face_of(result, 1).box == (fine if kept else FACE)


def test_a_face_is_confirmed_in_a_frame_where_motion_elsewhere_is_looked_at_too():
    p, detector, _, changes = scripted(confirm=2, detect_every=10)
    detector.full = [FACE]
    run(p, 0)
    detector.full, detector.near = [], [FACE]
    changes.queue = [Change(False, Box(250, 150, 20, 20))]
    (result,) = run(p, 1)
    assert len(detector.looks()) == 2 and ids(result) == [1]


def test_a_new_face_is_vetted_before_its_track_starts():
    p, detector, _, _ = scripted(confirm=1, detect_every=1)
    detector.vets = lambda box: False
    detector.full = [FACE]
    assert run(p, 0)[0].faces == [] and detector.vetted() == [FACE]  # refused: no track
    detector.vets = lambda box: True
    assert ids(run(p, 1)[0]) == [1]


def test_the_detection_that_confirms_a_new_face_is_vetted_too():
    # A patch the verifier passed at its first detection (on the portrait video: P 0.34), found again by the cascade
    # on a box the verifier refuses (P 0.02): not confirmed by it, not shown; a vetted detection confirms it.
    p, detector, follower, _ = scripted(confirm=2, detect_every=10)
    detector.full = [FACE]
    assert run(p, 0)[0].faces == [] and detector.vetted() == [FACE]
    follower.at[1] = FACE
    found = FACE.shifted(4, 2)
    detector.full, detector.near = [], [found]
    detector.vets = lambda box: box != found
    assert [r.faces for r in run(p, 1, 3)] == [[], [], []]  # looked at again, vetted, refused
    assert detector.vetted()[1:] == [found] * 3 and len(detector.looks(fine=False)) == 3
    detector.vets = lambda box: True
    (result,) = run(p, 4)
    assert ids(result) == [1] and face_of(result, 1).box == found
    # Once shown, its detections are not vetted again (frame 10: a full detection finds it).
    detector.vets, detector.full = (lambda box: False), [found]
    assert [ids(r) for r in run(p, 5, 6)] == [[1]] * 6 and len(detector.vetted()) == 5
    assert detector.calls.count(("detect",)) == 2 and p.tracker.tracks[0].undetected == 0


# On a face shown (IoU with where it heads by the threshold, or half of the detection's box on it): no vetting.
@pytest.mark.parametrize("face, found, vetted", [
    (Box(50, 70, 130, 80), Box(120, 70, 130, 80), False),  # IoU 0.3 (a share of 0.46 of either box)
    (Box(50, 70, 130, 80), Box(121, 70, 130, 80), True),  # IoU 0.2935
    (FACE, Box(160, 70, 40, 40), False), (FACE, Box(161, 70, 40, 40), True),  # half of it on the face (IoU 0.11)
])
def test_a_detection_on_a_tracked_face_is_not_vetted(face, found, vetted):
    p, detector, follower, _ = scripted(confirm=1, detect_every=1)
    detector.full = [face]
    run(p, 0)
    follower.at[1] = face
    detector.vets = lambda box: False
    detector.full = [found]
    (result,) = run(p, 1)
    assert detector.vetted()[1:] == ([found] if vetted else [])
    if found.w == 130:  # the track takes the detection if it is kept
        assert face_of(result, 1).box == (face if vetted else found)


def test_a_detection_where_a_face_went_out_of_sight_brings_it_back_unvetted():
    p, detector, _, _ = scripted(confirm=1, detect_every=1, max_missed=1, coast=0, remember=48)
    detector.full = [FACE]
    run(p, 0)
    detector.full = []
    assert [ids(r) for r in run(p, 1, 3)] == [[], [], []]
    assert p.tracker.tracks == [] and len(p.tracker.lost) == 1
    detector.vets = lambda box: False
    detector.full = [FACE.shifted(5, 5)]
    assert ids(run(p, 4)[0]) == [1]
    assert detector.vetted() == [FACE]  # only the very first detection was vetted


def test_a_change_inside_a_tracked_face_is_no_motion_to_look_at():
    """The real change detector is told where the tracked faces are: a face that changes is followed, not looked at
    as motion (while the same change elsewhere is)."""
    p, detector, _ = pipeline(confirm=1, detect_every=10)
    p.follower = Placed()
    scene = Scene()
    detector.full = [FACE]
    p.process(frame_of(0, scene.picture({"ann": FACE})))
    p.follower.at[1] = FACE
    result = p.process(frame_of(1, scene.picture({"bob": FACE})))  # another look in the face's box
    assert detector.looks() == [] and not result.full_detection  # no motion, and no cut
    p.process(frame_of(2, scene.picture({"bob": FACE, "cid": Box(230, 20, 60, 60)})))
    assert len(detector.looks()) == 1


def _cut_scene(detect_every: int = 10, remember: int = 0):
    """A face on one backdrop for three frames; the real follower and change detector."""
    p, detector, _ = pipeline(confirm=1, detect_every=detect_every, remember=remember)
    scene = Scene(0)
    detector.full = [FACE]
    for i in range(3):
        assert ids(p.process(frame_of(i, scene.picture({"ann": FACE})))) == [1]
    return p, detector


def test_across_a_cut_a_face_found_again_keeps_its_id():
    p, detector = _cut_scene()
    moved = Box(200, 120, 80, 80)  # far from where it was, on another backdrop
    detector.full = [Box(20, 20, 80, 80), moved]
    result = p.process(frame_of(3, Scene(1).picture({"ann": moved, "bob": Box(20, 20, 80, 80)})))
    assert result.full_detection
    assert face_of(result, 1).box.iou(moved) > 0.9  # where its template matches the detection
    assert ids(result) == [1, 2]


def test_across_a_cut_a_face_not_found_again_ends_and_no_other_takes_its_id():
    """The new picture has another face where the old one was: a new track, not the old face followed onto it."""
    p, detector = _cut_scene()
    detector.full = [FACE]
    result = p.process(frame_of(3, Scene(1).picture({"bob": FACE})))
    assert result.full_detection and ids(result) == [2]


@pytest.mark.parametrize("cut", [False, True])
def test_a_face_out_of_sight_comes_back_with_its_id_unless_a_cut_came_between(cut):
    p, detector = _cut_scene(remember=48)
    detector.full = []
    for i in range(3, 3 + 12):  # nothing places it: out of sight after max_missed frames
        p.process(frame_of(i, Scene(0).picture({})))
    assert p.tracker.tracks == [] and len(p.tracker.lost) == 1
    detector.full = [FACE]
    after = Scene(1).picture({"bob": FACE}) if cut else Scene(0).picture({"ann": FACE})
    shown = [ids(p.process(frame_of(i, after))) for i in range(15, 21)]
    assert next(s for s in shown if s) == ([2] if cut else [1])


def test_across_a_cut_a_face_is_kept_only_on_a_close_match():
    """Half the old face and half another (correlating about 0.7 with it, enough to be followed within a scene) is
    not the old face found again across a cut: that needs CUT_MATCH (0.8)."""
    p, detector = _cut_scene()
    scene = Scene(1)
    ann, bob = scene.picture({"ann": FACE}), scene.picture({"bob": FACE})
    blend = ((ann.astype(np.float32) + bob) / 2).astype(np.uint8)
    score = cv2.matchTemplate(cv2.resize(blend[70:150, 100:180], (32, 32), interpolation=cv2.INTER_AREA),
                              cv2.resize(ann[70:150, 100:180], (32, 32), interpolation=cv2.INTER_AREA),
                              cv2.TM_CCOEFF_NORMED).max()
    assert 0.6 < score < 0.8
    detector.full = [FACE]
    result = p.process(frame_of(3, blend))
    assert result.full_detection and ids(result) == [2]


@settings(max_examples=20, deadline=None)
@given(every=st.integers(1, 4), faces=st.integers(1, 3), frames=st.integers(1, 9))
def test_each_face_is_classified_when_new_and_then_every_classify_every_frames_staggered(every, faces, frames):
    p, detector, follower, _ = scripted(confirm=1, detect_every=1, classify_every=every)
    classifier = p.classifier
    boxes = [Box(10 + 100 * i, 70, 80, 80) for i in range(faces)]
    detector.full = boxes
    classified: dict[int, list[int]] = {}
    batches, previous = 0, {}
    for i in range(frames):
        picture = BLANK.copy()
        for k, b in enumerate(boxes):  # every face a little brighter in every frame: a new crop reads otherwise
            picture[b.y : b.y + b.h, b.x : b.x + b.w] = 30 + 20 * i + 5 * k
        result = p.process(frame_of(i, picture))
        assert ids(result) == list(range(1, faces + 1))
        now = [f.track for f in result.faces if f.classified]
        for t in now:
            classified.setdefault(t, []).append(i)
        batches += bool(now)
        assert len(classifier.batches) == batches  # the faces due in a frame are classified in one batch
        assert not now or len(classifier.batches[-1]) == len(now)
        for k, f in enumerate(result.faces):
            if f.classified:
                assert f.raw.probabilities[1] == pytest.approx((30 + 20 * i + 5 * k) / 255)
            else:  # an earlier frame's result, and the smoothed emotion it left
                assert f.raw == previous[f.track].raw and f.emotion == previous[f.track].emotion
        previous = {f.track: f for f in result.faces}
    for seen in classified.values():
        assert seen[0] == 0  # at once when new
        assert all(b - a == every for a, b in zip(seen[1:], seen[2:]))  # then every `every` frames
        assert len(seen) == 1 + len(range(seen[1] if len(seen) > 1 else frames, frames, every))
        assert (seen + [frames])[1] <= every  # the first of these within `every` frames
    if every > 1 and faces > 1 and frames > every:  # staggered: two faces are not classified in the same frame
        assert set(classified[1][1:]).isdisjoint(classified[2][1:])


def test_smoothed_emotion_follows_the_classifications_and_raw_is_the_latest():
    p, detector, _ = pipeline(confirm=1, detect_every=1, classify_every=1, smoothing=0.3, hysteresis=0.0)
    scene = Scene()
    detector.full = [FACE]
    dark, bright = scene.picture({"ann": FACE}), scene.picture({"ann": FACE})
    bright[70:150, 100:180] = 230
    dark[70:150, 100:180] = 30
    first = p.process(frame_of(0, dark)).faces[0]
    assert first.raw.label == "calm" and first.emotion == first.raw
    later = p.process(frame_of(1, bright)).faces[0]  # 1/15 s later: the smoothed emotion moves part of the way
    assert later.raw.label == "glad"
    assert first.emotion.probabilities[1] < later.emotion.probabilities[1] < later.raw.probabilities[1]


def test_a_still_shows_every_face_at_once_unsmoothed_and_forgets_the_video_before():
    p, detector, _ = pipeline(confirm=3, classify_every=5, detect_every=10)
    scene = Scene()
    detector.full = [FACE]
    p.process(frame_of(0, scene.picture({"ann": FACE})))  # a video frame: one detection, not shown yet
    assert len(p.tracker.tracks) == 1
    picture = scene.picture({"ann": FACE, "bob": Box(200, 20, 80, 80)})
    picture[70:150, 100:180] = 230
    detector.full = [FACE, Box(200, 20, 80, 80)]
    result = p.process(frame_of(1, picture), still=True)
    assert ids(result) == [2, 3]  # the video's track was forgotten; ids keep counting
    assert result.full_detection and all(f.classified and f.emotion == f.raw for f in result.faces)
    assert face_of(result, 2).raw.label == "glad"
    assert len(p.smoother) == 0  # nothing smoothed
    again = p.process(frame_of(2, picture), still=True)
    assert ids(again) == [4, 5] and all(f.classified for f in again.faces)


def test_faces_found_on_a_low_resolution_stream_are_placed_and_cropped_on_the_full_picture():
    """A camera's lores stream: detection on `gray` (here 320 x 240), boxes reported and faces cropped in `bgr`
    (640 x 360: 2x across, 1.5x down, as a 4:3 stream beside a 16:9 picture)."""
    p, detector, _ = pipeline(confirm=1, detect_every=1)
    scene = Scene()
    gray = scene.picture({"ann": FACE})
    big = cv2.resize(gray, (2 * W, 3 * H // 2), interpolation=cv2.INTER_NEAREST)
    big[85:245, 200:360] = 20  # dark in the full picture (the face's square crop), though not in the stream
    big[85:245, 360:361] = 250  # one pixel column past the face's right edge: not in its crop
    detector.full = [FACE]
    (face,) = p.process(frame_of(0, gray, cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))).faces
    assert face.box == Box(200, 105, 160, 120)
    assert face.raw.probabilities[1] == pytest.approx(20 / 255, abs=1e-6)


def test_faces_are_cropped_with_the_models_margin():
    p, detector, classifier = pipeline(confirm=1, detect_every=1)
    classifier.preprocessing = Preprocessing(size=16, margin=0.5)
    picture = np.full((H, W), 255, np.uint8)
    picture[70:150, 100:180] = 0  # a dark face on white: with half its side around it, a quarter of the crop
    detector.full = [FACE]
    (face,) = p.process(frame_of(0, picture)).faces
    assert face.raw.probabilities[1] == pytest.approx(0.75, abs=0.02)


def test_a_face_placed_outside_the_full_picture_is_not_reported_and_the_others_are():
    p, detector, _ = pipeline(confirm=1, detect_every=1, leave_below=0.0)
    detector.full = [Box(-100, 0, 80, 80), FACE]  # the first face wholly outside: left, but kept when leave_below 0
    (result,) = run(p, 0)
    assert [f.box for f in result.faces] == [FACE] and len(p.tracker.tracks) == 2


def test_reset_forgets_faces_and_starts_the_schedule_again():
    p, detector, _ = pipeline(confirm=2, detect_every=4)
    scene = Scene()
    picture = scene.picture({"ann": FACE})
    detector.full = [FACE]
    results = [p.process(frame_of(i, picture)) for i in range(6)]
    assert [r.full_detection for r in results] == [True, False, False, False, True, False]
    assert ids(results[-1]) == [1]
    p.reset()
    assert p.tracker.tracks == [] and len(p.smoother) == 0
    detector.full = []
    results = [p.process(frame_of(i, picture)) for i in range(6, 11)]
    # The first frame after a reset has nothing to compare with: a cut, so a full detection; then every 4 frames.
    assert [r.full_detection for r in results] == [True, False, False, False, True]
    assert all(r.faces == [] for r in results)


def test_reset_gives_motion_looks_their_whole_budget_again():
    p, detector, _, changes = scripted(detect_every=10, motion_budget=1.0)
    for i in range(3):
        changes.queue = [Change(i == 0, Box(0, 0, W, H) if i else None)]
        run(p, i)
    assert len(detector.looks()) == 1  # frame 1: the budget is spent
    p.reset()
    changes.queue = [Change(False, Box(0, 0, W, H))]  # motion, where the real detector would report a cut
    run(p, 3)
    assert len(detector.looks()) == 2


# Each option's bounds: the value at the bound is taken, one step past it refused with a message naming the option.
@pytest.mark.parametrize("name, good, bad", [
    ("detect_every", 1, 0), ("confirm", 1, 0), ("classify_every", 1, 0), ("detections_missed", 1, 0),
    ("coast", 0, -1), ("coast", 10, 11),  # 0 .. max_missed (10)
    ("cut_below", -1.0, -1.01), ("cut_below", 1.0, 1.01),
    ("leave_below", 0.0, -0.01), ("leave_below", 1.0, 1.01),
    ("motion", 0.0, -0.01), ("motion", 10.0, 10.01),
    ("follow_score", -0.99, -1.0), ("follow_score", 0.99, 1.0),
    ("remember", 0, -1), ("confirm_score", 0.0, -0.01), ("motion_budget", 0.0, -0.01),
])
def test_options_are_checked_at_their_bounds(name, good, bad):
    PipelineOptions(**{name: good}).check()
    with pytest.raises(ValueError, match=f"^{name} must be .*got {bad}$"):
        PipelineOptions(**{name: bad}).check()
    with pytest.raises(ValueError, match=name):
        pipeline(**{name: bad})


def test_coast_is_bounded_by_max_missed():
    PipelineOptions(coast=3, max_missed=3).check()
    with pytest.raises(ValueError, match=r"coast must be between 0 and max_missed \(3\), got 4"):
        PipelineOptions(coast=4, max_missed=3).check()


def test_a_strong_detection_is_shown_at_once_and_a_weak_one_waits_for_confirmation():
    p, detector, _, _ = scripted(confirm=3, confirm_score=4.0)
    detector.full = [Box(10, 10, 80, 80, score=4.0), Box(200, 10, 80, 80, score=3.9)]
    (result,) = run(p, 0)
    assert ids(result) == [1]


def test_a_new_face_not_confirmed_within_detect_every_frames_ends():
    p, detector, follower, _ = scripted(confirm=2, detect_every=3, max_missed=10)
    detector.full = [FACE]
    run(p, 0)
    follower.at[1] = FACE
    detector.full = []
    run(p, 1, 2)
    assert [t.id for t in p.tracker.tracks] == [1]
    run(p, 3)  # the full detection at frame 3 does not find it either: 3 updates unconfirmed
    assert p.tracker.tracks == []


def test_the_iou_threshold_is_the_trackers():
    """A detection overlapping a track by 0.35 joins it at the default threshold (0.3), not at 0.4."""
    for threshold, joined in ((0.3, True), (0.4, False)):
        p, detector, follower, _ = scripted(confirm=1, detect_every=1, iou_threshold=threshold)
        face = Box(50, 70, 130, 80)
        detector.full = [face]
        run(p, 0)
        near = Box(112, 70, 130, 80)  # IoU 68 / 192 = 0.354
        detector.full = [near]
        (result,) = run(p, 1)
        assert (face_of(result, 1).box == near) is joined


def test_a_followed_face_ends_after_detections_missed_full_detections_without_it():
    """Followed in every frame but never found again by the detector: gone once more than
    max(max_missed, detections_missed x detect_every) frames passed since it was last found."""
    for detections_missed, max_missed, frames in ((3, 2, 6), (1, 4, 4)):
        p, detector, follower, _ = scripted(confirm=1, detect_every=2, detections_missed=detections_missed,
                                            max_missed=max_missed, coast=0)
        detector.full = [FACE]
        run(p, 0)
        follower.at[1], detector.full = FACE, []
        shown = [bool(r.faces) for r in run(p, 1, frames + 1)]
        assert shown == [True] * frames + [False], (detections_missed, max_missed)


def test_a_face_nothing_places_is_shown_for_coast_frames_then_ends_after_max_missed():
    p, detector, _, _ = scripted(confirm=1, detect_every=1, coast=2, max_missed=4)
    detector.full = [FACE]
    run(p, 0)
    detector.full = []
    results = run(p, 1, 5)
    assert [ids(r) for r in results] == [[1], [1], [], [], []]
    assert [len(p.tracker.tracks)] == [0]
    assert face_of(results[0], 1).box == FACE  # at its predicted box (it stood still)


def test_labels_are_the_classifiers():
    p, _, classifier = pipeline()
    assert p.labels == LABELS == classifier.labels


def test_nothing_is_kept_of_faces_that_ended():
    """A daemon runs for months: the follower's templates, the smoother's states and the latest classifications are
    kept for live tracks only, whether a face ended by leaving, by not being placed, or at a cut."""
    p, detector, _ = pipeline(confirm=1, detect_every=1, max_missed=1, coast=0, remember=0)
    scene = Scene(0)

    def kept() -> set[int]:
        live = {t.id for t in p.tracker.tracks}
        assert set(p.follower._templates) <= live and set(p._raw) <= live
        assert len(p.smoother) <= len(live)
        return live

    detector.full = [FACE, Box(0, 0, 80, 80)]
    p.process(frame_of(0, scene.picture({"ann": FACE, "bob": Box(0, 0, 80, 80)})))
    assert kept() == {1, 2} and len(p.smoother) == 2
    detector.full = [FACE, Box(-41, 0, 80, 80)]  # bob leaves: 39 of its 80 columns left inside
    p.process(frame_of(1, scene.picture({"ann": FACE, "bob": Box(-41, 0, 80, 80)})))
    assert kept() == {1}
    detector.full = [Box(200, 100, 80, 80)]  # a cut: ann is not found again, cid is new
    p.process(frame_of(2, Scene(1).picture({"cid": Box(200, 100, 80, 80)})))
    assert kept() == {3} and len(p.smoother) == 1
    detector.full = []
    for i in range(3, 6):  # cid is not placed any more
        p.process(frame_of(i, Scene(1).picture({})))
    assert kept() == set() and len(p.smoother) == 0


def test_options_reach_the_change_detector_and_the_smoother():
    scene = Scene(0)
    for cut_below, cut in ((0.6, True), (-1.0, False)):  # -1: never a cut
        p, detector, _ = pipeline(cut_below=cut_below, motion=0.0)
        for i in range(2):
            p.process(frame_of(i, scene.picture({})))
        assert p.process(frame_of(2, Scene(1).picture({}))).full_detection is cut
        assert detector.looks() == []  # motion 0: never looked for
    p, detector, _ = pipeline(confirm=1, detect_every=1, smoothing=0.0, hysteresis=0.5)
    detector.full = [FACE]
    for i, level in enumerate((40, 160)):  # calm (0.84, 0.16), then glad by 0.25 (0.37, 0.63): within 0.5
        picture = BLANK.copy()
        picture[70:150, 100:180] = level
        (face,) = p.process(frame_of(i, picture)).faces
    assert face.raw.label == "glad" and face.emotion.label == "calm"
    assert face.emotion.probabilities == face.raw.probabilities  # smoothing 0: the latest as it is


def test_between_full_detections_a_moving_face_is_followed_by_the_look_taken_at_its_detection():
    """The real follower: the template is taken where the detector found the face, and renewed only by the detector
    (a template taken from a followed or coasting box drifts onto the background)."""
    p, detector, _ = pipeline(confirm=1, detect_every=10)
    scene = Scene(0)
    detector.full = [FACE]
    for i in range(10):
        box = FACE.shifted(5 * i, 2 * i)
        (face,) = p.process(frame_of(i, scene.picture({"ann": box}))).faces
        assert face.box.iou(box) > 0.85, i
        detector.full = []
