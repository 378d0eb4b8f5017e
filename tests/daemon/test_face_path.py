"""One face path: the daemon's pipeline is the one `detect` builds, its timing wrapper included.

Once the daemon wrapped the detector in a subclass that forwarded only `detect`: the verifier (`verify`) and the
full-resolution look (`detect_in(fine=True)`) fell back to the base class, so `fer-edge run` showed backdrops the
verifier refuses and lost weak faces that `detect` and every benchmark kept.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.dynamic_scenes import _textured
from edge_runtime.boxes import Box
from edge_runtime.daemon.app import Daemon
from edge_runtime.daemon.config import load_config
from edge_runtime.detector import EitherDetector, FaceDetector, HaarDetector, HaarOptions
from edge_runtime.face_path import DetectionSettings, build_pipeline
from edge_runtime.sources import open_source
from edge_runtime.timed import Timed


def _daemon(source, **detection) -> Daemon:
    config = load_config(None, {"camera": {"source": str(source)}, "http": None, "jsonl": None,
                                "detection": detection})
    return Daemon(config)


@pytest.fixture(scope="module")
def backdrop_video(tmp_path_factory):
    """Frames of backdrops on which the bare cascade finds a 'face' (none is there), then the bundled sample's
    real faces: a video the verifier decides."""
    bare = HaarDetector(HaarOptions(verify_model=""))
    frames = []
    for seed in range(300):
        bgr = np.clip(_textured(640, 480, np.random.default_rng(seed)), 0, 255).astype(np.uint8)
        if bare.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)):
            frames += [bgr] * 12  # long enough to be confirmed and shown if nothing vets it
        if len(frames) >= 36:
            break
    assert len(frames) >= 36, "the cascade found too few false faces on the backdrops"
    from edge_runtime.cli import SAMPLE_VIDEO

    with open_source(str(SAMPLE_VIDEO)) as sample:
        frames += [cv2.resize(f.bgr, (640, 480)) for f, _ in zip(sample, range(40))]
    path = tmp_path_factory.mktemp("video") / "backdrops_then_faces.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (640, 480))
    for f in frames:
        out.write(f)
    out.release()
    return path


def test_the_daemons_pipeline_gives_the_faces_detect_gives(backdrop_video):
    daemon = _daemon(backdrop_video)
    plain = build_pipeline(DetectionSettings())
    faces = 0
    try:
        with open_source(str(backdrop_video)) as source:
            for frame in source:
                ours, theirs = daemon.pipeline.process(frame), plain.process(frame)
                assert ours.json_records(daemon.pipeline.labels) == theirs.json_records(plain.labels), \
                    f"frame {frame.index}"
                faces += len(ours.faces)
                if frame.index < 36:
                    assert not ours.faces, f"frame {frame.index}: a backdrop the verifier refuses was shown"
        assert faces > 0, "the sample's faces were not found: the comparison proves nothing"
        # The timing wrapper saw the detector's calls: full frames, region looks and vetting.
        assert daemon.metrics.detection_seconds._sum.get() > 0
    finally:
        daemon._close_outputs()


def test_the_daemons_detector_vets_and_looks_at_full_resolution(val_sample):
    daemon = _daemon(0)
    detector = daemon.pipeline.detector
    try:
        # The default detector: the cascade and BlazeFace, region looks the cascade's.
        assert isinstance(detector, Timed) and isinstance(detector.wrapped, EitherDetector)
        haar = detector.wrapped.first
        assert isinstance(haar, HaarDetector)
        blank = np.full((240, 320), 128, np.uint8)
        box = Box(100, 60, 80, 80)
        # The base class says yes to everything; the daemon's detector asks the verifier, which says no.
        assert FaceDetector.verify(haar, blank, box) is True
        assert detector.verify(blank, box) is False
        # A weak face the shrunken look misses and the full-resolution one finds, found through the daemon's.
        for face in val_sample.images:
            gray = np.full((480, 640), 128, np.uint8)
            gray[200:250, 300:350] = cv2.resize(face, (50, 50), interpolation=cv2.INTER_AREA)
            whole = Box(0, 0, 640, 480)
            fine = haar.detect_in(gray, whole, fine=True)
            if fine and not FaceDetector.detect_in(haar, gray, whole, fine=True):
                assert detector.detect_in(gray, whole, fine=True) == fine
                break
        else:
            pytest.fail("no val face that only the full-resolution look finds: the test proves nothing")
    finally:
        daemon._close_outputs()


def test_a_timed_object_keeps_every_method_of_its_own():
    class Histogram:
        calls = 0

        def time(self):
            Histogram.calls += 1
            return np.errstate()  # any context manager

    haar = HaarDetector(HaarOptions(verify_model=""))
    timed = Timed(haar, Histogram(), ("detect",))
    gray = np.zeros((120, 160), np.uint8)
    assert timed.detect(gray) == [] and Histogram.calls == 1
    assert timed.detect_in.__func__ is HaarDetector.detect_in and timed.options is haar.options
    with pytest.raises(AttributeError):
        Timed(haar, Histogram(), ("no_such_method",))


def test_frames_through_the_daemon_and_detect_share_one_settings_model():
    """Every detection setting is a daemon config key and a detect flag, with one default."""
    from edge_runtime.cli import build_parser
    from edge_runtime.daemon.config import DaemonConfig

    assert DaemonConfig.model_fields["detection"].annotation is DetectionSettings
    detect = build_parser()._subparsers._group_actions[0].choices["detect"]
    flags = {a.dest: a for a in detect._actions}
    for name in DetectionSettings.model_fields:
        assert name in flags, f"detection.{name} has no detect flag"
        assert flags[name].default is None  # unset: the settings model's default applies, not a second one
    assert build_pipeline(DetectionSettings(detect_every=3, classify_every=4)).options.classify_every == 4


def test_fer_edge_run_reports_on_every_frame_the_faces_detect_reports(backdrop_video, tmp_path):
    """The product's main path as a process: `fer-edge run` on a file source read without realtime (every frame,
    none skipped) writes, per frame, the very faces `fer-edge detect --json` writes for the same video."""
    import json
    import subprocess
    import sys

    import yaml

    lines = tmp_path / "faces.jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"camera": {"source": str(backdrop_video), "realtime": False},
                                      "jsonl": {"path": str(lines), "faces": True}, "http": None}))
    run = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    detect = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "detect", str(backdrop_video), "--json",
                             "--no-progress"], capture_output=True, text=True, timeout=120)
    assert detect.returncode == 0, detect.stderr

    def key(r):
        return r["frame"], r["track"], tuple(r["box"]), r["label"], round(r["score"], 4)

    daemon = [json.loads(x) for x in lines.read_text().splitlines()]
    faces = sorted(key(r) for r in daemon if r["type"] == "face")
    assert faces and faces == sorted(key(json.loads(x)) for x in detect.stdout.splitlines())
    assert {r["frame"] for r in daemon if r["type"] == "face"} >= set(range(40, 76, 5))  # the sample's frames
    # The events are still there, beside the per-frame lines.
    assert [r["type"] for r in daemon].count("new") >= 3


def test_blazeface_is_one_setting_away_in_detect_and_in_the_daemon(capsys):
    from edge_runtime.blazeface import BlazeFaceDetector
    from edge_runtime.cli import main

    photo = "tests/data/wild_surprise_2868585k.jpg"  # a close-up: the face fills the picture
    assert main(["detect", photo, "--detector", "blazeface", "--json", "--no-progress"]) == 0
    import json

    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["box"][2] >= 250  # the face, not a patch of it
    daemon = _daemon(0, detector="blazeface", blazeface_tile=0.5)
    try:
        found = daemon.pipeline.detector.wrapped
        assert isinstance(found, BlazeFaceDetector) and found.options.tile == 0.5
    finally:
        daemon._close_outputs()
    assert main(["detect", photo, "--detector", "blazeface", "--blazeface-tile", "0.05"]) == 1
    assert "--blazeface-tile 0.05: must be 0 (no tiles) or at least 0.1" in capsys.readouterr().err


def test_the_verifier_vets_blazefaces_new_faces_too():
    """BlazeFace's own score lets some texture through: the same verifier as Haar's vets what it finds."""
    pipeline = build_pipeline(DetectionSettings(detector="blazeface"))
    blank = np.full((240, 320), 128, np.uint8)
    assert pipeline.detector.verifier is not None
    assert pipeline.detector.verify(blank, Box(100, 60, 80, 80)) is False
    off = build_pipeline(DetectionSettings(detector="blazeface", verify_model=""))
    assert off.detector.verify(blank, Box(100, 60, 80, 80)) is True
