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


# The documented settings, each at its edge.

FACE = Box(100, 100, 40, 40)


def test_default_lifetimes():
    tracker = IouTracker()
    (track,) = tracker.update([FACE]).tracks
    for _ in range(10):
        assert tracker.update([]).tracks == [track]  # missed up to max_missed (10) updates: coasting
    assert tracker.update([]).ended == [track]
    followed = IouTracker()
    (track,) = followed.update([FACE]).tracks
    for _ in range(30):
        assert followed.update([], {track.id: FACE}).tracks == [track]  # the follower alone: up to 30
    assert followed.update([], {track.id: FACE}).ended == [track]


def test_an_unconfirmed_track_ends_after_confirm_within_updates_by_default():
    tracker = IouTracker(min_hits=2)
    (track,) = tracker.update([Box(0, 0, 40, 40, score=5.0)]).tracks
    assert not tracker.confirmed(track)  # no confirm_score by default: even a sure detection needs a second look
    for _ in range(9):
        assert tracker.update([], {track.id: track.box}).tracks == [track]
    assert tracker.update([], {track.id: track.box}).ended == [track]


def test_followed_updates_count_towards_max_undetected():
    tracker = IouTracker(max_missed=3, max_undetected=3)
    (track,) = tracker.update([FACE]).tracks
    for i in range(1, 4):
        tracker.update([], {track.id: FACE})
        assert track.undetected == i and track.missed == 0
    assert tracker.update([], {track.id: FACE}).ended == [track]


def test_settings_at_their_bounds():
    IouTracker(iou_threshold=1.0)
    IouTracker(max_missed=5, max_undetected=5)
    IouTracker(min_hits=1, confirm_within=1, remember=0)
    for kwargs, message in [
        ({"iou_threshold": 1.5}, "iou_threshold must be in (0, 1], got 1.5"),
        ({"iou_threshold": 0.0}, "iou_threshold must be in (0, 1], got 0.0"),
        ({"max_missed": 6, "max_undetected": 5}, "need 0 <= max_missed <= max_undetected, got 6, 5"),
        ({"min_hits": 0, "confirm_within": 5}, "min_hits and confirm_within must be >= 1, got 0, 5"),
        ({"min_hits": 1, "confirm_within": 0}, "min_hits and confirm_within must be >= 1, got 1, 0"),
        ({"remember": -1}, "remember must be >= 0, got -1"),
    ]:
        try:
            IouTracker(**kwargs)
        except ValueError as exc:
            assert str(exc) == message
        else:
            raise AssertionError(f"{kwargs} accepted")


def test_no_new_track_on_a_box_covering_max_overlap_of_a_face():
    tracker = IouTracker(max_overlap=0.25)
    tracker.update([Box(0, 0, 20, 20)])
    # A quarter of the face covered (IoU 100/700, below the threshold): part of that face, not a new one.
    update = tracker.update([Box(0, 0, 20, 20), Box(15, 0, 20, 20)])
    assert len(update.tracks) == 1
    update = tracker.update([Box(0, 0, 20, 20), Box(16, 0, 20, 20)])  # a fifth: a new face
    assert len(update.tracks) == 2


def test_a_sure_detection_starts_a_confirmed_track():
    tracker = IouTracker(min_hits=3, confirm_score=0.5)
    sure, unsure = tracker.update([Box(0, 0, 20, 20, score=0.8), Box(100, 0, 20, 20, score=0.4)]).tracks
    assert sure.hits == 3 and tracker.confirmed(sure)
    assert unsure.hits == 1 and not tracker.confirmed(unsure)
    single = IouTracker(min_hits=1, confirm_score=0.5)
    assert single.update([Box(0, 0, 20, 20, score=0.8)]).tracks[0].hits == 1


def lose(tracker, track, updates: int):
    for _ in range(updates):
        tracker.update([])
    assert track not in tracker.tracks


def test_a_covered_face_comes_back_within_remember_updates():
    tracker = IouTracker(max_missed=1, max_undetected=10, remember=2)
    (track,) = tracker.update([FACE]).tracks
    lose(tracker, track, 2)  # ended by the second miss
    tracker.update([])
    back = tracker.update([FACE.shifted(2, 0)])
    assert back.tracks == [track] and track.box == FACE.shifted(2, 0)
    assert (track.missed, track.undetected, track.velocity, track.hits) == (0, 0, (0.0, 0.0), 2)
    late = IouTracker(max_missed=1, max_undetected=10, remember=2)
    (gone,) = late.update([FACE]).tracks
    lose(late, gone, 2)
    late.update([])
    late.update([])
    assert late.update([FACE]).tracks[0].id != gone.id  # three updates later: a new face


def test_the_best_overlapping_lost_face_comes_back_from_the_threshold_on():
    tracker = IouTracker(iou_threshold=0.5, max_missed=0, max_undetected=5, remember=5, max_overlap=1.0)
    a, b = tracker.update([Box(0, 0, 10, 10), Box(100, 0, 10, 10)]).tracks
    lose(tracker, a, 1)
    assert [t for t, _ in tracker.lost] == [a, b]
    assert tracker.update([Box(100, 0, 10, 5)]).tracks == [b]  # IoU with b's last box exactly 0.5
    assert tracker.update([Box(100, 0, 10, 5), Box(0, 0, 10, 4)]).tracks[1].id not in (a.id, b.id)


def test_only_confirmed_faces_that_went_missing_are_remembered():
    tracker = IouTracker(min_hits=2, max_missed=0, max_undetected=5, remember=5)
    (unconfirmed,) = tracker.update([FACE]).tracks
    assert tracker.update([]).ended == [unconfirmed] and tracker.lost == []  # a one-frame detection
    # A confirmed face ended by the follower's limit, having missed exactly max_missed updates, is not kept.
    edge = IouTracker(max_missed=2, max_undetected=3, remember=5)
    (track,) = edge.update([FACE]).tracks
    edge.update([], {track.id: FACE})
    edge.update([], {track.id: FACE})
    edge.update([])
    edge.update([])
    assert track.missed == 2 and track not in edge.tracks and edge.lost == []


def test_velocity_is_spread_over_the_updates_a_face_coasted():
    tracker = IouTracker(velocity_smoothing=0.5)
    (track,) = tracker.update([Box(0, 0, 40, 40)]).tracks
    tracker.update([Box(10, 4, 40, 40)])
    assert track.velocity == (5.0, 2.0)  # half the old (0), half the step
    tracker.update([])  # coasts one update, by its velocity
    assert track.box == Box(15, 6, 40, 40)
    tracker.update([Box(30, 12, 40, 40)])
    # From where it was last seen (10, 4): 20 and 8 over two updates, averaged with the old velocity.
    assert track.velocity == (0.5 * 5 + 0.5 * 20 / 2, 0.5 * 2 + 0.5 * 8 / 2)
