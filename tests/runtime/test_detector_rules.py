"""The Haar detector's rules, each at its edge: the option bounds and their messages, a bad cascade file refused
with a sentence naming it, a region look's scaling, sizes and frame edges (boxes checked against hand-computed
ones, the cascade's answers scripted), what the verifier and the second cascade are asked, the cascade's call,
and the base class's and EitherDetector's region looks. tests/runtime/test_detector.py runs the real cascade."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.detector import (
    DEFAULT_CASCADE,
    DetectorError,
    EitherDetector,
    FaceDetector,
    HaarDetector,
    HaarOptions,
    _resize,
    cascade_path,
    check_gray,
    load_verifier,
)
from edge_runtime.verifier import SHIPPED_VERIFIER

BUNDLED = Path(cv2.data.haarcascades)
# A 480x640 frame of noise: any crop or resize of it is told apart from another by its pixels.
FRAME = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)


# --- HaarOptions.check ---------------------------------------------------------------------------------------

BOUNDS = [  # field, a value just past its bound (refused, with this message), the bound itself (accepted)
    ("scale_factor", 1.0, "scale_factor must be > 1 (got 1.0)", 1.0 + 1e-9),
    ("min_neighbors", -1, "min_neighbors must be >= 0 (got -1)", 0),
    ("min_size", 0, "min_size must be >= 1 pixel (got 0)", 1),
    ("verify_neighbors", -1, "verify_neighbors must be >= 0 (got -1)", 0),
    ("verify_threshold", -0.01, "verify_threshold must be between 0 and 1 (got -0.01)", 0.0),
    ("verify_threshold", 1.01, "verify_threshold must be between 0 and 1 (got 1.01)", 1.0),
    ("pad", -0.01, "pad must be between 0 and 1 (got -0.01)", 0.0),
    ("pad", 1.01, "pad must be between 0 and 1 (got 1.01)", 1.0),
    ("pad_from", -0.01, "pad_from must be between 0 and 1 (got -0.01)", 0.0),
    ("pad_from", 1.01, "pad_from must be between 0 and 1 (got 1.01)", 1.0),
    ("detect_width", -1, "detect_width must be >= 0 (got -1)", 0),
]


@pytest.mark.parametrize("field, bad, message, bound", BOUNDS, ids=[f"{b[0]}={b[1]}" for b in BOUNDS])
def test_each_option_bound_refuses_the_value_past_it_and_takes_the_bound(field, bad, message, bound):
    with pytest.raises(DetectorError) as refused:
        HaarOptions(**{field: bad}).check()
    assert str(refused.value) == f"bad Haar options: {message}"
    HaarOptions(**{field: bound}).check()


def test_every_bad_option_is_named_in_one_message():
    bad = HaarOptions(scale_factor=0.9, min_neighbors=-2, min_size=0, verify_neighbors=-1, verify_threshold=2.0,
                      pad=-1.0, pad_from=3.0, detect_width=-8)
    with pytest.raises(DetectorError) as refused:
        bad.check()
    assert str(refused.value) == (
        "bad Haar options: scale_factor must be > 1 (got 0.9); min_neighbors must be >= 0 (got -2); "
        "min_size must be >= 1 pixel (got 0); verify_neighbors must be >= 0 (got -1); "
        "verify_threshold must be between 0 and 1 (got 2.0); pad must be between 0 and 1 (got -1.0); "
        "pad_from must be between 0 and 1 (got 3.0); detect_width must be >= 0 (got -8)")
    with pytest.raises(DetectorError, match="^bad Haar options: scale_factor"):
        HaarDetector(HaarOptions(scale_factor=1.0))  # the detector checks its options before anything else


# --- the cascade file -------------------------------------------------------------------------------------------

def test_cascade_paths(tmp_path, monkeypatch):
    assert cascade_path(None) == BUNDLED / DEFAULT_CASCADE
    assert cascade_path("haarcascade_frontalface_alt2.xml") == BUNDLED / "haarcascade_frontalface_alt2.xml"
    # A bare name of a file in the working folder is that file, not the bundled one of the same name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.xml").write_bytes((BUNDLED / DEFAULT_CASCADE).read_bytes())
    (tmp_path / DEFAULT_CASCADE).write_bytes(b"")
    assert cascade_path("mine.xml") == Path("mine.xml")
    assert cascade_path(DEFAULT_CASCADE) == Path(DEFAULT_CASCADE)
    # A path into a folder is kept as given, found or not: the error then names what the user wrote.
    nested = "cascades/haarcascade_frontalface_alt2.xml"
    assert cascade_path(nested) == Path(nested)
    assert cascade_path(tmp_path / "mine.xml") == tmp_path / "mine.xml"


def test_a_bad_cascade_file_is_refused_with_a_sentence_naming_it(tmp_path):
    missing = tmp_path / "nowhere.xml"
    folder = tmp_path / "folder.xml"
    folder.mkdir()
    broken = tmp_path / "broken.xml"
    broken.write_text("not xml at all <<<")
    empty = tmp_path / "empty.xml"
    empty.write_text('<?xml version="1.0"?>\n<opencv_storage>\n</opencv_storage>\n')
    for path, problem in ((missing, "Haar cascade file not found"), (folder, "Haar cascade file not found"),
                          (broken, "not an OpenCV cascade (the XML could not be parsed)"),
                          (empty, "not an OpenCV cascade (the XML could not be loaded)")):
        with pytest.raises(DetectorError) as refused:
            HaarDetector(HaarOptions(cascade=str(path), verify_model=""))
        assert str(refused.value) == f"{path}: {problem}"


def test_the_detector_takes_its_options_and_the_cascade_window():
    default = HaarDetector()
    assert default.options == HaarOptions() and default.path == BUNDLED / DEFAULT_CASCADE and default.window == 24
    assert default.second is None and default.verifier.path == SHIPPED_VERIFIER
    # A cascade with a 36x18 window: the least face side the detector tries is its longer side.
    smile = HaarDetector(HaarOptions(cascade="haarcascade_smile.xml", min_size=30, verify_model="",
                                     verify_threshold=0.35))
    assert smile.options.min_size == 30 and smile.path == BUNDLED / "haarcascade_smile.xml"
    assert smile.window == 36 and smile.verifier is None
    assert HaarDetector(HaarOptions(verify_threshold=0.35)).verifier.threshold == 0.35


def test_the_second_cascade_is_built_from_the_verify_options_alone():
    detector = HaarDetector(HaarOptions(verify_cascade="haarcascade_frontalface_alt2.xml", verify_neighbors=2,
                                        min_neighbors=6, min_size=40, verify_model=""))
    second = detector.second
    assert second.path == BUNDLED / "haarcascade_frontalface_alt2.xml"
    assert second.options == HaarOptions(cascade="haarcascade_frontalface_alt2.xml", min_neighbors=2, min_size=40,
                                         verify_cascade="", verify_neighbors=2, verify_model="")
    assert second.second is None and second.verifier is None
    # With the face verifier on, the first cascade has it and the second does not.
    verified = HaarDetector(HaarOptions(verify_cascade="haarcascade_frontalface_alt2.xml"))
    assert verified.verifier is not None and verified.second.verifier is None


def test_load_verifier(tmp_path):
    assert load_verifier("", 0.5) is None
    shipped = load_verifier(None, 0.3)
    assert (shipped.path, shipped.threshold) == (SHIPPED_VERIFIER, 0.3)
    copy = tmp_path / "verifier.tflite"
    shutil.copy(SHIPPED_VERIFIER, copy)
    shutil.copy(SHIPPED_VERIFIER.with_suffix(".json"), copy.with_suffix(".json"))
    assert load_verifier(str(copy), 0.4).path == copy
    with pytest.raises(DetectorError, match=rf"^face verifier: {tmp_path / 'nope.tflite'}: model file not found"):
        load_verifier(str(tmp_path / "nope.tflite"), 0.2)
    copy.with_suffix(".json").unlink()
    with pytest.raises(DetectorError, match=r"^face verifier: .*verifier\.json: metadata file missing"):
        load_verifier(str(copy), 0.2)


# --- full-frame detection and region looks: the scale, sizes and edges asked of _find, and boxes mapped back --

class ScriptedFind(HaarDetector):
    """The bundled cascade, with the passes' answer (`boxes`, in the shrunk picture's pixels) scripted and every
    call to `_find` recorded."""

    def __init__(self, boxes=(), **options):
        super().__init__(HaarOptions(verify_model="", **options))
        self.boxes = list(boxes)
        self.calls = []

    def _find(self, gray, min_side, max_side, edges, frame_side):
        self.calls.append((gray, min_side, max_side, edges, frame_side))
        return list(self.boxes)


def shrunk(gray, width, height):
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)


def test_full_frame_detection_on_the_shrunk_frame_and_boxes_mapped_back():
    found = [Box(10, 20, 30, 40, 2.5), Box(300, 230, 40, 40, 1.0), Box(-5, -3, 20, 20, 0.5)]
    detector = ScriptedFind(found, min_size=100)  # detect_width 320: half size
    boxes = detector.detect(FRAME)
    ((small, min_side, max_side, edges, frame_side),) = detector.calls
    assert np.array_equal(small, shrunk(FRAME, 320, 240))
    assert (min_side, max_side, edges, frame_side) == (50, 0, (True,) * 4, 240)
    # Twice the size in the frame, cut to it; each keeps its score.
    assert [b.as_list() for b in boxes] == [[20, 40, 60, 80], [600, 460, 40, 20], [0, 0, 30, 34]]
    assert [b.score for b in boxes] == [2.5, 1.0, 0.5]


@pytest.mark.parametrize("options, width, min_side, box", [
    (dict(min_size=30), 320, 24, [80, 80, 120, 120]),  # 15 at half size: the cascade's window is the least it tries
    (dict(min_size=30, detect_width=0), 640, 30, [40, 40, 60, 60]),  # never shrunk
    (dict(min_size=30, detect_width=1280), 640, 30, [40, 40, 60, 60]),  # wider than the frame: not enlarged
    (dict(min_size=60, detect_width=480), 480, 45, [53, 53, 80, 80]),  # three quarters
])
def test_full_frame_detection_scale(options, width, min_side, box):
    detector = ScriptedFind([Box(40, 40, 60, 60)], **options)
    (found,) = detector.detect(FRAME)
    ((small, least, _, _, frame_side),) = detector.calls
    height = width * 3 // 4
    assert small is FRAME if width == 640 else np.array_equal(small, shrunk(FRAME, width, height))
    assert (least, frame_side) == (min_side, height)
    assert found.as_list() == box


def test_a_region_look_inside_the_frame_at_the_full_frame_scale():
    detector = ScriptedFind([Box(10, 10, 40, 40, 3.0)], min_size=60)
    (box,) = detector.detect_in(FRAME, Box(100, 50, 200, 150))
    ((small, min_side, max_side, edges, frame_side),) = detector.calls
    # The region shrunk by the frame's scale (320 / 640), not its own; no edge of it is the frame's.
    assert np.array_equal(small, shrunk(FRAME[50:200, 100:300], 100, 75))
    assert (min_side, max_side, edges, frame_side) == (30, 0, (False,) * 4, 240.0)
    assert box.as_list() == [120, 70, 80, 80] and box.score == 3.0


def test_a_region_look_past_the_top_left_corner():
    detector = ScriptedFind([Box(-4, 2, 40, 40)])
    (box,) = detector.detect_in(FRAME, Box(-30, -20, 200, 150))
    ((small, _, _, edges, _),) = detector.calls
    assert np.array_equal(small, shrunk(FRAME[0:130, 0:170], 85, 65))  # the part inside the frame
    assert edges == (True, True, False, False)
    assert box.as_list() == [0, 4, 72, 80]  # (-8, 4, 80, 80) cut at the frame's left edge


def test_a_region_look_past_the_bottom_right_corner():
    detector = ScriptedFind([Box(60, 30, 20, 20), Box(0, 0, 10, 10)])
    boxes = detector.detect_in(FRAME, Box(500, 400, 300, 200))
    ((small, _, _, edges, _),) = detector.calls
    assert np.array_equal(small, shrunk(FRAME[400:480, 500:640], 70, 40))
    assert edges == (False, False, True, True)
    assert [b.as_list() for b in boxes] == [[620, 460, 20, 20], [500, 400, 20, 20]]


def test_a_region_look_at_one_pixel_from_the_edges_is_not_at_them():
    detector = ScriptedFind()
    detector.detect_in(FRAME, Box(1, 1, 638, 478))
    detector.detect_in(FRAME, Box(0, 0, 640, 480))
    assert [c[3] for c in detector.calls] == [(False,) * 4, (True,) * 4]


@pytest.mark.parametrize("sizes, min_side, max_side", [
    (None, 40, 0),  # min_size 80, any size up
    ((40, 90), 40, 45),  # the least size asked for is below min_size: min_size holds
    ((100, 162), 50, 81),
    ((120, 120), 60, 60),
])
def test_a_region_look_tries_the_sizes_asked_for_at_the_frame_scale(sizes, min_side, max_side):
    detector = ScriptedFind(min_size=80)
    detector.detect_in(FRAME, Box(100, 100, 300, 300), sizes)
    assert detector.calls[0][1:3] == (min_side, max_side)


@pytest.mark.parametrize("options, fine", [(dict(), True), (dict(detect_width=0), False),
                                           (dict(detect_width=1280), False)])
def test_a_fine_region_look_or_an_unshrunk_detector_looks_at_full_resolution(options, fine):
    detector = ScriptedFind([Box(-10, 30, 50, 50)], min_size=60, **options)
    (box,) = detector.detect_in(FRAME, Box(100, 50, 200, 150), fine=fine)
    detector.detect_in(FRAME, Box(100, 50, 200, 150), (70, 90), fine=fine)
    (small, min_side, max_side, edges, frame_side), sized = detector.calls
    assert np.array_equal(small, FRAME[50:200, 100:300])
    assert (min_side, max_side, edges, frame_side) == (60, 0, (False,) * 4, 480)
    assert sized[1:3] == (70, 90)
    assert box.as_list() == [90, 80, 50, 50]


SCRIPTED = ScriptedFind()


@settings(max_examples=40, deadline=None)
@given(x=st.integers(-300, 700), y=st.integers(-300, 500), w=st.integers(1, 900), h=st.integers(1, 700),
       fine=st.booleans(), data=st.data())
def test_any_region_look_sees_the_part_of_the_region_in_the_frame_and_answers_inside_it(x, y, w, h, fine, data):
    window = Box(x, y, w, h).clipped(640, 480)
    scale = 1.0 if fine else 0.5
    # The part of the region in the frame, at the scale of the look; at least a pixel each way.
    shape = (1, 1) if window is None else (max(1, round(window.h * scale)), max(1, round(window.w * scale)))
    # What the passes find lies in the picture they are given (_find clips the padded pass's finds to it).
    found = data.draw(st.lists(st.tuples(st.integers(0, shape[1] - 1), st.integers(0, shape[0] - 1)).flatmap(
        lambda p: st.tuples(st.just(p[0]), st.just(p[1]), st.integers(1, shape[1] - p[0]),
                            st.integers(1, shape[0] - p[1]))), max_size=4))
    SCRIPTED.boxes, SCRIPTED.calls = [Box(*b) for b in found], []
    boxes = SCRIPTED.detect_in(FRAME, Box(x, y, w, h), fine=fine)
    if window is None:
        assert boxes == [] and SCRIPTED.calls == []
        return
    ((small, _, _, edges, _),) = SCRIPTED.calls
    assert small.shape == shape
    assert edges == (x <= 0, y <= 0, x + w >= 640, y + h >= 480)
    assert len(boxes) == len(found)
    # Within the region's part in the frame, but for the pixel that mapping a half-size box back can add.
    slack = 0 if fine else 1
    for box in boxes:
        assert box.w > 0 and box.h > 0 and window.x <= box.x and window.y <= box.y
        assert box.x + box.w <= window.x + window.w + slack and box.y + box.h <= window.y + window.h + slack


def test_a_region_outside_the_frame_is_no_look():
    detector = ScriptedFind([Box(0, 0, 50, 50)])
    assert detector.detect_in(FRAME, Box(640, 0, 100, 100)) == []
    assert detector.detect_in(FRAME, Box(0, -100, 100, 100)) == []
    assert detector.calls == []


def test_a_region_look_wants_grayscale():
    with pytest.raises(ValueError, match="2-D uint8 grayscale"):
        ScriptedFind().detect_in(np.zeros((48, 48, 3), np.uint8), Box(0, 0, 48, 48))


def test_a_region_look_finds_the_face_the_full_frame_pass_finds():
    # A real photo (tests/data/wild/README.md) pasted into a larger frame: the region look at the full-frame
    # scale puts the face where the full-frame pass does; the fine look, where a detector that never shrinks does.
    photo = cv2.cvtColor(cv2.imread(str(Path(__file__).resolve().parents[1] / "data" / "wild" /
                                        "Billy_Crystal_0004.jpg")), cv2.COLOR_BGR2GRAY)
    frame = np.full((480, 960), 128, np.uint8)
    frame[100:350, 500:750] = cv2.resize(photo, (250, 250), interpolation=cv2.INTER_AREA)
    detector = HaarDetector(HaarOptions(verify_model="", pad=0))
    (whole,) = detector.detect(frame)
    assert whole.x >= 500 and whole.x + whole.w <= 750 and whole.w >= 150
    region = whole.grown(0.3)
    (near,) = detector.detect_in(frame, region)
    assert near.iou(whole) > 0.85
    (fine,) = detector.detect_in(frame, region, fine=True)
    (full,) = HaarDetector(HaarOptions(verify_model="", pad=0, detect_width=0)).detect(frame)
    assert fine.iou(full) > 0.85
    assert detector.detect_in(frame, region, (round(whole.w * 1.5), round(whole.w * 2))) == []


# --- resizing and the cascade's call ---------------------------------------------------------------------------

def test_resize():
    assert _resize(FRAME, 1.0) is FRAME and _resize(FRAME, 1.5) is FRAME  # never enlarged, never copied
    assert np.array_equal(_resize(FRAME[:100, :150], 0.3), shrunk(FRAME[:100, :150], 45, 30))  # area averaging
    assert _resize(FRAME[:100, :150], 0.001).shape == (1, 1)  # at least one pixel each way


def test_check_gray_returns_a_detectors_image_and_refuses_others():
    assert check_gray(FRAME) is FRAME
    for bad, text in ((np.zeros((4, 4), np.float32), "float32 of shape (4, 4)"),
                      (np.zeros((4, 4, 3), np.uint8), "uint8 of shape (4, 4, 3)"),
                      (np.zeros(4, np.uint8), "uint8 of shape (4,)")):
        with pytest.raises(ValueError) as refused:
            check_gray(bad)
        assert str(refused.value) == f"detector needs a 2-D uint8 grayscale image, got {text}"


class FakeCascade:
    """What detectMultiScale3 is asked, and the rectangles and weights it answers (as OpenCV gives them)."""

    def __init__(self, rects=(), weights=()):
        self.rects = np.array(rects, np.int32).reshape(-1, 4)
        self.weights = np.array(weights, np.float64)
        self.calls = []

    def detectMultiScale3(self, image, **kwargs):  # noqa: N802 (OpenCV's name)
        self.calls.append((image, kwargs))
        return self.rects, np.ones(len(self.rects), np.int32), self.weights


def with_cascade(cascade, **options):
    detector = HaarDetector(HaarOptions(verify_model="", **options))
    detector.cascade = cascade
    return detector


def test_the_cascade_is_asked_with_the_options_and_its_answer_is_kept():
    cascade = FakeCascade([[1, 2, 3, 4], [5, 6, 7, 8]], [0.5, 1.5])
    gray = FRAME[:50, :60]
    boxes = with_cascade(cascade, scale_factor=1.2, min_neighbors=3)._run(gray, 30, 40)
    assert [(b.as_list(), b.score) for b in boxes] == [([1, 2, 3, 4], 0.5), ([5, 6, 7, 8], 1.5)]
    ((image, kwargs),) = cascade.calls
    assert np.array_equal(image, cv2.equalizeHist(gray))
    assert kwargs == dict(scaleFactor=1.2, minNeighbors=3, minSize=(30, 30), maxSize=(40, 40),
                          outputRejectLevels=True)
    with_cascade(cascade, equalize=False)._run(gray, 30)
    assert len(cascade.calls) == 2
    image, kwargs = cascade.calls[-1]
    assert image is gray and kwargs["maxSize"] == (0, 0)  # no largest size unless asked


def test_the_cascade_is_not_asked_for_a_face_that_cannot_fit():
    cascade = FakeCascade([[0, 0, 50, 50]], [1.0])
    detector = with_cascade(cascade)
    gray = FRAME[:50, :70]
    assert detector._run(gray, 51) == [] and detector._run(gray, 30, 29) == []
    assert cascade.calls == []
    assert len(detector._run(gray, 50)) == 1 and len(detector._run(gray, 30, 30)) == 1  # at the bounds: asked
    assert len(detector._run(gray, 30, 0)) == 1


# --- verify: what the face verifier and the second cascade are asked --------------------------------------------

class FakeVerifier:
    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def is_face(self, gray, box):
        self.asked.append((gray, box))
        return self.answer


class FakeSecond:
    def __init__(self, found):
        self.found, self.asked = found, []

    def detect_in(self, gray, region, sizes=None, fine=False):
        self.asked.append((gray, region, sizes, fine))
        return list(self.found)


def vetting(verifier=None, second=None):
    detector = HaarDetector(HaarOptions(verify_model=""))
    detector.verifier, detector.second = verifier, second
    return detector


def test_the_verifier_is_asked_about_the_box_and_its_no_is_final():
    box = Box(100, 80, 85, 60)
    no, second = FakeVerifier(False), FakeSecond([box])
    assert vetting(no, second).verify(FRAME, box) is False
    assert len(no.asked) == 1 and no.asked[0][0] is FRAME and no.asked[0][1] == [100, 80, 85, 60]
    assert second.asked == []  # refused already: the second cascade is not run
    yes = FakeVerifier(True)
    assert vetting(yes).verify(FRAME, box) is True and len(yes.asked) == 1
    assert vetting().verify(FRAME, box) is True  # neither: every face passes


def test_the_second_cascade_looks_around_the_box_for_a_face_of_about_its_size():
    box = Box(100, 80, 90, 60)  # its longer side 90: faces of 63 to 126 px, in the box grown by a quarter
    second = FakeSecond([])
    assert vetting(FakeVerifier(True), second).verify(FRAME, box) is False
    ((gray, region, sizes, fine),) = second.asked
    assert gray is FRAME and region == Box(78, 65, 135, 90) and sizes == (63, 126) and fine is False
    tall = FakeSecond([])
    vetting(None, tall).verify(FRAME, Box(0, 0, 40, 95))
    assert tall.asked[0][2] == (66, 133)


def test_the_second_cascade_confirms_a_face_overlapping_the_box_by_four_tenths():
    box = Box(0, 0, 10, 10)
    assert vetting(None, FakeSecond([Box(0, 0, 10, 25)])).verify(FRAME, box)  # IoU exactly 0.4
    assert not vetting(None, FakeSecond([Box(0, 0, 10, 26)])).verify(FRAME, box)  # 100 / 260
    assert vetting(None, FakeSecond([Box(50, 50, 10, 10), Box(1, 1, 10, 10)])).verify(FRAME, box)


# --- the base class and EitherDetector --------------------------------------------------------------------------

class Recorder(FaceDetector):
    """Finds `found` (in the picture it is given) in any picture and records each picture; no verify of its own."""

    def __init__(self, found=()):
        self.found, self.seen = list(found), []

    def detect(self, gray):
        self.seen.append(gray)
        return list(self.found)


def test_a_detector_without_a_second_opinion_confirms_every_face():
    assert Recorder().verify(FRAME, Box(0, 0, 10, 10)) is True


def test_the_base_region_look_crops_the_region_and_shifts_its_finds():
    gray = FRAME[:60, :80]
    detector = Recorder([Box(2, 3, 10, 12, 0.7)])
    (box,) = detector.detect_in(gray, Box(-10, 20, 40, 100))  # past the left and bottom edges: (0, 20, 30, 40)
    assert np.array_equal(detector.seen[0], gray[20:60, 0:30]) and detector.seen[0].flags.c_contiguous
    assert box.as_list() == [2, 23, 10, 12] and box.score == 0.7
    (box,) = detector.detect_in(gray, Box(50, -5, 100, 30))  # past the top and right edges: (50, 0, 30, 25)
    assert np.array_equal(detector.seen[1], gray[0:25, 50:80])
    assert box.as_list() == [52, 3, 10, 12]
    # Past the frame's right or bottom edge: nothing to look at, the detector is not asked.
    assert detector.detect_in(gray, Box(80, 0, 10, 10)) == [] and detector.detect_in(gray, Box(0, 60, 10, 10)) == []
    assert len(detector.seen) == 2
    tall = FRAME[:80, :60]  # a region reaching below a tall frame is cut at its height, not its width
    (box,) = detector.detect_in(tall, Box(10, 50, 20, 100))
    assert np.array_equal(detector.seen[2], tall[50:80, 10:30]) and box.as_list() == [12, 53, 10, 12]


def test_the_base_region_look_keeps_the_sizes_asked_for_by_the_longer_side():
    inside = [Box(0, 0, 10, 20), Box(0, 0, 21, 5), Box(0, 0, 30, 2)]  # longer sides 20, 21, 30
    outside = [Box(0, 0, 9, 19), Box(0, 0, 30, 31), Box(0, 0, 19, 19)]  # 19, 31, 19
    detector = Recorder(inside + outside)
    assert detector.detect_in(FRAME, Box(10, 10, 100, 100), (20, 30)) == [b.shifted(10, 10) for b in inside]
    assert len(detector.detect_in(FRAME, Box(10, 10, 100, 100))) == 6


class Asked(FaceDetector):
    """Answers region looks with `found` and records what each look asked."""

    def __init__(self, found):
        self.found, self.asked = list(found), []

    def detect(self, gray):
        return []

    def detect_in(self, gray, region, sizes=None, fine=False):
        self.asked.append((gray, region, sizes, fine))
        return list(self.found)

    def verify(self, gray, box):
        self.asked.append((gray, box))
        return box.w > 20


def test_either_detector_vets_the_box_with_the_first_detectors_verify():
    first, second = Asked([]), Asked([])
    either = EitherDetector(first, second)
    assert either.verify(FRAME, Box(5, 5, 30, 30)) is True and either.verify(FRAME, Box(5, 5, 10, 10)) is False
    assert [(g is FRAME, b) for g, b in first.asked] == [(True, Box(5, 5, 30, 30)), (True, Box(5, 5, 10, 10))]
    assert second.asked == []


def test_either_detectors_region_look_asks_both_the_same_and_joins_their_finds():
    a, b = Box(10, 10, 50, 50), Box(15, 12, 50, 50)  # the same face (IoU 0.8)
    c = Box(200, 100, 40, 40)
    first, second = Asked([a]), Asked([b, c])
    either = EitherDetector(first, second)
    region = Box(0, 0, 300, 200)
    assert either.detect_in(FRAME, region, (30, 90), fine=True) == [a, c]
    assert either.detect_in(FRAME, region) == [a, c]
    for asked in (first.asked, second.asked):
        assert [(g is FRAME, r, s, f) for g, r, s, f in asked] == [(True, region, (30, 90), True),
                                                                    (True, region, None, False)]
