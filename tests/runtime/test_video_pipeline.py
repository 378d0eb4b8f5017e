"""The whole pipeline on a real mp4 of FER faces moving at known positions."""

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from edge_runtime.boxes import Box
from edge_runtime.classifier import Classifier
from edge_runtime.detector import FaceDetector, HaarDetector
from edge_runtime.pipeline import FrameResult, Pipeline, PipelineOptions
from edge_runtime.preprocess import preprocess_faces
from edge_runtime.sources import VideoSource

MATCH_IOU = 0.4
DECISIVE = 0.2


@dataclass
class Run:
    results: list[FrameResult]
    # Per frame: the classifier's probabilities for each known face, cropped at its known box.
    known: list[np.ndarray]


def run_pipeline(video, model, options: PipelineOptions, detector: FaceDetector | None = None) -> Run:
    classifier = Classifier(model)
    pipeline = Pipeline(detector or HaarDetector(), classifier, options)
    results, known = [], []
    with VideoSource(video) as source:
        for frame in source:
            results.append(pipeline.process(frame))
            known.append(frame)
    return Run(results, known)


def matches(result: FrameResult, placements):
    """(known face index, detected Face) pairs whose boxes overlap enough."""
    for p in placements:
        best = max(result.faces, key=lambda f, b=p.box: b.iou(f.box), default=None)
        if best is not None and p.box.iou(best.box) >= MATCH_IOU:
            yield p, best


def _run_with_known(scene_video, model) -> Run:
    path, faces, truth = scene_video
    run = run_pipeline(path, model, PipelineOptions())
    classifier = Classifier(model)
    run.known = [classifier.predict(preprocess_faces(frame.gray, [p.box.as_list() for p in placements]))
                 for frame, placements in zip(run.known, truth)]
    return run


@pytest.fixture(scope="module")
def default_run(scene_video, model):
    return _run_with_known(scene_video, model)


@pytest.fixture(scope="module")
def judged_run(scene_video, judge_model):
    return _run_with_known(scene_video, judge_model)


def recall(run: Run, truth) -> float:
    found = sum(len(list(matches(r, t))) for r, t in zip(run.results, truth))
    return found / sum(len(t) for t in truth)


def test_every_frame_of_the_video_is_processed(default_run, scene_video):
    _, _, truth = scene_video
    assert [r.index for r in default_run.results] == list(range(len(truth)))
    times = [r.time for r in default_run.results]
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)


def test_detection_recall_against_known_boxes(default_run, scene_video):
    _, _, truth = scene_video
    assert recall(default_run, truth) >= 0.95
    false = sum(len(r.faces) - len(list(matches(r, t))) for r, t in zip(default_run.results, truth))
    assert false <= len(truth) // 20


def test_detecting_every_n_frames_keeps_the_recall_of_detecting_every_frame(default_run, scene_video, model):
    path, _, truth = scene_video
    every_frame = run_pipeline(path, model, PipelineOptions(detect_every=1))
    assert PipelineOptions().detect_every > 1
    assert recall(default_run, truth) >= recall(every_frame, truth) - 0.02
    full = [r.full_detection for r in default_run.results]
    assert sum(full) == -(-len(full) // PipelineOptions().detect_every)


def test_track_ids_are_stable_and_distinct(default_run, scene_video):
    _, faces, truth = scene_video
    ids: dict[int, set[int]] = {}
    for result, placements in zip(default_run.results, truth):
        for p, face in matches(result, placements):
            ids.setdefault(p.face, set()).add(face.track)
    assert sorted(ids) == list(range(len(faces)))
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len(set.union(*ids.values())) == len(faces)


def test_labels_agree_with_direct_classification_of_the_known_crops(judged_run, scene_video):
    """The pipeline's crop (detector or follower box, the model's margin) gives what the model says on
    the face's known box. On a face where the model itself hesitates between two classes (top two
    within DECISIVE) a pixel tips the label, so labels are compared where it is decisive, and
    probabilities everywhere."""
    _, _, truth = scene_video
    decisive = same_label = nearest_is_own = total = 0
    distance = []
    for result, placements, known in zip(judged_run.results, truth, judged_run.known):
        for p, face in matches(result, placements):
            if not face.classified:
                continue
            raw, own = np.array(face.raw.probabilities), known[p.face]
            total += 1
            distance.append(np.abs(raw - own).sum())
            # Of all faces in the frame, the crop the pipeline classified is closest to its own.
            nearest_is_own += int(np.argmin(np.abs(known - raw).sum(1)) == p.face)
            top2 = np.sort(own)[-2:]
            if top2[1] - top2[0] >= DECISIVE:
                decisive += 1
                same_label += int(np.argmax(raw) == np.argmax(own))
    # Each face is classified every classify_every frames.
    assert total >= 0.95 * sum(len(t) for t in truth) / PipelineOptions().classify_every
    # Enough decisive faces for the label comparison to mean something: the judge fer_cnn of 2026-11-21 was
    # decisive on 45 of 69, vgg_c2 (softer probabilities) on 24 of 69, vgg_c3r (shipped 2026-12-01) on 32 of
    # 69: each kept every decisive label.
    assert decisive >= 0.3 * total, (decisive, same_label, total)
    assert same_label / decisive >= 0.9
    assert nearest_is_own / total >= 0.8
    assert np.mean(distance) <= 0.35


def test_smoothing_reduces_label_changes(scene_video, int8_model):
    # Always the test model: its single-frame labels are known to flip on this video, so the
    # test keeps its teeth whatever model ships.
    path, _, _ = scene_video
    run = run_pipeline(path, int8_model, PipelineOptions())
    raw: dict[int, list[str]] = {}
    shown: dict[int, list[str]] = {}
    for result in run.results:
        for face in result.faces:
            raw.setdefault(face.track, []).append(face.raw.label)
            shown.setdefault(face.track, []).append(face.emotion.label)

    def changes(labels: dict[int, list[str]]) -> int:
        return sum(a != b for seq in labels.values() for a, b in zip(seq, seq[1:]))

    # The video's noise and lighting flicker make single-frame labels flip; smoothing must calm them.
    assert changes(raw) >= 5
    assert changes(shown) <= changes(raw) // 3


def test_another_detector_plugs_in(scene_video, model):
    """A detector is anything with detect(gray) -> boxes; here a bare OpenCV cascade of another kind."""
    path, _, truth = scene_video

    class Alt2Cascade(FaceDetector):
        def __init__(self):
            self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")

        def detect(self, gray):
            rects = self.cascade.detectMultiScale(gray, 1.1, 4, minSize=(48, 48))
            return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in rects]

    run = run_pipeline(path, model, PipelineOptions(), Alt2Cascade())
    assert recall(run, truth) >= 0.9
