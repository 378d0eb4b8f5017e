"""What a moving background can cost: between two full detections the pipeline's motion looks cover at most
motion_budget frames' area, however much moves; a small movement is still looked at in every frame."""

from __future__ import annotations

import numpy as np
import pytest

from bench.scenes import background
from edge_runtime.boxes import Box
from edge_runtime.detector import HaarDetector, HaarOptions
from edge_runtime.face_path import DetectionSettings, build_pipeline
from edge_runtime.sources import gray_frame


class Looks(HaarDetector):
    """The real cascade, recording the regions it is asked to look at for motion (not the fine looks)."""

    def __init__(self):
        super().__init__(HaarOptions(verify_model=""))
        self.regions: list[tuple[int, Box]] = []
        self.frame = 0

    def detect_in(self, gray, region, sizes=None, fine=False):
        if sizes is None and not fine:
            self.regions.append((self.frame, region))
        return super().detect_in(gray, region, sizes, fine)


def _run(frames, detect_every: int = 10, budget: float = 4.0):
    pipeline = build_pipeline(DetectionSettings(detect_every=detect_every), motion_budget=budget)
    looks = Looks()
    pipeline.detector = looks
    for i, bgr in enumerate(frames):
        looks.frame = i
        pipeline.process(gray_frame(i, i / 15, bgr))
    return looks.regions


def _texture(seed: int) -> np.ndarray:
    return background(960, 720, np.random.default_rng(seed))


@pytest.mark.parametrize("detect_every, budget", [(5, 1.0), (10, 2.0), (10, 4.0)])
def test_a_background_that_moves_everywhere_costs_at_most_the_budget_per_detection(detect_every, budget):
    big = _texture(0)
    # Leaves in the wind: the whole picture shifts a little every frame, in a new direction.
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(40):
        dx, dy = rng.integers(-14, 15, 2)
        frames.append(big[120 + dy : 600 + dy, 160 + dx : 800 + dx].copy())
    regions = _run(frames, detect_every, budget)
    assert regions, "no motion was looked at: the test proves nothing"
    per_window: dict[int, int] = {}
    for frame, region in regions:
        window = frame // detect_every  # full detections run at frames 0, detect_every, ...
        per_window[window] = per_window.get(window, 0) + region.clipped(640, 480).area
    assert max(per_window.values()) <= budget * 640 * 480
    assert max(per_window.values()) > (budget - 1) * 640 * 480  # the budget is spent, not left idle


def test_a_small_movement_is_looked_at_in_every_frame():
    still = _texture(2)[120:600, 160:800]
    frames = []
    for i in range(20):
        f = still.copy()
        f[200:260, 40 + 24 * i : 100 + 24 * i] = 255 - f[200:260, 40 + 24 * i : 100 + 24 * i]  # a hand going by
        frames.append(f)
    regions = _run(frames)
    moving_frames = {frame for frame, _ in regions}
    assert moving_frames >= set(range(1, 10)) | set(range(11, 20))
