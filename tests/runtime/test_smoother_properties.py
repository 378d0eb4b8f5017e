"""The smoother's label rule, stated and tried over many probability sequences: the shown label changes
only when another class's smoothed probability leads it by more than the hysteresis, and then it
changes to the leader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.labels import LABELS
from edge_runtime.smoother import EmaSmoother

HAPPY, SAD, NEUTRAL = LABELS.index("happy"), LABELS.index("sad"), LABELS.index("neutral")


def probs(**weights: float) -> np.ndarray:
    """Probabilities with the named classes set and the rest 0 (dyadic values add up exactly)."""
    p = np.zeros(len(LABELS))
    for name, w in weights.items():
        p[LABELS.index(name)] = w
    return p


@pytest.mark.parametrize("hysteresis", [0.125, 0.25])
def test_a_lead_of_exactly_the_hysteresis_keeps_the_label_and_more_changes_it(hysteresis):
    smoother = EmaSmoother(LABELS, time_constant=0.0, hysteresis=hysteresis)
    assert smoother.update(1, probs(happy=0.5, sad=0.5), 0.0).label == "happy"  # a tie: the first class
    # Sad leads by half the hysteresis, then by exactly the hysteresis: happy stays.
    assert smoother.update(1, probs(happy=0.5 - hysteresis / 2, sad=0.5 + hysteresis / 2), 0.1).label == "happy"
    assert smoother.update(1, probs(happy=0.5 - hysteresis, sad=0.5), 0.2).label == "happy"
    # A lead of a little more than the hysteresis changes the label.
    changed = smoother.update(1, probs(happy=0.5 - hysteresis - 1 / 64, sad=0.5), 0.3)
    assert changed.label == "sad" and changed.score == 0.5


def test_the_label_goes_to_the_leader_not_to_the_runner_up():
    smoother = EmaSmoother(LABELS, time_constant=0.0, hysteresis=0.125)
    smoother.update(1, probs(happy=1.0), 0.0)
    shown = smoother.update(1, probs(happy=0.125, sad=0.25, neutral=0.625), 0.1)
    assert shown.label == "neutral" and shown.score == 0.625


def test_zero_hysteresis_follows_any_lead():
    smoother = EmaSmoother(LABELS, time_constant=0.0, hysteresis=0.0)
    smoother.update(1, probs(happy=0.5, sad=0.5), 0.0)
    assert smoother.update(1, probs(happy=0.5, sad=0.5), 0.1).label == "happy"
    assert smoother.update(1, probs(happy=0.4375, sad=0.5625), 0.2).label == "sad"


def test_the_average_moves_by_the_time_weight_and_a_repeated_time_changes_nothing():
    smoother = EmaSmoother(LABELS, time_constant=0.5, hysteresis=0.0)
    smoother.update(1, probs(happy=1.0), 1.0)
    # Same time stamp: weight 0, the average stays.
    assert smoother.update(1, probs(sad=1.0), 1.0).probabilities[HAPPY] == 1.0
    shown = smoother.update(1, probs(sad=1.0), 1.5)
    assert shown.probabilities[SAD] == pytest.approx(1 - math.exp(-1.0))
    assert shown.probabilities[HAPPY] == pytest.approx(math.exp(-1.0))
    assert shown.label == "sad" and shown.score == pytest.approx(1 - math.exp(-1.0))


def test_current_shows_the_state_without_moving_it():
    smoother = EmaSmoother(LABELS, time_constant=1.0)
    assert smoother.current(3) is None
    first = smoother.update(3, probs(neutral=0.75, happy=0.25), 0.0)
    assert smoother.current(3) == first and smoother.current(3).label == "neutral"
    assert smoother.current(4) is None


@pytest.mark.parametrize(("time_constant", "hysteresis"), [(-0.1, 0.1), (0.3, -0.01), (0.3, 1.0)])
def test_settings_out_of_range_are_refused(time_constant, hysteresis):
    with pytest.raises(ValueError, match="time_constant must be >= 0 and hysteresis in"):
        EmaSmoother(LABELS, time_constant, hysteresis)


def test_edge_settings_are_accepted():
    assert EmaSmoother(LABELS, 0.0, 0.0).hysteresis == 0.0
    assert EmaSmoother(LABELS, 0.0, 0.99).time_constant == 0.0


distributions = st.lists(st.floats(0.0, 1.0), min_size=len(LABELS), max_size=len(LABELS)).filter(
    lambda w: sum(w) > 1e-3).map(lambda w: np.array(w) / sum(w))


@settings(max_examples=150, deadline=None)
@given(
    hysteresis=st.floats(0.0, 0.9),
    time_constant=st.sampled_from([0.0, 0.05, 0.3, 2.0]),
    steps=st.lists(st.tuples(distributions, st.floats(0.0, 0.5)), min_size=1, max_size=25),
)
def test_label_changes_only_on_a_lead_above_the_hysteresis(hysteresis, time_constant, steps):
    smoother = EmaSmoother(LABELS, time_constant=time_constant, hysteresis=hysteresis)
    time, shown = 0.0, None
    for p, dt in steps:
        time += dt
        now = smoother.update(5, p, time)
        sp = np.array(now.probabilities)
        label = LABELS.index(now.label)
        assert now.score == sp[label]
        if shown is None:
            assert label == int(np.argmax(p))  # a new face shows its first top class
        elif label != shown:
            # Changed: to the leader, which beats the old label by more than the hysteresis.
            assert label == int(np.argmax(sp)) and sp[label] - sp[shown] > hysteresis
        else:
            # Kept: nobody leads the shown label by more than the hysteresis.
            assert sp.max() - sp[label] <= hysteresis
        shown = label


def test_default_time_constant_is_three_tenths_of_a_second():
    smoother = EmaSmoother(LABELS)
    smoother.update(1, probs(happy=1.0), 0.0)
    assert smoother.update(1, probs(sad=1.0), 0.3).probabilities[SAD] == pytest.approx(1 - math.exp(-1.0))


def test_integer_probabilities_are_averaged_as_floats():
    smoother = EmaSmoother(LABELS, time_constant=1.0, hysteresis=0.0)
    smoother.update(1, [0, 0, 0, 1, 0, 0, 0], 0.0)
    shown = smoother.update(1, [0, 0, 0, 0, 1, 0, 0], 1.0)
    assert shown.probabilities[SAD] == pytest.approx(1 - math.exp(-1.0)) and shown.label == "sad"


def test_forgetting_an_unknown_face_is_harmless():
    smoother = EmaSmoother(LABELS)
    smoother.update(1, probs(happy=1.0), 0.0)
    smoother.forget([1, 2, 99])
    assert len(smoother) == 0
