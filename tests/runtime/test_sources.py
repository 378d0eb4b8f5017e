"""Frame sources: images, folders, video files, OpenCV devices/URLs and picamera2 (through a stand-in)."""

import itertools
import sys
import types

import cv2
import numpy as np
import pytest

from bench.scenes import SceneOptions, render, write_video
from edge_runtime.classifier import Classifier
from edge_runtime.detector import HaarDetector
from edge_runtime.pipeline import Pipeline
from edge_runtime.sources import ImageSource, PicameraSource, SourceError, VideoSource, open_source


def test_image_and_folder_of_images(tmp_path, frontal_faces):
    for i, face in enumerate(frontal_faces[:3]):
        cv2.imwrite(str(tmp_path / f"face_{i}.{'png' if i % 2 else 'jpg'}"), face.image)
    (tmp_path / "notes.txt").write_text("not an image")
    folder = open_source(tmp_path)
    frames = list(folder)
    assert isinstance(folder, ImageSource) and folder.still and folder.frame_count == 3
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.path.rsplit("/", 1)[-1] for f in frames] == ["face_0.jpg", "face_1.png", "face_2.jpg"]
    assert frames[1].bgr.shape == (48, 48, 3) and np.array_equal(frames[1].gray, frontal_faces[1].image)
    (single,) = list(open_source(tmp_path / "face_1.png"))
    assert single.detection_scale == (1.0, 1.0)


def test_an_unreadable_image_is_skipped_named_and_the_rest_still_come(tmp_path):
    for name in ("a_good.png", "c_good.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((10, 10), np.uint8))
    (tmp_path / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    source = ImageSource(tmp_path)
    frames = list(source)
    # The frame index stays the file's place in the folder, so the gap shows where the bad one was.
    assert [(f.index, f.path.rsplit("/", 1)[-1]) for f in frames] == [(0, "a_good.png"), (2, "c_good.png")]
    assert source.unreadable == [f"{tmp_path / 'b_broken.png'}: cannot read image (not an image OpenCV can decode, "
                                 "or corrupt)"]


def test_missing_and_empty_inputs_are_refused(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "nothing.jpg")
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "nothing.mp4")
    with pytest.raises(SourceError, match="folder has no images"):
        open_source(tmp_path)


def test_video_file_yields_every_frame_then_ends_cleanly(tmp_path, frontal_faces):
    path = tmp_path / "clip.avi"
    write_video(path, frontal_faces[:1], SceneOptions(frames=12, fps=20.0, width=320, height=240, sizes=(80, 80)))
    with open_source(path) as source:
        frames = list(source)
    assert isinstance(source, VideoSource) and not source.live and not source.still
    assert source.fps == pytest.approx(20.0) and source.frame_count == 12
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == pytest.approx([i / 20.0 for i in range(12)])
    assert frames[0].bgr.shape == (240, 320, 3) and frames[0].gray.shape == (240, 320)


def test_truncated_video_ends_cleanly_with_the_frames_it_has(tmp_path, frontal_faces):
    path = tmp_path / "cut.avi"
    write_video(path, frontal_faces[:1], SceneOptions(frames=20, width=320, height=240, sizes=(80, 80)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    frames = list(VideoSource(path))
    assert 3 <= len(frames) < 20


def test_corrupt_video_is_refused_with_its_name(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=r"garbage\.mp4: cannot open video"):
        VideoSource(path)


@pytest.mark.parametrize("spec, what", [("97", "camera"), ("/dev/video97", "camera"),
                                        ("rtsp://127.0.0.1:9/none", "stream")])
def test_unavailable_camera_or_stream_says_which(spec, what):
    with pytest.raises(SourceError, match=f"cannot open {what}"):
        open_source(spec)


class FakePicamera2:
    """Stands in for picamera2.Picamera2: main BGR and lores YUV420 arrays of one synthetic scene."""

    cameras = 1
    instances: list = []

    def __init__(self, camera_num=0):
        if camera_num >= self.cameras:
            raise IndexError("list index out of range")
        self.scene = list(render(FakePicamera2.faces, SceneOptions(frames=8, sizes=(110, 150), seed=4)))
        self.calls: list[str] = []
        self.frame = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, lores):
        return {"main": dict(main), "lores": dict(lores)}

    def configure(self, config):
        self.config = config
        self.calls.append("configure")

    def start(self):
        self.calls.append("start")

    def capture_arrays(self, names):
        bgr, _ = self.scene[self.frame % len(self.scene)]
        w, h = self.config["lores"]["size"]
        y = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (w, h), interpolation=cv2.INTER_AREA)
        yuv420 = np.vstack([y, np.full((h // 2, w), 128, np.uint8)])
        arrays = {"main": bgr.copy(), "lores": yuv420}
        metadata = {"SensorTimestamp": 5_000_000_000 + self.frame * 33_333_333}
        self.frame += 1
        return [arrays[n] for n in names], metadata

    def capture_array(self, name="main"):
        raise AssertionError("one capture_array per stream would take the two streams from different frames")

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


@pytest.fixture
def fake_picamera2(monkeypatch, frontal_faces):
    FakePicamera2.faces = frontal_faces[:2]
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    return FakePicamera2


def test_picamera2_detects_on_lores_and_reports_boxes_in_main_pixels(fake_picamera2, model):
    source = open_source("picamera2")
    assert isinstance(source, PicameraSource) and source.live
    camera = fake_picamera2.instances[0]
    assert camera.config["main"] == {"size": (640, 480), "format": "RGB888"}
    assert camera.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    pipeline = Pipeline(HaarDetector(), Classifier(model))
    with source:
        frames = list(itertools.islice(source, 6))
        results = [pipeline.process(f) for f in frames]
    assert camera.calls == ["configure", "start", "stop", "close"]
    assert frames[0].bgr.shape == (480, 640, 3) and frames[0].gray.shape == (240, 320)
    assert frames[0].detection_scale == (2.0, 2.0)
    assert [f.timestamp for f in frames] == pytest.approx([i * 0.033333333 for i in range(6)])
    truth = [placements for _, placements in camera.scene]
    # From frame 1: a new face is shown once a second detection confirms it.
    for result, placements in zip(results[1:], truth[1:]):
        assert len(result.faces) == 2
        for p in placements:
            assert max(p.box.iou(f.box) for f in result.faces) >= 0.5


def test_picamera2_missing_off_a_pi_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceError, match=r"picamera2 is not available.*python3-picamera2"):
        open_source("picamera2")


def test_picamera2_without_that_camera_is_a_clear_error(fake_picamera2):
    with pytest.raises(SourceError, match=r"picamera2:1: no such camera"):
        open_source("picamera2:1")
