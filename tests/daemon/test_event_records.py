"""What each event record says: its id, rounding, the latest box and probabilities, and which tracks end."""

from __future__ import annotations

import pytest

from edge_runtime.boxes import Box
from edge_runtime.classifier import Emotion
from edge_runtime.daemon.events import EventTracker
from edge_runtime.labels import LABELS
from edge_runtime.pipeline import Face

BOX = Box(10, 20, 50, 50)


def face(track: int, label: str, score: float = 0.8, box: Box = BOX) -> Face:
    probabilities = tuple(score if name == label else (1 - score) / 6 for name in LABELS)
    emotion = Emotion(label, score, probabilities)
    return Face(track, box, emotion, emotion)


def test_new_record_in_full():
    events = EventTracker("door", LABELS)
    (new,) = events.update([face(4, "happy", 0.123456)], alive=[4], now=1700000000.12345)
    assert new == {
        "type": "new", "id": "1700000000.123-door-4", "camera": "door", "track": 4, "label": "happy",
        "score": 0.1235, "probabilities": {name: round(0.123456 if name == "happy" else (1 - 0.123456) / 6, 6)
                                           for name in LABELS},
        "box": [10, 20, 50, 50], "start_time": 1700000000.123, "frame_time": 1700000000.123, "end_time": None,
    }


def test_an_update_carries_the_latest_box_score_and_time():
    events = EventTracker("cam", LABELS)
    events.update([face(1, "happy", 0.7)], alive=[1], now=10.0)
    # Same label, new box and score: no record, but the event follows the face.
    assert events.update([face(1, "happy", 0.9, Box(12, 22, 50, 50))], alive=[1], now=10.5) == []
    (ended,) = events.end([1], 11.00049)
    assert ended["type"] == "end" and ended["box"] == [12, 22, 50, 50] and ended["score"] == 0.9
    assert ended["frame_time"] == 10.5 and ended["end_time"] == 11.0 and ended["start_time"] == 10.0
    assert ended["label"] == "happy" and ended["probabilities"]["happy"] == 0.9


def test_update_record_keeps_the_id_and_start():
    events = EventTracker("cam", LABELS)
    (new,) = events.update([face(1, "happy")], alive=[1], now=10.0)
    (update,) = events.update([face(1, "sad", 0.6)], alive=[1], now=12.25)
    assert update["type"] == "update" and update["id"] == new["id"] == "10.000-cam-1"
    assert (update["label"], update["score"], update["start_time"], update["frame_time"]) == ("sad", 0.6, 10.0, 12.25)
    assert update["end_time"] is None


def test_ending_only_what_is_open():
    events = EventTracker("cam", LABELS)
    events.update([face(1, "happy"), face(2, "sad"), face(3, "fear")], alive=[1, 2, 3], now=1.0)
    assert events.end([2, 99], 2.0)[0]["track"] == 2 and len(events.end([2, 99], 2.0)) == 0
    assert sorted(events.open) == [1, 3]
    assert [r["track"] for r in events.end(None, 3.0)] == [1, 3] and events.open == {}
    assert events.end(None, 4.0) == []


def test_a_face_whose_track_is_already_dropped_starts_and_ends_in_one_frame():
    events = EventTracker("cam", LABELS)
    records = events.update([face(5, "neutral")], alive=[], now=1.0)
    assert [(r["type"], r["track"]) for r in records] == [("new", 5), ("end", 5)]
    assert records[1]["end_time"] == 1.0 and not events.open


@pytest.mark.parametrize("labels", [("a", "b"), ("x", "y")])
def test_probabilities_are_named_by_the_model_labels(labels):
    events = EventTracker("cam", labels)
    emotion = Emotion(labels[1], 0.75, (0.25, 0.75))
    (new,) = events.update([Face(1, Box(0, 0, 5, 5), emotion, emotion)], alive=[1], now=0.0)
    assert new["probabilities"] == {labels[0]: 0.25, labels[1]: 0.75}
