"""Per-face smoothing: EMA in time, hysteresis on the label, no leaking between faces."""

import numpy as np
import pytest

from edge_runtime.labels import LABELS
from edge_runtime.smoother import EmaSmoother


def onehot(label: str, weight: float = 0.9) -> np.ndarray:
    p = np.full(len(LABELS), (1 - weight) / (len(LABELS) - 1))
    p[LABELS.index(label)] = weight
    return p


def test_each_face_is_smoothed_on_its_own():
    smoother = EmaSmoother(LABELS, time_constant=1.0)
    for i in range(30):
        happy = smoother.update(1, onehot("happy"), i / 30)
        sad = smoother.update(2, onehot("sad"), i / 30)
    # A window shared across faces would blend these two into one average.
    assert happy.label == "happy" and happy.score == pytest.approx(0.9)
    assert sad.label == "sad" and sad.score == pytest.approx(0.9)


def test_hysteresis_keeps_the_label_when_two_classes_are_close():
    smoother = EmaSmoother(LABELS, time_constant=0.0, hysteresis=0.1)
    close_a = np.array([0, 0, 0, 0.48, 0.44, 0, 0.08])
    close_b = np.array([0, 0, 0, 0.44, 0.48, 0, 0.08])
    shown = [smoother.update(7, close_a if i % 2 else close_b, i / 30).label for i in range(20)]
    assert set(shown) == {"sad"}
    # A clear change still gets through.
    assert smoother.update(7, onehot("happy"), 1.0).label == "happy"


def test_ema_follows_time_not_frames():
    fast, slow = EmaSmoother(LABELS, 0.5), EmaSmoother(LABELS, 0.5)
    fast.update(1, onehot("neutral"), 0.0)
    slow.update(1, onehot("neutral"), 0.0)
    for i in range(1, 11):
        a = fast.update(1, onehot("surprise"), i * 0.05)
    b = slow.update(1, onehot("surprise"), 0.5)
    # Ten frames of 50 ms and one frame of 500 ms move the average by the same amount.
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-9)
    expected = 0.9 * (1 - np.exp(-1.0)) + (0.1 / 6) * np.exp(-1.0)
    assert b.probabilities[LABELS.index("surprise")] == pytest.approx(expected)


def test_forget_and_reset_drop_state():
    smoother = EmaSmoother(LABELS, 1.0)
    smoother.update(1, onehot("angry"), 0.0)
    smoother.update(2, onehot("fear"), 0.0)
    smoother.forget([1])
    assert len(smoother) == 1
    assert smoother.update(1, onehot("happy"), 0.1).label == "happy"
    smoother.reset()
    assert len(smoother) == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hysteresis"):
        EmaSmoother(LABELS, 0.3, hysteresis=1.5)
