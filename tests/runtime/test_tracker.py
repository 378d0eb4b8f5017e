"""IoU tracker: stable ids, association by overlap, follower boxes, coasting and ending."""

import pytest

from edge_runtime.boxes import Box
from edge_runtime.tracker import IouTracker


def test_ids_stay_with_their_faces_as_they_move():
    tracker = IouTracker()
    a, b = Box(10, 10, 100, 100), Box(300, 50, 80, 80)
    first = {t.box: t.id for t in tracker.update([a, b]).tracks}
    for step in range(1, 20):
        # Detections arrive in a different order every other frame; ids must follow the boxes.
        moved = [a.shifted(3 * step, 2 * step), b.shifted(-2 * step, 0)]
        tracks = tracker.update(moved[::-1] if step % 2 else moved).tracks
        ids = {t.box: t.id for t in tracks}
        assert ids[moved[0]] == first[a] and ids[moved[1]] == first[b]
    assert len({first[a], first[b]}) == 2


def test_unmatched_detection_starts_a_new_track_and_missed_track_coasts_then_ends():
    tracker = IouTracker(max_missed=2, max_undetected=5)
    (track,) = tracker.update([Box(0, 0, 50, 50)]).tracks
    tracker.update([Box(4, 0, 50, 50)])
    assert track.velocity[0] > 0
    # Missed: the box moves on with its velocity, for max_missed updates.
    for missed in (1, 2):
        update = tracker.update([Box(400, 400, 50, 50)])
        assert track in update.tracks and track.missed == missed
        assert track.box.x > 4
    update = tracker.update([])
    assert track in update.ended and track not in update.tracks
    assert [t.id for t in update.tracks] == [2]


def test_followed_box_keeps_a_track_but_only_the_detector_confirms_it():
    tracker = IouTracker(max_missed=1, max_undetected=3)
    (track,) = tracker.update([Box(100, 100, 60, 60)]).tracks
    for step in range(1, 4):
        update = tracker.update([], {track.id: Box(100 + 5 * step, 100, 60, 60)})
        assert track.missed == 0 and track.undetected == step and track.box.x == 100 + 5 * step
    update = tracker.update([], {track.id: Box(125, 100, 60, 60)})
    assert track in update.ended


def test_detection_wins_over_follower_and_part_of_a_face_starts_no_track():
    tracker = IouTracker()
    (track,) = tracker.update([Box(100, 100, 60, 60)]).tracks
    # The second box covers the top of the same face (a typical Haar false positive); the third is new.
    update = tracker.update([Box(102, 100, 64, 64), Box(95, 60, 70, 70), Box(400, 300, 60, 60)],
                            {track.id: Box(90, 100, 60, 60)})
    assert [t.id for t in update.tracks] == [track.id, track.id + 1]
    assert track.box == Box(102, 100, 64, 64) and track.undetected == 0 and track.hits == 2


def test_new_track_needs_confirming_detections_in_time():
    tracker = IouTracker(min_hits=2, confirm_within=3)
    (once,) = tracker.update([Box(0, 0, 50, 50)]).tracks
    assert not tracker.confirmed(once)
    for _ in range(2):
        assert once in tracker.update([], {once.id: Box(0, 0, 50, 50)}).tracks
    assert once in tracker.update([], {once.id: Box(0, 0, 50, 50)}).ended
    (twice,) = tracker.update([Box(0, 0, 50, 50)]).tracks
    tracker.update([Box(1, 0, 50, 50)])
    assert tracker.confirmed(twice)
    for _ in range(5):
        assert twice in tracker.update([], {twice.id: Box(1, 0, 50, 50)}).tracks


def test_ids_are_never_reused_after_reset():
    tracker = IouTracker()
    first = tracker.update([Box(0, 0, 10, 10)]).tracks[0].id
    tracker.reset()
    assert tracker.update([Box(0, 0, 10, 10)]).tracks[0].id != first


@pytest.mark.parametrize("kwargs", [{"iou_threshold": 0.0}, {"max_missed": 5, "max_undetected": 2}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        IouTracker(**kwargs)


def test_box_geometry():
    a = Box(0, 0, 10, 10)
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert Box(-5, -5, 20, 20).clipped(10, 10) == Box(0, 0, 10, 10)
    assert Box(20, 20, 5, 5).clipped(10, 10) is None
    assert Box(10, 10, 20, 20).scaled(2.0) == Box(20, 20, 40, 40)
    assert Box(10, 10, 20, 20).grown(0.5) == Box(0, 0, 40, 40)
    assert Box(0, 0, 100, 100).overlap(Box(10, 10, 20, 20)) == 1.0


def test_a_covered_face_comes_back_with_its_id_but_one_that_left_does_not():
    tracker = IouTracker(max_missed=2, max_undetected=20, remember=5)
    covered, leaving = (t.id for t in tracker.update([Box(0, 0, 50, 50), Box(200, 0, 50, 50)]).tracks)
    assert tracker.drop([leaving])[0].id == leaving
    # Nothing places the covered face for max_missed + 1 updates: it ends, out of sight.
    ended = [t.id for _ in range(3) for t in tracker.update([]).ended]
    assert ended == [covered] and tracker.tracks == []
    (back,) = tracker.update([Box(3, 0, 50, 50)]).tracks
    assert back.id == covered and tracker.confirmed(back) and back.missed == 0
    # Where the face that left was, a detection starts a new track.
    (new,) = [t for t in tracker.update([Box(3, 0, 50, 50), Box(200, 0, 50, 50)]).tracks if t.id != covered]
    assert new.id not in (covered, leaving)


def test_an_out_of_sight_face_is_forgotten_after_remember_updates():
    tracker = IouTracker(max_missed=0, max_undetected=5, remember=2)
    first = tracker.update([Box(0, 0, 50, 50)]).tracks[0].id
    for _ in range(4):
        tracker.update([])
    assert tracker.update([Box(0, 0, 50, 50)]).tracks[0].id != first


def test_a_strong_detection_is_confirmed_at_once():
    tracker = IouTracker(min_hits=2, confirm_score=4.0)
    weak, strong = tracker.update([Box(0, 0, 50, 50, score=3.9), Box(200, 0, 50, 50, score=4.0)]).tracks
    assert not tracker.confirmed(weak) and tracker.confirmed(strong)
    # The score is no part of a box's identity.
    assert Box(0, 0, 50, 50, score=1.0) == Box(0, 0, 50, 50)


def test_a_placed_track_moves_on_from_its_new_box_without_the_jump_as_speed():
    tracker = IouTracker()
    (track,) = tracker.update([Box(100, 100, 60, 60)]).tracks
    tracker.update([Box(104, 100, 60, 60)])
    assert track.velocity[0] > 0
    tracker.place(track.id, Box(400, 300, 60, 60))  # found across a cut, far from where it was
    assert track.box == Box(400, 300, 60, 60) and track.velocity == (0.0, 0.0)
    tracker.update([])  # nothing places it: it coasts from there, standing still
    assert track.box == Box(400, 300, 60, 60) and track.missed == 1
