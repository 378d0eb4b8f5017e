"""The tracker's association rules, stated and tried on crafted and on random scenes.

Rules (IouTracker's docstring): a detection joins at most one track, the best-overlapping pairs first;
a track joins a detection only when the detection overlaps the track's predicted box by at least
iou_threshold; a track id is never given to a second face.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.boxes import Box
from edge_runtime.tracker import IouTracker


def test_one_detection_between_two_tracks_joins_only_the_closer_one():
    tracker = IouTracker(iou_threshold=0.3, max_overlap=1.0)
    tracker.update([Box(0, 0, 20, 20), Box(14, 0, 20, 20)])  # two faces side by side, overlapping a little
    left, right = tracker.tracks
    # One detection between them, closer to the left face; both overlap it by more than the threshold.
    det = Box(5, 0, 20, 20)
    assert det.iou(left.box) > det.iou(right.box) >= 0.3
    tracker.update([det])
    assert left.box == det and left.missed == 0 and left.hits == 2
    assert right.box == Box(14, 0, 20, 20) and right.missed == 1 and right.hits == 1


def test_overlap_below_the_threshold_does_not_join():
    tracker = IouTracker(iou_threshold=0.3)
    (track,) = tracker.update([Box(0, 0, 20, 20)]).tracks
    below = Box(12, 0, 20, 20)  # IoU 160 / 640 = 0.25
    assert 0 < below.iou(track.box) < 0.3
    update = tracker.update([below])
    assert track.box == Box(0, 0, 20, 20) and track.missed == 1 and track.hits == 1
    assert [t.id for t in update.tracks] == [track.id]  # and the half-covering box starts no new face


def test_overlap_of_exactly_the_threshold_joins():
    tracker = IouTracker(iou_threshold=0.5)
    (track,) = tracker.update([Box(0, 0, 10, 10)]).tracks
    half = Box(0, 0, 10, 5)
    assert half.iou(track.box) == 0.5
    tracker.update([half])
    assert track.box == half and track.missed == 0 and track.hits == 2


def test_the_best_pairs_are_joined_first_even_when_listed_last():
    tracker = IouTracker(iou_threshold=0.2, max_overlap=1.0)
    tracker.update([Box(0, 0, 20, 20), Box(100, 0, 20, 20)])
    a, b = tracker.tracks
    # Detection 0 overlaps track a a little; detection 1 matches a almost exactly and comes second.
    tracker.update([Box(8, 0, 20, 20), Box(1, 0, 20, 20), Box(101, 0, 20, 20)])
    assert a.box == Box(1, 0, 20, 20) and b.box == Box(101, 0, 20, 20)
    assert [t.box for t in tracker.tracks if t.id not in (a.id, b.id)] == [Box(8, 0, 20, 20)]


scene_box = st.builds(Box, st.integers(0, 120), st.integers(0, 120), st.integers(8, 40), st.integers(8, 40))


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.lists(scene_box, max_size=6, unique=True), min_size=1, max_size=12),
    threshold=st.sampled_from([0.1, 0.3, 0.5]),
    resets=st.sets(st.integers(0, 11)),
)
def test_association_rules_hold_on_random_scenes(frames, threshold, resets):
    tracker = IouTracker(iou_threshold=threshold, max_missed=2, max_undetected=4, max_overlap=0.5)
    seen: set[int] = set()
    for i, detections in enumerate(frames):
        if i in resets:
            tracker.reset()
        before = {t.id: t.predicted() for t in tracker.tracks}
        update = tracker.update(detections)
        joined = {t.id: t.box for t in update.tracks + update.ended if t.id in before and t.undetected == 0}
        # No detection is given to two tracks.
        assert len(set(joined.values())) == len(joined)
        for track_id, box in joined.items():
            assert box in detections
            # Nothing below the threshold joins.
            assert box.iou(before[track_id]) >= threshold
        # A detection left unjoined while a free track overlaps it enough would be a missed association.
        free = [tid for tid in before if tid not in joined]
        for det in detections:
            if det not in joined.values():
                assert all(det.iou(before[tid]) < threshold for tid in free)
        # New ids are new: never an id seen before, even one that ended or was reset away.
        new = [t.id for t in update.tracks if t.id not in before]
        assert len(set(new)) == len(new) and not seen & set(new)
        seen |= set(new) | set(before)
        assert len({t.id for t in update.tracks}) == len(update.tracks)
