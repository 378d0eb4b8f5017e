"""The watchdog's clocks, measured with stated time stamps: a changed frame restarts the frozen clock,
every frame restarts the no-frame clock, a reopened camera restarts both."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.daemon.watchdog import Backoff, CameraWatchdog


def picture(value: int = 0) -> np.ndarray:
    return np.full((48, 64), value, np.uint8)


def test_a_changed_frame_restarts_the_frozen_clock():
    w = CameraWatchdog(no_frame_seconds=5.0, frozen_seconds=0.3)
    assert not w.frame(picture(0), 0.0) and not w.frame(picture(0), 0.2)
    assert not w.frame(picture(1), 0.25)  # the picture changes
    # 0.5 s after the first frame but only 0.25 s after the change: not frozen yet.
    assert not w.frame(picture(1), 0.5)
    # Frozen once identical for the whole 0.3 s since the change (and not a moment before).
    assert not w.frame(picture(1), 0.5499)
    assert w.frame(picture(1), 0.55) and w.frame(picture(1), 9.0)
    # Any change ends it, and the clock starts from that frame again.
    assert not w.frame(picture(2), 9.1) and not w.frame(picture(2), 9.3) and w.frame(picture(2), 9.4)


def test_a_change_anywhere_on_the_sampled_grid_counts():
    w = CameraWatchdog(no_frame_seconds=5.0, frozen_seconds=0.3)
    base = picture(0)
    w.frame(base, 0.0)
    for i, (y, x) in enumerate([(0, 0), (4, 8), (44, 60), (20, 4)], start=1):
        changed = base.copy()
        changed[y, x] = 255
        assert not w.frame(changed, 0.3 * i), (y, x)
        base = changed


def test_frozen_detection_off_at_zero():
    w = CameraWatchdog(no_frame_seconds=5.0, frozen_seconds=0.0)
    assert not any(w.frame(picture(), t) for t in (0.0, 1.0, 100.0))


def test_the_no_frame_clock_runs_from_the_last_frame():
    w = CameraWatchdog(no_frame_seconds=2.0, frozen_seconds=0.0)
    w.reset(10.0)
    assert not w.stalled(11.999) and w.stalled(12.0)
    w.frame(picture(), 11.5)
    assert not w.stalled(13.4) and w.stalled(13.5)
    assert w.last_frame == 11.5


def test_reopening_restarts_both_clocks_and_forgets_the_picture():
    w = CameraWatchdog(no_frame_seconds=2.0, frozen_seconds=0.3)
    w.frame(picture(7), 0.0)
    assert w.frame(picture(7), 1.0)
    w.reset(5.0)
    assert not w.stalled(6.9) and w.stalled(7.0)
    # The same picture after a reopen is a first frame, not the frozen one continuing.
    assert not w.frame(picture(7), 5.1) and not w.frame(picture(7), 5.3) and w.frame(picture(7), 5.4)


def test_frozen_from_exactly_the_frozen_time():
    # Times that binary floating point holds exactly, so the boundary itself is tried.
    w = CameraWatchdog(no_frame_seconds=5.0, frozen_seconds=0.5)
    w.frame(picture(0), 0.25)
    assert not w.frame(picture(0), 0.5) and w.frame(picture(0), 0.75)


def test_a_new_watchdog_counts_from_time_zero():
    w = CameraWatchdog(no_frame_seconds=1.0, frozen_seconds=0.5)
    assert w.last_frame == 0.0 and w.last_change == 0.0 and not w.stalled(0.99) and w.stalled(1.0)


@pytest.mark.parametrize(("low", "high", "expected"), [(0.5, 3.0, [0.5, 1.0, 2.0, 3.0, 3.0]),
                                                       (1.0, 100.0, [1.0, 2.0, 4.0, 8.0, 16.0])])
def test_backoff_doubles_from_low_to_high(low, high, expected):
    b = Backoff(low, high)
    assert [b.next() for _ in range(5)] == expected and b.failures == 5


def test_backoff_after_very_many_failures_stays_at_its_cap():
    b = Backoff(0.1, 60.0)
    for _ in range(2000):
        delay = b.next()
    assert delay == 60.0 and b.failures == 2000
    b.reset()
    assert b.failures == 0 and b.next() == 0.1
