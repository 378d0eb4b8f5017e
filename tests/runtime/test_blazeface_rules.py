"""BlazeFace's arithmetic and rules pinned at their edges, with values worked out by hand: anchors of a size the
strides do not divide, decoding with anchors that are not 1 x 1, IoU and weighted NMS exactly at the threshold and
among equal scores, the tiles, the letterbox and its inverse (a scripted interpreter gives the raw outputs, so each
box's way back to frame pixels is checked to the pixel), the score thresholds of the whole frame and of the tiles,
and every refusal as one sentence naming the file or option and what is wrong."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge_runtime import blazeface
from edge_runtime.blazeface import VARIANTS, AnchorOptions, BlazeFaceDetector, BlazeFaceOptions, Framing
from edge_runtime.boxes import Box
from edge_runtime.detector import DetectorError
from edge_runtime.interpreter import ModelError, make_interpreter
from edge_runtime.metadata import sha256_file
from edge_runtime.verifier import SHIPPED_VERIFIER

PHOTO = Path(__file__).resolve().parents[1] / "data" / "wild_steve_o_0001.jpg"
FACE = Box(50, 75, 235, 205)  # drawn by hand on PHOTO (test_blazeface.py's HAND)
SHORT_META = json.loads(VARIANTS["short"].with_suffix(".json").read_text())


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- anchors and decoding -------------------------------------------------------------------------------------


def test_the_anchor_defaults_are_the_short_range_models():
    shipped = {k: tuple(v) if isinstance(v, list) else v for k, v in SHORT_META["blazeface"]["anchors"].items()}
    assert AnchorOptions(128, (8, 16, 16, 16)) == AnchorOptions(**shipped)
    # Sizes from the default scales: 0.1484375 up to 0.75 over four layers, each followed by its interpolated scale.
    anchors = blazeface.ssd_anchors(AnchorOptions(128, (8, 16, 16, 16), fixed_anchor_size=False))
    scales = [0.1484375 + (0.75 - 0.1484375) * i / 3 for i in range(4)]
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16, scales[0], scales[0]], rtol=1e-6)
    np.testing.assert_allclose(anchors[1, 2:], [math.sqrt(scales[0] * scales[1])] * 2, rtol=1e-6)
    np.testing.assert_allclose(anchors[512:518, 2], [scales[1], math.sqrt(scales[1] * scales[2]), scales[2],
                                                     math.sqrt(scales[2] * scales[3]), scales[3],
                                                     math.sqrt(scales[3])], rtol=1e-6)


def test_the_interpolated_anchor_takes_its_own_aspect_ratio():
    # One layer of scale 0.4, followed by 1.0: the interpolated anchor is sqrt(0.4) across, at ratio 4 twice as wide
    # and half as high.
    anchors = blazeface.ssd_anchors(AnchorOptions(64, (32,), min_scale=0.2, max_scale=0.6,
                                                  interpolated_scale_aspect_ratio=4.0, fixed_anchor_size=False))
    np.testing.assert_allclose(anchors[:2, 2:], [[0.4, 0.4], [2 * math.sqrt(0.4), math.sqrt(0.4) / 2]], rtol=1e-6)


def test_a_stride_that_does_not_divide_the_input_rounds_the_cells_up():
    # 100 / 32 = 3.125: four cells a side, centred at (i + 0.5) / 4.
    anchors = blazeface.ssd_anchors(AnchorOptions(100, (32,), interpolated_scale_aspect_ratio=0.0))
    assert anchors.shape == (16, 4)
    np.testing.assert_allclose(anchors[:4, 0], [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(anchors[::4, 1], [0.125, 0.375, 0.625, 0.875])


def test_decode_scales_offsets_by_an_anchor_that_is_not_square():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    raw = np.array([[12.8, -12.8, 64, 32, 25.6, 0]], np.float32)  # / 128: 0.1, -0.1, 0.5, 0.25; a keypoint 0.2, 0
    boxes, scores, keypoints = blazeface.decode(raw, np.array([2.0], np.float32), anchors, 128, 0.5)
    # centre (0.5 + 0.1 * 0.2, 0.5 - 0.1 * 0.4) = (0.52, 0.46), size (0.5 * 0.2, 0.25 * 0.4) = (0.1, 0.1)
    np.testing.assert_allclose(boxes, [[0.47, 0.41, 0.57, 0.51]], atol=1e-6)
    np.testing.assert_allclose(keypoints, [[[0.54, 0.5]]], atol=1e-6)
    assert scores == pytest.approx([sigmoid(2.0)])


def test_decode_clips_logits_at_the_bound_given_without_overflowing():
    anchors = np.array([[0.5, 0.5, 1, 1]] * 3, np.float32)
    with np.errstate(all="raise"):
        logits = np.array([-1e6, 10.0, 1e6], np.float32)
        _, scores, _ = blazeface.decode(np.zeros((3, 4), np.float32), logits, anchors, 128, 0.0, clip=5.0)
        assert scores == pytest.approx([sigmoid(-5.0), sigmoid(5.0), sigmoid(5.0)], rel=1e-12)
        _, scores, _ = blazeface.decode(np.zeros((1, 4), np.float32), logits[:1], anchors[:1], 128, 0.0)
        assert scores[0] == pytest.approx(sigmoid(-100.0), rel=1e-9, abs=0) and scores[0] > 0


# --- IoU and weighted NMS -------------------------------------------------------------------------------------


def test_iou_of_boxes_smaller_than_a_unit():
    # The model's own [0, 1] coordinates: unions far below 1.
    box = np.array([0, 0, 0.5, 0.5])
    others = np.array([[0.25, 0, 0.75, 0.5], [0, 0, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9], [0.5, 0.5, 0.9, 0.9]])
    np.testing.assert_allclose(blazeface.iou(box, others), [1 / 3, 1, 0, 0], rtol=1e-12)


def test_the_iou_of_two_empty_boxes_is_zero():
    assert blazeface.iou(np.array([3.0, 3, 3, 3]), np.array([[3.0, 3, 3, 3], [3, 3, 3, 5]])).tolist() == [0.0, 0.0]


def test_weighted_nms_keeps_boxes_overlapping_exactly_at_the_threshold_apart():
    boxes = np.array([[0, 0, 4, 1], [0, 0, 2, 1]], np.float32)  # IoU 2 / 4 = 0.5 exactly
    merged, scores = blazeface.weighted_nms(boxes, np.array([0.8, 0.9], np.float32), 0.5)
    np.testing.assert_array_equal(merged, [[0, 0, 2, 1], [0, 0, 4, 1]])
    np.testing.assert_allclose(scores, [0.9, 0.8])
    merged, scores = blazeface.weighted_nms(boxes, np.array([0.8, 0.9], np.float32), 0.49)
    np.testing.assert_allclose(merged, [[0, 0, (0.8 * 4 + 0.9 * 2) / 1.7, 1]], rtol=1e-6)


def test_weighted_nms_of_no_detection_is_no_box():
    merged, kept = blazeface.weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3)
    assert merged.shape == (0, 4) and kept.shape == (0,)


def test_among_equal_scores_the_first_detection_leads():
    # Ten boxes of one score in a row, 4 apart (neighbours overlap by IoU 0.43, next-but-one by 0.11), after ten
    # lesser ones far away: led by the first, they merge in pairs (0+1, 2+3, ...). A sort that is not stable
    # would let another lead and pair them differently.
    row = [[4 * i, 0, 4 * i + 10, 10] for i in range(10)]
    apart = [[100 * i, 500, 100 * i + 10, 510] for i in range(10)]
    scores = np.array([0.5] * 10 + [0.7] * 10, np.float32)
    merged, kept = blazeface.weighted_nms(np.array(apart + row, np.float32), scores, 0.3)
    np.testing.assert_allclose(merged[:5], [[8 * i + 2, 0, 8 * i + 12, 10] for i in range(5)], rtol=1e-6)
    np.testing.assert_allclose(merged[5:], apart)
    np.testing.assert_allclose(kept, [0.7] * 5 + [0.5] * 10, rtol=1e-6)


# --- the tiles ------------------------------------------------------------------------------------------------


def windows(tile: float, width: int, height: int) -> list[Box]:
    return BlazeFaceDetector.windows(SimpleNamespace(options=BlazeFaceOptions(tile=tile)), width, height)


def offsets(values: set[int], side: int, length: int) -> list[int]:
    """The tile offsets along one side, checked: from 0 to flush with the far edge, half a tile apart."""
    found = sorted(values)
    step = max(1, side // 2)
    assert found[0] == 0 and found[-1] == length - side
    gaps = np.diff(found)
    assert all(g == step for g in gaps[:-1]) and all(0 < g <= step for g in gaps[-1:])
    return found


@given(width=st.integers(1, 400), height=st.integers(1, 400),
       tile=st.one_of(st.just(0.0), st.floats(0.1, 0.99)))
@example(width=3, height=10, tile=0.9)  # a tile as wide as the frame: one column
@example(width=2, height=3, tile=0.5)  # tiles of one pixel
@example(width=4, height=4, tile=0.1)  # a tile under one pixel: none
@example(width=3, height=8, tile=0.67)  # tiles of two pixels, one apart
@example(width=10, height=3, tile=0.9)  # a tile as high as the frame: one row
def test_tiles_cover_the_frame_half_a_tile_apart_and_stay_inside(width, height, tile):
    found = windows(tile, width, height)
    assert found[0] == Box(0, 0, width, height)
    side = round(tile * min(width, height))
    if tile == 0.0 or side < 1:
        assert found == [Box(0, 0, width, height)]
        return
    tiles = found[1:]
    assert all((b.w, b.h) == (side, side) for b in tiles)
    xs = offsets({b.x for b in tiles}, side, width)
    ys = offsets({b.y for b in tiles}, side, height)
    assert tiles == [Box(x, y, side, side) for y in ys for x in xs]


# --- the letterbox and the way back, with a scripted interpreter ------------------------------------------------


class Scripted:
    """Stands in for the interpreter: records each input and answers each invoke with the next raw outputs
    (boxes (N, 16), logits (N,)); no detection once the script runs out."""

    def __init__(self, detector: BlazeFaceDetector, script: list[tuple[np.ndarray, np.ndarray]]):
        self.detector, self.script, self.inputs = detector, list(script), []
        n = len(detector.anchors)
        self.none = (np.zeros((n, 16), np.float32), np.full(n, -50.0, np.float32))

    def set_tensor(self, index, tensor):
        assert index == self.detector.input_index
        self.inputs.append(tensor.copy())

    def invoke(self):
        self.answer = self.script.pop(0) if self.script else self.none

    def get_tensor(self, index):
        boxes, scores = self.answer
        return {self.detector.boxes_index: boxes[None], self.detector.scores_index: scores[None, :, None]}[index]


def raw(detector: BlazeFaceDetector, found: list[tuple[tuple[float, float, float, float], float]]):
    """Raw outputs that decode to `found`: (x0, y0, x1, y1) in model-input pixels and a score, each on its own
    anchor (the anchors are 1 x 1, so an offset in input pixels is the box's move from the anchor's centre)."""
    n, size = len(detector.anchors), detector.size
    boxes, scores = np.zeros((n, 16), np.float32), np.full(n, -50.0, np.float32)
    for k, ((x0, y0, x1, y1), p) in enumerate(found):
        ax, ay = detector.anchors[k * 37, :2] * size
        boxes[k * 37, :4] = [(x0 + x1) / 2 - ax, (y0 + y1) / 2 - ay, x1 - x0, y1 - y0]
        scores[k * 37] = logit(p)
    return boxes, scores


def scripted(options: BlazeFaceOptions, script) -> tuple[BlazeFaceDetector, Scripted]:
    detector = BlazeFaceDetector(options)
    detector.interpreter = Scripted(detector, script)
    return detector, detector.interpreter


@pytest.mark.parametrize(("window", "shape", "expected"), [
    # 256 x 128 at (10, 20): scale 0.5, the picture 128 x 64 in rows 32..95; (48, 48, 80, 80) in the input is
    # (48, 16, 80, 48) in the picture, (96, 32, 160, 96) in the window.
    (Box(10, 20, 256, 128), (160, 300), (106, 52, 170, 116)),
    # 128 x 256 at (5, 0): scale 0.5, the picture 64 x 128 in columns 32..95.
    (Box(5, 0, 128, 256), (256, 140), (37, 96, 101, 160)),
    # 100 x 27: scale 1.28, the picture 128 x 35 in rows 46..80 ((128 - 35) // 2 = 46).
    (Box(0, 0, 100, 27), (27, 100), (37.5, 1.5625, 62.5, 26.5625)),
])
def test_a_box_maps_back_through_the_letterbox_to_frame_pixels(window, shape, expected):
    detector, _ = scripted(BlazeFaceOptions(), [raw(BlazeFaceDetector(), [((48, 48, 80, 80), 0.8)])])
    boxes, scores = detector._run(np.zeros(shape, np.uint8), window, 0.5)
    np.testing.assert_allclose(boxes, [expected], atol=1e-3)
    assert scores == pytest.approx([0.8])


@pytest.mark.parametrize(("window", "rows", "columns", "interpolation"), [
    (Box(0, 10, 300, 150), (32, 96), (0, 128), cv2.INTER_AREA),  # shrunk (by 0.43): pixel areas averaged
    (Box(0, 0, 100, 27), (46, 81), (0, 128), cv2.INTER_LINEAR),  # enlarged: interpolated
    (Box(7, 0, 1, 150), (0, 128), (63, 64), cv2.INTER_AREA),  # a column of one pixel stays one pixel wide
    (Box(0, 3, 300, 1), (63, 64), (0, 128), cv2.INTER_AREA),  # a row of one pixel stays one pixel high
])
def test_the_model_sees_the_window_letterboxed_in_black_as_rgb_in_minus_1_to_1(window, rows, columns, interpolation):
    image = np.random.default_rng(5).integers(0, 256, (160, 300), dtype=np.uint8)
    detector, interpreter = scripted(BlazeFaceOptions(), [])
    detector._run(image, window, 0.5)
    (tensor,) = interpreter.inputs
    (top, bottom), (left, right) = rows, columns
    crop = image[window.y : window.y + window.h, window.x : window.x + window.w]
    size = (right - left, bottom - top)
    if min(size) > 1:  # the test can tell the two interpolations apart
        other = cv2.INTER_LINEAR if interpolation == cv2.INTER_AREA else cv2.INTER_AREA
        assert not np.array_equal(cv2.resize(crop, size, interpolation=interpolation),
                                  cv2.resize(crop, size, interpolation=other))
    picture = cv2.resize(crop, size, interpolation=interpolation).astype(np.float32) * (2.0 / 255.0) - 1.0
    assert tensor.shape == (1, 128, 128, 3) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, top:bottom, left:right], np.repeat(picture[..., None], 3, axis=2),
                               atol=1e-6)
    bars = np.ones((128, 128), bool)
    bars[top:bottom, left:right] = False
    assert (tensor[0][bars] == -1.0).all()


def test_tiles_need_the_tiles_score_and_the_whole_frame_its_own():
    # 256 x 256 with tiles of 128 (9 of them): the whole frame at scale 0.5, each tile at scale 1.
    probe = BlazeFaceDetector()
    script = [raw(probe, [((8, 8, 24, 24), 0.55)]),  # the whole frame: 0.55 >= 0.5, kept as (16, 16, 48, 48)
              raw(probe, [((100, 100, 120, 120), 0.55)]),  # the first tile: 0.55 < 0.6, dropped
              raw(probe, [((100, 100, 120, 120), 0.65)])]  # the second tile, at x = 64: kept
    detector, interpreter = scripted(BlazeFaceOptions(tile=0.5, fer_framing=False, min_size=1), script)
    found = detector.detect(np.zeros((256, 256), np.uint8))
    assert len(interpreter.inputs) == 10
    assert found == [Box(164, 100, 20, 20), Box(16, 16, 32, 32)]
    assert [b.score for b in found] == pytest.approx([0.65, 0.55])


def test_boxes_are_rounded_clipped_to_the_frame_and_kept_from_the_least_size_up():
    # A 128 x 128 frame is the model's input as it is (scale 1, no bars).
    probe = BlazeFaceDetector()
    found = [((100, 40, 140, 88), 0.9), ((-10, -6, 30, 50), 0.8), ((60.4, 90.6, 90.2, 126.9), 0.7)]
    expected = [Box(100, 40, 28, 48), Box(0, 0, 30, 50), Box(60, 91, 30, 36)]
    for min_size, kept in ((36, expected), (37, expected[:2]), (48, expected[:2]), (49, expected[1:2])):
        detector, _ = scripted(BlazeFaceOptions(fer_framing=False, min_size=min_size), [raw(probe, found)])
        boxes = detector.detect(np.zeros((128, 128), np.uint8))
        assert boxes == kept, min_size
        assert [b.score for b in boxes] == pytest.approx([p for (_, p), b in zip(found, expected) if b in kept])


def test_a_frame_without_a_detection_gives_none():
    detector, interpreter = scripted(BlazeFaceOptions(), [])
    assert detector.detect(np.zeros((128, 128), np.uint8)) == [] and len(interpreter.inputs) == 1


# --- options, the verifier and refusals -------------------------------------------------------------------------


def test_the_defaults_are_mediapipes_and_the_documented_ones():
    assert BlazeFaceDetector(None).options == BlazeFaceOptions() == BlazeFaceOptions(
        model="short", model_path=None, score_threshold=0.5, nms_threshold=0.3, min_size=48, tile=0.0,
        tile_score_threshold=0.6, fer_framing=True, num_threads=1, verify_model="", verify_threshold=0.2,
        thumbnail_border=0.25)
    assert Framing() == Framing(1.0, 1.0, 0.0, 0.0)


def refused(options: BlazeFaceOptions) -> str:
    with pytest.raises(DetectorError) as info:
        options.check()
    return str(info.value)


@pytest.mark.parametrize("field", ["score_threshold", "nms_threshold", "tile_score_threshold"])
def test_a_probability_must_lie_strictly_between_0_and_1(field):
    for bad in (0.0, 1.0, -0.5, 1.5):
        assert refused(BlazeFaceOptions(**{field: bad})) == (f"bad BlazeFace options: {field} must be between 0 "
                                                             f"and 1 (got {bad})")
    for good in (1e-6, 1 - 1e-6):
        BlazeFaceOptions(**{field: good}).check()


def test_each_bound_is_named_with_the_value_and_all_at_once():
    assert refused(BlazeFaceOptions(model="long")) == "bad BlazeFace options: model must be one of ['full', 'short'] " \
                                                      "(got 'long')"
    for tile in (0.0999, 1.0, -0.5):
        assert refused(BlazeFaceOptions(tile=tile)) == f"bad BlazeFace options: tile must be 0 or between 0.1 and 1 " \
                                                       f"(got {tile})"
    for good in (BlazeFaceOptions(tile=0.0), BlazeFaceOptions(tile=0.1), BlazeFaceOptions(min_size=1),
                 BlazeFaceOptions(num_threads=1), BlazeFaceOptions(model="full")):
        good.check()
    assert refused(BlazeFaceOptions(min_size=0, num_threads=0)) == (
        "bad BlazeFace options: min_size must be >= 1 pixel (got 0); num_threads must be >= 1 (got 0)")
    for border in (-0.01, 1.01):
        assert refused(BlazeFaceOptions(thumbnail_border=border)) == (
            f"bad BlazeFace options: thumbnail_border must be between 0 and 1 (got {border})")


def test_the_verifier_is_off_unless_asked_for_and_then_takes_the_threshold_given():
    photo = cv2.imread(str(PHOTO), cv2.IMREAD_GRAYSCALE)
    frame = np.zeros((600, 800), np.uint8)  # the photo on a black wall: the verifier judges each box's crop
    frame[100 : 100 + photo.shape[0], 300 : 300 + photo.shape[1]] = photo
    face, wall = FACE.shifted(300, 100), Box(20, 300, 200, 200)
    off = BlazeFaceDetector()
    assert off.verifier is None and off.verify(frame, wall)
    on = BlazeFaceDetector(BlazeFaceOptions(verify_model=None, verify_threshold=0.35))
    assert on.verifier.path == SHIPPED_VERIFIER and on.verifier.threshold == 0.35
    assert on.verify(frame, face) and not on.verify(frame, wall)


def test_a_frame_of_the_wrong_kind_is_refused_saying_what_it_is():
    detector = BlazeFaceDetector()
    with pytest.raises(ValueError) as info:
        detector.detect(np.zeros((10, 12), np.float32))
    assert str(info.value) == "detector needs a 2-D uint8 grayscale image, got float32 of shape (10, 12)"
    with pytest.raises(ValueError) as info:
        detector.detect_bgr(np.zeros((10, 12, 4), np.uint8))
    assert str(info.value) == "detect_bgr needs an HxWx3 uint8 image, got uint8 of shape (10, 12, 4)"


def copy_model(tmp_path: Path, meta: dict | None = None, source: Path = VARIANTS["short"]) -> Path:
    """The short range model (or `source`) in tmp_path with the short range metadata, changed by `meta`."""
    path = tmp_path / "model.tflite"
    shutil.copyfile(source, path)
    path.with_suffix(".json").write_text(json.dumps({**SHORT_META, "sha256": sha256_file(path), **(meta or {})}))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(DetectorError) as info:
        BlazeFaceDetector(BlazeFaceOptions(model_path=str(path)))
    return str(info.value)


def test_a_missing_model_file_is_refused_with_the_loaders_sentence(tmp_path):
    path = tmp_path / "model.tflite"
    with pytest.raises(ModelError) as loader:
        make_interpreter(path)
    assert refusal(path) == str(loader.value)


def test_metadata_without_a_blazeface_section_is_refused_in_one_sentence(tmp_path):
    for meta in ({"blazeface": None}, {"blazeface": [1, 2]}):
        path = copy_model(tmp_path, meta)
        assert refusal(path) == f"{path}: not a BlazeFace model (its metadata has no sha256 or no 'blazeface' section)"


def test_unreadable_blazeface_settings_are_refused_naming_the_fault(tmp_path):
    section = SHORT_META["blazeface"]
    for bad, fault in (({"anchors": {"input_size": 128}}, "strides"),
                       ({**section, "fer_framing": {"zoom": 2}}, "zoom"),
                       ({**section, "score_clipping": "high"}, "'high'")):
        path = copy_model(tmp_path, {"blazeface": bad})
        text = refusal(path)
        assert text.startswith(f"{path}: unreadable BlazeFace settings in its metadata (") and fault in text


def test_settings_left_out_take_mediapipes_defaults(tmp_path):
    section = {k: v for k, v in SHORT_META["blazeface"].items() if k not in ("fer_framing", "score_clipping")}
    detector = BlazeFaceDetector(BlazeFaceOptions(model_path=str(copy_model(tmp_path, {"blazeface": section}))))
    assert detector.framing == Framing() and detector.clip == 100.0 and detector.size == 128


def test_scores_are_clipped_where_the_models_metadata_says(tmp_path):
    path = copy_model(tmp_path, {"blazeface": {**SHORT_META["blazeface"], "score_clipping": 2.0}})
    probe = BlazeFaceDetector()
    boxes, logits = raw(probe, [((40, 40, 90, 90), 0.5)])
    logits[logits == 0] = 30.0
    detector, _ = scripted(BlazeFaceOptions(model_path=str(path), fer_framing=False), [(boxes, logits)])
    (found,) = detector.detect(np.zeros((128, 128), np.uint8))
    assert found == Box(40, 40, 50, 50) and found.score == pytest.approx(sigmoid(2.0))


@pytest.mark.parametrize(("anchors", "expected"), [
    # 896 anchors, as the model gives, but for a 192 x 192 input: only the input is wrong.
    ({"input_size": 192, "strides": [12, 24, 24, 24]}, "input [1, 128, 128, 3] float32, expected a float32 "
                                                       "[1, 192, 192, 3] image in and 896 boxes and scores out"),
    # The right input, but 768 anchors: only the outputs are wrong.
    ({"input_size": 128, "strides": [8, 16, 16]}, "input [1, 128, 128, 3] float32, expected a float32 "
                                                  "[1, 128, 128, 3] image in and 768 boxes and scores out"),
])
def test_a_model_that_does_not_fit_its_anchors_is_refused_saying_how(tmp_path, anchors, expected):
    path = copy_model(tmp_path, {"blazeface": {**SHORT_META["blazeface"], "anchors": anchors}})
    assert refusal(path) == f"{path}: not a BlazeFace model ({expected})"


def test_the_face_verifier_is_not_taken_for_blazeface(tmp_path):
    path = copy_model(tmp_path, source=SHIPPED_VERIFIER)
    assert refusal(path) == (f"{path}: not a BlazeFace model (input [1, 32, 32, 1] int8, expected a float32 "
                             "[1, 128, 128, 3] image in and 896 boxes and scores out)")

