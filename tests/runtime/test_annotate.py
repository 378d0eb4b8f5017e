"""Annotations stay whole inside the frame (issue 14, item 18): a face near the right edge keeps its label."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.annotate import COLORS, draw_faces
from edge_runtime.boxes import Box
from edge_runtime.classifier import Emotion
from edge_runtime.pipeline import Face


def face_at(x: int, y: int, size: int, label: str = "happy") -> Face:
    emotion = Emotion(label, 0.9, (0.0,) * 7)
    return Face(track=12, box=Box(x, y, size, size), emotion=emotion, raw=emotion)


@pytest.mark.parametrize("x", [0, 100, 280, 300])  # left edge, middle, near and at the right edge
def test_the_label_is_drawn_whole_wherever_the_face_is(x):
    width, height = 320, 240
    face = face_at(x, 60, 20)
    frame = draw_faces(np.zeros((height, width, 3), np.uint8), [face])
    text = "happy 0.90 #12"
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    label_rows = frame[60 - th - base - 3:60 - base - 1]
    filled = np.all(label_rows == COLORS["happy"], axis=2).any(axis=0)
    columns = np.flatnonzero(filled)
    # The label's background is as wide as its text, inside the frame, and over the face's box.
    assert columns.size >= tw + 2 and columns[-1] <= width - 1
    assert columns[0] <= x + 20 and columns[-1] >= x
    on_label = label_rows[:, columns[0]:columns[-1] + 1]
    assert (on_label != COLORS["happy"]).any(axis=2).sum() > 20  # the text is drawn on it


def test_a_label_wider_than_the_frame_starts_at_its_left_edge():
    frame = draw_faces(np.zeros((100, 60, 3), np.uint8), [face_at(40, 40, 15, "surprise")])
    row = frame[40 - 8]
    assert np.all(row[0] == COLORS["surprise"])
