"""The camera watchdog, on the real daemon with a scripted camera: read errors, a frozen picture,
no frames and an unplugged camera all end in a reopen, and processing resumes."""

import json

from edge_runtime.daemon.watchdog import Backoff, CameraWatchdog

from .conftest import Script, http_get, wait_for

FAST_WATCHDOG = {"no_frame_seconds": 5.0, "frozen_seconds": 0.3, "backoff_min": 0.05, "backoff_max": 0.2}


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_backoff_doubles_up_to_its_cap_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_frozen_means_identical_for_the_whole_period(sample_frames):
    import cv2

    gray = cv2.cvtColor(sample_frames[0], cv2.COLOR_BGR2GRAY)
    w = CameraWatchdog(no_frame_seconds=2.0, frozen_seconds=1.0)
    assert not w.frame(gray, 0.0) and not w.frame(gray.copy(), 0.9)
    assert w.frame(gray.copy(), 1.0)
    other = cv2.cvtColor(sample_frames[1], cv2.COLOR_BGR2GRAY)
    assert not w.frame(other, 1.1) and not w.stalled(3.0) and w.stalled(3.1)


def test_fails_then_freezes_then_recovers(tmp_path, start_daemon, sample_frames):
    events = tmp_path / "events.jsonl"
    script = Script(sample_frames, [{"then": "fail", "frames": 25}, {"then": "unplugged"},
                                    {"then": "freeze", "frames": 20}, {"then": "play"}])
    running = start_daemon({"camera": {"name": "flaky", "watchdog": FAST_WATCHDOG},
                            "jsonl": {"path": str(events)}, "http": {"port": 0}}, script)
    capture = running.daemon.capture
    wait_for(lambda: capture.reconnects >= 2 and capture.online, 15, "two reconnects")
    processed = running.daemon.state.frames_processed
    wait_for(lambda: running.daemon.state.frames_processed > processed + 20, 10, "processing to resume")
    status, body = http_get(running.url + "metrics")
    assert status == 200 and b'fer_edge_camera_reconnects_total{camera="flaky"} 2.0' in body
    assert running.stop() == 0
    camera = [(r["state"], r["reason"]) for r in records(events) if r["type"] == "camera"]
    assert camera[0] == ("online", "online")
    reasons = [reason for state, reason in camera if state == "offline"]
    assert any(r.startswith("read error: scripted:fail: device unplugged") for r in reasons), camera
    assert any(r.startswith("cannot open: scripted: no such camera") for r in reasons), camera
    assert any(r.startswith("frozen picture for 0.3 s") for r in reasons), camera
    # After the last reopen the camera is back online and faces are found again.
    back = max(i for i, r in enumerate(records(events)) if r["type"] == "camera" and r["state"] == "online")
    assert any(r["type"] == "new" for r in records(events)[back:])
    # Going offline ended the faces open at the time: every event that began has ended.
    face = [r for r in records(events) if r["type"] in ("new", "end")]
    assert sorted(r["id"] for r in face if r["type"] == "new") == sorted(r["id"] for r in face if r["type"] == "end")


def test_no_frames_turns_healthz_503_then_the_camera_is_reopened(start_daemon, sample_frames):
    script = Script(sample_frames, [{"then": "stall", "frames": 20, "stall": 3.0}, {"then": "play"}])
    running = start_daemon({"camera": {"name": "stall", "watchdog": {**FAST_WATCHDOG, "no_frame_seconds": 1.0}},
                            "jsonl": None, "http": {"port": 0, "healthy_within": 0.4}}, script)
    health = running.url + "healthz"
    wait_for(lambda: http_get(health)[0] == 200, 10, "healthy")
    status, body = wait_for(lambda: (r := http_get(health))[0] == 503 and r, 5, "/healthz 503")
    assert json.loads(body)["status"] == "unhealthy"
    # The watchdog gives up on the silent camera (its read never returns) and opens it again.
    wait_for(lambda: running.daemon.capture.reconnects == 1, 5, "a reconnect")
    wait_for(lambda: http_get(health)[0] == 200, 5, "healthy again")
    assert running.stop() == 0


def test_backoff_grows_while_the_camera_keeps_failing_and_restarts_after_a_healthy_period(sample_frames):
    """A camera that fails after a few frames each time is not healthy: its waits keep doubling (they used to
    start again from backoff_min at its first frame, so it reconnected 24 times in 25 s). One that stays up
    for healthy_seconds starts again from the shortest wait."""
    from edge_runtime.daemon.capture import Capture
    from edge_runtime.daemon.config import CameraConfig

    flaky = [{"then": "fail", "frames": 2, "fps": 100.0}] * 4
    script = Script(sample_frames, [*flaky, {"then": "fail", "frames": 40, "fps": 100.0}, *flaky])
    camera = CameraConfig(watchdog={"backoff_min": 0.01, "backoff_max": 5.0, "healthy_seconds": 0.2})
    capture = Capture(script, camera)
    waits = []
    next_wait = capture.backoff.next
    capture.backoff.next = lambda: waits.append(next_wait()) or waits[-1]
    capture.start()
    try:
        wait_for(lambda: script.opened >= 7, 10, "seven opens")
    finally:
        capture.stop()
    # Four short runs: 10, 20, 40, 80 ms. The fifth ran 0.4 s (healthy): the wait after it is 10 ms again.
    assert waits[:6] == [0.01, 0.02, 0.04, 0.08, 0.01, 0.02]


def test_an_unreadable_image_in_a_folder_is_skipped_and_counted(tmp_path, start_daemon, sample_frames):
    """One bad file in an image folder used to make the daemon reopen the folder over and over and never reach
    the images after it."""
    import cv2

    folder = tmp_path / "images"
    folder.mkdir()
    for i in (0, 2, 3):
        cv2.imwrite(str(folder / f"{i}.png"), sample_frames[10 * i])
    (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    events = tmp_path / "events.jsonl"
    running = start_daemon({"camera": {"name": "stills", "source": str(folder), "loop": True},
                            "jsonl": {"path": str(events)}, "http": {"port": 0}})
    capture = running.daemon.capture
    wait_for(lambda: capture.captured >= 9 and capture.unreadable >= 3, 10, "three passes over the folder")
    status, body = http_get(running.url + "metrics")
    assert status == 200 and b'fer_edge_frames_unreadable_total{camera="stills"}' in body
    assert running.stop() == 0
    assert capture.reconnects == 0
    camera = [(r["state"], r["reason"]) for r in records(events) if r["type"] == "camera"]
    assert camera == [("online", "online"), ("offline", "stopped")]
