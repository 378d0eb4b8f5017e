"""BlazeFace: anchors, decoding, NMS, the shipped models on real photos with boxes drawn by hand, and refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_runtime.blazeface import (
    VARIANTS,
    AnchorOptions,
    BlazeFaceDetector,
    BlazeFaceOptions,
    Framing,
    decode,
    iou,
    ssd_anchors,
    weighted_nms,
)
from edge_runtime.boxes import Box
from edge_runtime.detector import DetectorError, least_face
from edge_runtime.metadata import read_metadata, sha256_file

DATA = Path(__file__).resolve().parents[1] / "data"
VERIFIER = VARIANTS["short"].parent / "face_verifier_int8.tflite"
# Faces boxed by hand from eyebrows to chin, cheek to cheek (x0, y0, x1, y1), tests/data/README.md.
HAND = {"wild_steve_o_0001.jpg": (50, 75, 285, 280), "wild_surprise_2868585k.jpg": (35, 160, 320, 495)}


@pytest.fixture(scope="module")
def short() -> BlazeFaceDetector:
    return BlazeFaceDetector(BlazeFaceOptions(fer_framing=False))


@pytest.fixture(scope="module")
def framed() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def photo(name: str) -> np.ndarray:
    return cv2.imread(str(DATA / name), cv2.IMREAD_GRAYSCALE)


def largest(boxes: list[Box]) -> Box:
    assert boxes, "no face found"
    return max(boxes, key=lambda b: b.area)


def test_short_range_anchors_are_mediapipes_896():
    anchors = ssd_anchors(AnchorOptions(128, (8, 16, 16, 16)))
    assert anchors.shape == (896, 4)
    # 16x16 cells with 2 anchors each (stride 8), then 8x8 cells with 6 (three stride-16 layers x 2).
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8, 1, 1])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8, 1, 1])


def test_full_range_anchors_one_per_cell_of_48x48():
    anchors = ssd_anchors(AnchorOptions(192, (4,), interpolated_scale_aspect_ratio=0.0))
    assert anchors.shape == (2304, 4)
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(anchors[47], [47.5 / 48, 0.5 / 48, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48, 1, 1], rtol=1e-6)


def test_anchor_sizes_follow_the_scales_when_not_fixed():
    anchors = ssd_anchors(AnchorOptions(64, (32, 32), min_scale=0.2, max_scale=0.6, aspect_ratios=(1.0, 4.0),
                                        fixed_anchor_size=False))
    # Per cell: layer 0's two ratios and its interpolated scale, then layer 1's (interpolated with 1.0).
    assert anchors.shape == (2 * 2 * 6, 4)
    np.testing.assert_allclose(anchors[:6, 2:], [[0.2, 0.2], [0.4, 0.1], [np.sqrt(0.12)] * 2,
                                                [0.6, 0.6], [1.2, 0.3], [np.sqrt(0.6)] * 2], rtol=1e-6)


def test_anchor_scales_spread_evenly_over_the_layers():
    three = ssd_anchors(AnchorOptions(64, (32, 32, 32), min_scale=0.2, max_scale=0.6, fixed_anchor_size=False))
    np.testing.assert_allclose(three[:6, 2], [0.2, np.sqrt(0.08), 0.4, np.sqrt(0.24), 0.6, np.sqrt(0.6)], rtol=1e-6)
    # One layer alone takes the middle of the range (MediaPipe's CalculateScale).
    one = ssd_anchors(AnchorOptions(64, (32,), min_scale=0.2, max_scale=0.6, interpolated_scale_aspect_ratio=0.0,
                                    fixed_anchor_size=False))
    np.testing.assert_allclose(one[:, 2:], [[0.4, 0.4]] * 4, rtol=1e-6)


def test_decode_scales_offsets_by_the_input_and_clips_scores():
    anchors = np.array([[0.5, 0.25, 1, 1], [0.1, 0.1, 1, 1], [0.9, 0.9, 1, 1]], np.float32)
    raw = np.zeros((3, 16), np.float32)
    raw[0, :4] = [12.8, -12.8, 64, 32]  # centre +0.1, -0.1 of the input; 0.5 x 0.25 of it
    raw[0, 4:6] = [-25.6, 0]  # first keypoint 0.2 left of the anchor
    scores = np.array([1e6, 0.0, -3.0], np.float32)  # a huge logit is clipped, not an overflow
    boxes, kept, keypoints = decode(raw, scores, anchors, 128, 0.5)
    assert len(boxes) == 2 and kept[0] == pytest.approx(1.0) and kept[1] == pytest.approx(0.5)
    np.testing.assert_allclose(boxes[0], [0.35, 0.025, 0.85, 0.275], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.3, 0.25], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1:], [[0.5, 0.25]] * 5, atol=1e-6)
    assert keypoints.shape == (2, 6, 2)


def test_weighted_nms_averages_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    merged, scores = weighted_nms(boxes, np.array([0.6, 0.9, 0.7], np.float32), 0.3)
    np.testing.assert_allclose(merged, [[1.2, 0, 11.2, 10], [50, 50, 60, 60]], rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.7])
    merged, _ = weighted_nms(boxes[:2], np.array([0.6, 0.9], np.float32), 0.7)  # IoU 0.67: kept apart
    assert len(merged) == 2


def test_iou_of_boxes_apart_on_either_axis_is_zero():
    box = np.array([0, 0, 10, 10], np.float32)
    others = np.array([[20, 20, 30, 30], [20, 0, 30, 10], [0, 20, 10, 30], [5, 0, 15, 10], [0, 0, 10, 10],
                       [3, 3, 3, 3]], np.float32)
    np.testing.assert_allclose(iou(box, others), [0, 0, 0, 1 / 3, 1, 0], atol=1e-6)


def test_framing_moves_the_centre_then_scales_about_it():
    # A 20 x 40 box centred on (20, 40): the centre moves by (0.1 w, -0.25 h) to (22, 30), the size becomes 30 x 80.
    out = Framing(scale_w=1.5, scale_h=2.0, dx=0.1, dy=-0.25).apply(np.array([[10, 20, 30, 60]], np.float32))
    np.testing.assert_allclose(out, [[7, -10, 37, 70]], atol=1e-5)
    np.testing.assert_allclose(Framing().apply(np.array([[1, 2, 5, 9]], np.float32)), [[1, 2, 5, 9]])


@pytest.mark.parametrize("name", sorted(HAND))
def test_face_box_on_a_real_photo_matches_the_hand_drawn_one(short, name):
    x0, y0, x1, y1 = HAND[name]
    box = largest(short.detect(photo(name)))
    cx, cy = box.center
    side = x1 - x0
    assert abs(cx - (x0 + x1) / 2) <= 0.1 * side and abs(cy - (y0 + y1) / 2) <= 0.1 * side
    assert 0.85 * side <= box.w <= 1.25 * side and 0.5 < box.score <= 1.0


def test_a_close_up_filling_the_frame_is_found(short):
    face = photo("wild_surprise_2868585k.jpg")[150:505, :]  # cropped to the face: cheeks and chin at the edges
    box = largest(short.detect(face))
    assert box.area >= 0.6 * face.size


def test_boxes_map_back_through_the_letterbox_and_framing(short, framed):
    still = photo("wild_steve_o_0001.jpg")
    frame = np.full((480, 640), 128, np.uint8)
    frame[100:450, 250:600] = still
    on_still, in_frame = largest(short.detect(still)), largest(short.detect(frame))
    # The model sees the face at another scale in the frame, so its box differs a little; a wrong letterbox
    # offset or scale would move it by tens of pixels.
    assert abs(in_frame.center[0] - 250 - on_still.center[0]) <= 8
    assert abs(in_frame.center[1] - 100 - on_still.center[1]) <= 8
    assert abs(in_frame.w / on_still.w - 1) <= 0.15
    # The same picture twice as large: the same model input, so the same box twice as large.
    doubled = largest(short.detect(cv2.resize(still, (700, 700), interpolation=cv2.INTER_LINEAR)))
    assert abs(doubled.x - 2 * on_still.x) <= 4 and abs(doubled.y - 2 * on_still.y) <= 4
    assert abs(doubled.w - 2 * on_still.w) <= 4
    fit = Framing(**read_metadata(VARIANTS["short"])["blazeface"]["fer_framing"])
    x0, y0, x1, y1 = fit.apply(np.array([[in_frame.x, in_frame.y, in_frame.x + in_frame.w,
                                          in_frame.y + in_frame.h]], np.float32))[0]
    assert largest(framed.detect(frame)) == Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def test_full_range_finds_the_face_of_a_portrait_in_a_wider_frame():
    frame = np.full((480, 640), 100, np.uint8)
    frame[200:375, 300:475] = cv2.resize(photo("wild_steve_o_0001.jpg"), (175, 175), interpolation=cv2.INTER_AREA)
    box = largest(BlazeFaceDetector(BlazeFaceOptions(model="full", fer_framing=False)).detect(frame))
    x0, y0, x1, y1 = (offset + v / 2 for offset, v in zip((300, 200, 300, 200), HAND["wild_steve_o_0001.jpg"]))
    assert abs(box.center[0] - (x0 + x1) / 2) <= 12 and abs(box.center[1] - (y0 + y1) / 2) <= 12


def test_colour_and_grey_frames_find_the_same_face(short):
    bgr = cv2.imread(str(DATA / "wild_surprise_2868585k.jpg"), cv2.IMREAD_COLOR)
    assert largest(short.detect_bgr(bgr)).iou(largest(short.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)))) > 0.8
    for wrong in (bgr[..., 0], bgr[..., :2], bgr.astype(np.float32)):
        with pytest.raises(ValueError, match="HxWx3"):
            short.detect_bgr(wrong)
    with pytest.raises(ValueError, match="grayscale"):
        short.detect(bgr)


def test_faces_too_small_or_frames_too_small_give_no_crash(short, framed):
    tiny = cv2.resize(photo("wild_steve_o_0001.jpg"), (24, 24), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640), 90, np.uint8)
    frame[200:224, 300:324] = tiny
    assert short.detect(frame) == []
    for shape in ((1, 1), (2, 700), (700, 3), (24, 24)):
        assert framed.detect(np.zeros(shape, np.uint8)) == []
    tiled = BlazeFaceDetector(BlazeFaceOptions(tile=0.5))
    assert tiled.detect(np.zeros((3, 5), np.uint8)) == []


def test_min_size_drops_smaller_faces():
    # The 350-px close-up in a frame that holds two faces of 350 px: min_size applies as given.
    frame = np.full((760, 760), 128, np.uint8)
    frame[205:555, 205:555] = photo("wild_steve_o_0001.jpg")
    assert BlazeFaceDetector(BlazeFaceOptions(min_size=200)).detect(frame)
    assert BlazeFaceDetector(BlazeFaceOptions(min_size=350)).detect(frame) == []
    # The photo alone cannot hold a face of 350 px with room around it: the least face is half its side.
    assert BlazeFaceDetector(BlazeFaceOptions(min_size=350)).detect(photo("wild_steve_o_0001.jpg"))


def test_tiles_cover_the_frame_half_a_tile_apart(short):
    tiled = BlazeFaceDetector(BlazeFaceOptions(tile=0.5))
    windows = tiled.windows(640, 480)
    assert windows[0] == Box(0, 0, 640, 480) and short.windows(640, 480) == [Box(0, 0, 640, 480)]
    assert {(b.w, b.h) for b in windows[1:]} == {(240, 240)}
    assert sorted({b.x for b in windows[1:]}) == [0, 120, 240, 360, 400]
    assert sorted({b.y for b in windows[1:]}) == [0, 120, 240]
    frame = np.full((480, 640), 128, np.uint8)
    frame[300:380, 500:580] = cv2.resize(photo("wild_steve_o_0001.jpg"), (80, 80), interpolation=cv2.INTER_AREA)
    assert short.detect(frame) == []
    found = tiled.detect(frame)
    assert len(found) == 1 and found[0].score >= 0.6
    # A face found only in a tile must reach the tiles' own, higher threshold.
    strict = BlazeFaceDetector(BlazeFaceOptions(tile=0.5, tile_score_threshold=min(0.99, found[0].score + 0.01)))
    assert strict.detect(frame) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 900), height=st.integers(1, 900), side=st.integers(40, 400),
       fx=st.floats(-0.3, 1.0), fy=st.floats(-0.3, 1.0), tile=st.sampled_from([0.0, 0.5]))
def test_boxes_always_lie_inside_the_frame(framed, width, height, side, fx, fy, tile):
    frame = np.full((height, width), 60, np.uint8)
    face = cv2.resize(photo("wild_surprise_2868585k.jpg"), (side, round(side * 536 / 355)))
    x, y = round(fx * width), round(fy * height)
    fx0, fy0 = max(0, -x), max(0, -y)
    x0, y0 = max(0, x), max(0, y)
    w, h = min(width - x0, face.shape[1] - fx0), min(height - y0, face.shape[0] - fy0)
    if w > 0 and h > 0:
        frame[y0 : y0 + h, x0 : x0 + w] = face[fy0 : fy0 + h, fx0 : fx0 + w]
    detector = framed if not tile else BlazeFaceDetector(replace(framed.options, tile=tile))
    for b in detector.detect(frame):
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= width and b.y + b.h <= height
        assert max(b.w, b.h) >= least_face(detector.options.min_size, frame.shape) and 0.5 <= b.score <= 1.0


THUMB = "wild/FaridaJalal_97.jpg"  # a 36x38 photo of a face cropped tight (tests/data/wild/README.md)


def test_a_tight_thumbnail_is_found_on_a_second_look_with_a_border(framed):
    thumb = photo(THUMB)
    assert BlazeFaceDetector(BlazeFaceOptions(thumbnail_border=0.0)).detect(thumb) == []
    face = largest(framed.detect(thumb))
    # The face fills the picture: its box, clipped to it, covers most of it.
    assert face.x >= 0 and face.y >= 0 and face.x + face.w <= thumb.shape[1] and face.y + face.h <= thumb.shape[0]
    assert face.w * face.h >= 0.6 * thumb.size and face.score >= 0.5


def test_a_face_the_first_look_finds_keeps_its_box(framed):
    # The second look is only for a thumbnail where the first finds nothing: a thumbnail whose face the plain look
    # finds keeps that box (on wild_dev a border-only look lost 9 faces the plain look finds).
    thumb = photo("wild/FaridaJalal_105.jpg")
    plain = BlazeFaceDetector(replace(framed.options, thumbnail_border=0.0)).detect(thumb)
    assert plain and framed.detect(thumb) == plain


@given(short_side=st.integers(1, 200), long_extra=st.integers(0, 300), min_size=st.integers(1, 100),
       share=st.sampled_from([0.0, 0.1, 0.25, 1.0]))
@settings(max_examples=60, deadline=None)
def test_only_a_picture_under_twice_min_size_gets_a_border(short_side, long_extra, min_size, share):
    detector = BlazeFaceDetector.__new__(BlazeFaceDetector)  # border() reads only the options
    detector.options = BlazeFaceOptions(min_size=min_size, thumbnail_border=share)
    for shape in ((short_side, short_side + long_extra), (short_side + long_extra, short_side)):
        expected = round(share * (short_side + long_extra)) if short_side < 2 * min_size else 0
        assert detector.border(shape) == expected
    detector.options = BlazeFaceOptions(min_size=48)
    assert detector.border((95, 300)) == 75 and detector.border((96, 300)) == 0


def test_the_second_look_is_the_thumbnail_seen_over_a_replicated_border(framed):
    thumb = photo(THUMB)
    k = framed.border(thumb.shape)
    assert k == round(0.25 * max(thumb.shape)) > 0
    bordered = cv2.copyMakeBorder(thumb, k, k, k, k, cv2.BORDER_REPLICATE)
    plain = BlazeFaceDetector(replace(framed.options, thumbnail_border=0.0))
    expected = []
    for b in plain.detect(bordered):
        inside = b.shifted(-k, -k).clipped(thumb.shape[1], thumb.shape[0])
        expected.append(Box(inside.x, inside.y, inside.w, inside.h, b.score))
    # Box equality leaves the score out, and the clipped box of a face that fills the picture is the picture: the
    # score tells the border the model saw.
    assert expected and [(b, b.score) for b in framed.detect(thumb)] == [(b, b.score) for b in expected]


def test_a_colour_pictures_channels_are_not_a_side():
    detector = BlazeFaceDetector.__new__(BlazeFaceDetector)
    detector.options = BlazeFaceOptions()
    assert detector.border((480, 640, 3)) == 0 and detector.border((60, 80, 3)) == 20 == detector.border((60, 80))


def test_a_region_look_is_the_pieces_own_look_and_keeps_the_sizes_asked_for(framed):
    frame = np.full((480, 640), 128, np.uint8)
    frame[150:300, 200:350] = cv2.resize(photo("wild_steve_o_0001.jpg"), (150, 150), interpolation=cv2.INTER_AREA)
    region = Box(150, 100, 300, 300)
    own = [b.shifted(150, 100) for b in framed.detect(np.ascontiguousarray(frame[100:400, 150:450]))]
    assert len(own) == 1 and framed.detect_in(frame, region) == own
    side = max(own[0].w, own[0].h)
    assert framed.detect_in(frame, region, (side, side)) == own == framed.detect_in(frame, region, (side, side + 5))
    assert framed.detect_in(frame, region, (side + 1, 999)) == [] == framed.detect_in(frame, region, (1, side - 1))


def test_bad_options_are_refused_all_at_once():
    with pytest.raises(DetectorError) as info:
        BlazeFaceDetector(BlazeFaceOptions(model="long", score_threshold=1.0, nms_threshold=0.0, min_size=0,
                                           tile=1.0, tile_score_threshold=0.0, num_threads=0,
                                           thumbnail_border=-0.1))
    text = str(info.value)
    for word in ("model must be one of ['full', 'short']", "score_threshold must", "nms_threshold", "min_size",
                 "tile must", "tile_score_threshold", "num_threads", "thumbnail_border must be between 0 and 1"):
        assert word in text
    for good in (BlazeFaceOptions(tile=0.1), BlazeFaceOptions(tile=0.99), BlazeFaceOptions(score_threshold=0.01),
                 BlazeFaceOptions(thumbnail_border=0.0), BlazeFaceOptions(thumbnail_border=1.0)):
        good.check()
    with pytest.raises(DetectorError, match="thumbnail_border must be between 0 and 1 .got 1.01"):
        BlazeFaceOptions(thumbnail_border=1.01).check()


def copy_model(tmp_path: Path, variant: str = "short") -> Path:
    source = VARIANTS[variant]
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
    return target


def refusal(path: Path) -> str:
    with pytest.raises(DetectorError) as info:
        BlazeFaceDetector(BlazeFaceOptions(model_path=str(path)))
    text = str(info.value)
    assert "\n" not in text and path.stem in text
    return text


def test_a_missing_model_file_is_refused_in_one_sentence(tmp_path):
    assert "model file not found" in refusal(tmp_path / "blazeface_short_range.tflite")


def test_altered_model_bytes_are_refused_in_one_sentence(tmp_path):
    path = copy_model(tmp_path)
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    assert "sha256" in refusal(path)


def test_metadata_without_a_sha256_or_blazeface_settings_is_refused(tmp_path):
    path = copy_model(tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    for key in ("sha256", "blazeface"):
        path.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != key}))
        assert "not a BlazeFace model" in refusal(path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "blazeface": {"anchors": {"input_size": 128}}}))
    assert "unreadable BlazeFace settings" in refusal(path)
    path.with_suffix(".json").unlink()
    assert "metadata file missing" in refusal(path)


def test_another_tflite_model_is_not_taken_for_blazeface(tmp_path):
    path = copy_model(tmp_path)
    shutil.copyfile(VERIFIER, path)
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "sha256": sha256_file(path)}))
    assert "not a BlazeFace model" in refusal(path)
    # The short range model with the full range settings: its 896 boxes are not the 2304 anchors.
    short = copy_model(tmp_path)
    full_meta = json.loads(VARIANTS["full"].with_suffix(".json").read_text())
    short.with_suffix(".json").write_text(json.dumps({**full_meta, "sha256": sha256_file(short)}))
    assert "not a BlazeFace model" in refusal(short)


def test_a_region_look_is_not_a_thumbnail(framed):
    # The pipeline's look at part of a frame (where a face moved or is expected) has the frame around it: no
    # second look over a border there, even where the part is as small as a thumbnail.
    frame = np.full((240, 320), 128, np.uint8)
    thumb = photo(THUMB)
    frame[100 : 100 + thumb.shape[0], 150 : 150 + thumb.shape[1]] = thumb
    region = Box(150, 100, thumb.shape[1], thumb.shape[0])
    assert framed.detect(frame[100 : 100 + thumb.shape[0], 150 : 150 + thumb.shape[1]].copy())  # as a picture: found
    assert framed.detect_in(frame, region) == []
    with pytest.raises(ValueError, match="2-D uint8 grayscale"):
        framed.detect_part(np.zeros((40, 40, 3), np.uint8))
