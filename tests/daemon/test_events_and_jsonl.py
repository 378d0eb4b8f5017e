"""Face events from real pipeline results (new / update / end, a coasting face is not an end), and the
JSON lines file rotating by size."""

import json

from edge_runtime.boxes import Box
from edge_runtime.classifier import Emotion
from edge_runtime.daemon.config import JsonlConfig
from edge_runtime.daemon.events import EventTracker
from edge_runtime.daemon.sinks.jsonl import JsonlSink
from edge_runtime.labels import LABELS
from edge_runtime.pipeline import Face


def face(track: int, label: str, score: float = 0.8) -> Face:
    probabilities = tuple(score if name == label else (1 - score) / 6 for name in LABELS)
    emotion = Emotion(label, score, probabilities)
    return Face(track, Box(10 * track, 20, 50, 50), emotion, emotion)


def test_new_update_end():
    events = EventTracker("cam", LABELS)
    first = events.update([face(1, "happy"), face(2, "sad")], alive=[1, 2], now=100.0)
    assert [(e["type"], e["track"], e["label"]) for e in first] == [("new", 1, "happy"), ("new", 2, "sad")]
    assert first[0]["probabilities"]["happy"] == 0.8 and first[0]["box"] == [10, 20, 50, 50]
    # Same labels: nothing to say. Track 2 not shown this frame but still tracked (coasting): no end.
    assert events.update([face(1, "happy")], alive=[1, 2], now=100.1) == []
    changed = events.update([face(1, "surprise"), face(2, "sad")], alive=[1, 2], now=100.2)
    assert [(e["type"], e["label"], e["start_time"]) for e in changed] == [("update", "surprise", 100.0)]
    ended = events.update([face(1, "surprise")], alive=[1], now=100.3)
    assert [(e["type"], e["track"], e["label"], e["end_time"]) for e in ended] == [("end", 2, "sad", 100.3)]
    assert [e["type"] for e in events.end(None, 101.0)] == ["end"] and not events.open
    assert ended[0]["id"] == first[1]["id"]


def test_jsonl_rotates_by_size(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(JsonlConfig(path=str(path), max_bytes=1000, backups=2))
    for i in range(100):
        sink.event({"type": "new", "n": i, "pad": "x" * 40})
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    # The newest lines are in the current file, complete, the last one last.
    last = [json.loads(line) for line in path.read_text().splitlines()]
    assert last[-1]["n"] == 99 and [r["n"] for r in last] == sorted(r["n"] for r in last)
