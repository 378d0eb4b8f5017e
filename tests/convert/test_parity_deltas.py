"""Parity figures on predictions that can be counted by hand: neither model is perfect, and they disagree.

The session's tiny model is ~100 % accurate, so on it agreement equals accuracy and every per-class
delta is 0: a report that mixed those up would still pass. Here the two "models" are recorded
predictions (face i -> row i of a probability table), the figures below were counted by hand, and each
one differs from the figure a plausible bug would give.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convert.parity import ParityError, compare, format_report
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import Preprocessing

TRUTH = np.array([0, 0, 1, 1, 2, 2])
FLOAT_TOP = [0, 0, 1, 2, 2, 2]  # right on 5 of 6 faces
QUANT_TOP = [0, 1, 1, 1, 2, 0]  # right on 4 of 6; same label as the float model on faces 0, 2 and 4


def table(tops: list[int]) -> np.ndarray:
    p = np.full((len(tops), len(LABELS)), 0.05)
    p[np.arange(len(tops)), tops] = 0.7
    return p


class Recorded:
    """A predictor (the interface of train.predict.load_predictor) that replays a probability table."""

    def __init__(self, probabilities: np.ndarray, labels=LABELS, size: int = 48):
        self.probabilities = probabilities
        self.labels = tuple(labels)
        self.preprocessing = Preprocessing(size=size)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self.probabilities[faces]


FACES = np.arange(len(TRUTH))


def report(max_drop_pp: float = 1.0):
    return compare(Recorded(table(FLOAT_TOP)), Recorded(table(QUANT_TOP)), FACES, TRUTH, max_drop_pp)


def test_accuracy_agreement_and_probability_difference():
    r = report()
    assert r.n == 6
    assert r.float_accuracy == pytest.approx(5 / 6) and r.quant_accuracy == pytest.approx(4 / 6)
    # Agreement is float label vs quantised label (3 of 6), not either model against the truth.
    assert r.agreement == pytest.approx(3 / 6)
    # Three faces differ by 0.65 at two of seven entries each, over 6 x 7 entries.
    assert r.mean_abs_prob_diff == pytest.approx(3 * 2 * 0.65 / 42)
    assert r.accuracy_drop_pp == pytest.approx(100 / 6)


def test_macro_f1_over_all_seven_classes():
    r = report()
    # float: F1 1, 2/3 and 0.8 on classes 0-2; quantised: 0.5, 0.8 and 2/3; the four unseen classes count 0.
    assert r.float_macro_f1 == pytest.approx((1 + 2 / 3 + 0.8) / 7)
    assert r.quant_macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 7)
    assert r.macro_f1_drop_pp == pytest.approx(100 * (1 + 2 / 3 + 0.8 - 0.5 - 0.8 - 2 / 3) / 7)


def test_per_class_deltas_are_quantised_minus_float():
    per_class = report().per_class
    assert list(per_class) == list(LABELS)
    angry, disgust, fear = per_class["angry"], per_class["disgust"], per_class["fear"]
    assert (angry.support, angry.float_accuracy, angry.quant_accuracy, angry.delta_pp) == (2, 1.0, 0.5, -50.0)
    # The quantised model is better on disgust: a positive delta.
    assert (disgust.support, disgust.float_accuracy, disgust.quant_accuracy, disgust.delta_pp) == (2, 0.5, 1.0, 50.0)
    assert (fear.support, fear.float_accuracy, fear.quant_accuracy, fear.delta_pp) == (2, 1.0, 0.5, -50.0)
    for name in LABELS[3:]:
        assert per_class[name].support == 0 and per_class[name].delta_pp == 0.0


def test_label_confusion_rows_are_float_labels_and_columns_quantised():
    confusion = np.array(report().label_confusion)
    expected = np.zeros((7, 7), int)
    for f, q in zip(FLOAT_TOP, QUANT_TOP):
        expected[f, q] += 1
    np.testing.assert_array_equal(confusion, expected)
    assert confusion[0, 1] == 1 and confusion[1, 0] == 0  # not symmetric: the orientation matters


def test_gate_allows_a_drop_up_to_and_including_the_maximum():
    assert not report(1.0).passed
    exact = report().accuracy_drop_pp
    assert report(exact).passed
    assert not report(exact - 1e-9).passed
    assert report(20).max_drop_pp == 20.0 and isinstance(report(20).max_drop_pp, float)
    # A quantised model better than the float one passes any gate, even 0.
    better = compare(Recorded(table(QUANT_TOP)), Recorded(table(FLOAT_TOP)), FACES, TRUTH, 0.0)
    assert better.accuracy_drop_pp == pytest.approx(-100 / 6) and better.passed


def test_to_dict_carries_the_derived_figures():
    d = report().to_dict()
    assert d["accuracy_drop_pp"] == pytest.approx(100 / 6)
    assert d["macro_f1_drop_pp"] == pytest.approx(report().macro_f1_drop_pp)
    assert d["passed"] is False
    assert d["per_class"]["disgust"]["delta_pp"] == 50.0 and d["agreement"] == pytest.approx(0.5)


def test_format_report_text():
    text = format_report(report(), "f.keras", "q.tflite")
    expected = (
        "6 faces                      float  quantised   quantised vs float\n"
        "accuracy                           0.8333     0.6667   -16.67 pp (gate: at most 1 pp lower)\n"
        "macro-F1                           0.3524     0.2810   -7.14 pp\n"
        "top-1 agreement 0.5000   mean |p_float - p_quant| 0.09286\n"
        "class      support  float acc  quant acc  change pp\n"
        "angry            2     1.0000     0.5000     -50.00\n"
        "disgust          2     0.5000     1.0000     +50.00\n"
        "fear             2     1.0000     0.5000     -50.00\n"
        "happy            0     0.0000     0.0000      +0.00\n"
        "sad              0     0.0000     0.0000      +0.00\n"
        "surprise         0     0.0000     0.0000      +0.00\n"
        "neutral          0     0.0000     0.0000      +0.00\n"
        "top-1 labels: f.keras (float, rows) vs q.tflite (quantised, columns):\n"
        "           angry disgu  fear happy   sad surpr neutr\n"
        "angry          1     1     0     0     0     0     0\n"
        "disgust        0     1     0     0     0     0     0\n"
        "fear           1     1     1     0     0     0     0\n"
        "happy          0     0     0     0     0     0     0\n"
        "sad            0     0     0     0     0     0     0\n"
        "surprise       0     0     0     0     0     0     0\n"
        "neutral        0     0     0     0     0     0     0\n"
        "FAIL: quantised accuracy 16.67 pp lower, more than the gate allows (1 pp)"
    )
    assert text == expected
    assert format_report(report(20), "f", "q").endswith(
        "PASS: quantised accuracy 16.67 pp lower, within the gate (at most 20 pp lower)")
    # A quantised model that is more accurate reads as a gain, not as a negative drop.
    better = compare(Recorded(table(QUANT_TOP)), Recorded(table(FLOAT_TOP)), FACES, TRUTH, 1.0)
    lines = format_report(better, "f", "q").splitlines()
    assert lines[1].endswith("+16.67 pp (gate: at most 1 pp lower)")
    assert lines[-1] == "PASS: quantised accuracy 16.67 pp higher, within the gate (at most 1 pp lower)"


def test_models_that_cannot_be_compared_are_refused():
    good = Recorded(table(FLOAT_TOP))
    with pytest.raises(ParityError, match=r"different classes: \['angry'.*\] vs \['disgust'"):
        compare(good, Recorded(table(QUANT_TOP), labels=LABELS[1:] + LABELS[:1]), FACES, TRUTH)
    with pytest.raises(ParityError, match=r"different input sizes \(48 vs 64\)"):
        compare(good, Recorded(table(QUANT_TOP), size=64), FACES, TRUTH)
    with pytest.raises(ParityError, match="^no labelled faces to compare on$"):
        compare(good, Recorded(table(QUANT_TOP)), FACES[:0], TRUTH[:0])


def test_a_model_with_its_own_classes_is_reported_in_its_own_classes():
    names = ("calm", "smile", "frown")

    def three(tops):
        p = np.full((len(tops), 3), 0.1)
        p[np.arange(len(tops)), tops] = 0.8
        return Recorded(p, labels=names)

    r = compare(three([0, 1, 2, 1]), three([0, 1, 2, 2]), np.arange(4), np.array([0, 1, 2, 0]))
    assert r.agreement == 0.75 and r.float_accuracy == 0.75 and r.quant_accuracy == 0.75
    assert list(r.per_class) == list(names)
    assert r.per_class["frown"].support == 1 and r.per_class["calm"].quant_accuracy == 0.5
    assert r.label_confusion == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert r.float_macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


@pytest.mark.parametrize(("float_accuracy", "quant_accuracy", "verdict"), [
    (0.5, 0.5, "PASS: quantised accuracy the same, within the gate (at most 1 pp lower)"),
    (0.5, 0.49996, "PASS: quantised accuracy the same, within the gate (at most 1 pp lower)"),  # -0.004 pp
    (0.5, 0.495, "PASS: quantised accuracy 0.50 pp lower, within the gate (at most 1 pp lower)"),
    (0.5, 0.496, "PASS: quantised accuracy 0.40 pp lower, within the gate (at most 1 pp lower)"),
    (0.5, 0.505, "PASS: quantised accuracy 0.50 pp higher, within the gate (at most 1 pp lower)"),
])
def test_the_verdict_line_rounds_a_change_to_the_hundredth(float_accuracy, quant_accuracy, verdict):
    r = dataclasses.replace(report(1.0), float_accuracy=float_accuracy, quant_accuracy=quant_accuracy)
    assert format_report(r, "f", "q").splitlines()[-1] == verdict
