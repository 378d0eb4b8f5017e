"""A file source read without realtime loses no frame, however slow the processing, and keeps the file's clock."""

from __future__ import annotations

import time

from edge_runtime.daemon.capture import Capture
from edge_runtime.daemon.config import CameraConfig
from edge_runtime.sources import open_source
from tests.daemon.conftest import SAMPLE


def _drain(capture: Capture, slow: float) -> list:
    got = []
    capture.start()
    try:
        while True:
            item = capture.get(0.5)
            if item is None:
                if capture.finished:
                    return got
                continue
            got.append(item.frame)
            time.sleep(slow)
    finally:
        capture.stop()


def test_a_file_without_realtime_gives_every_frame_to_a_slow_pipeline():
    camera = CameraConfig(source=str(SAMPLE), realtime=False)
    capture = Capture(lambda: open_source(str(SAMPLE)), camera)
    frames = _drain(capture, slow=0.01)
    assert [f.index for f in frames] == list(range(90)) and capture.skipped == 0
    # The file's own clock (30 fps), not the time the slow pipeline took.
    assert abs(frames[30].timestamp - 1.0) < 1e-6 and abs(frames[89].timestamp - 89 / 30) < 1e-6


def test_a_file_played_like_a_camera_skips_what_a_slow_pipeline_cannot_take():
    camera = CameraConfig(source=str(SAMPLE), realtime=True)
    capture = Capture(lambda: open_source(str(SAMPLE)), camera)
    frames = _drain(capture, slow=0.1)  # 10 frames a second from a 30 fps file
    assert capture.skipped > 30 and len(frames) + capture.skipped == 90
