"""Float vs quantised model on the same labelled faces: what did quantisation cost, and where?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edge_runtime.errors import FerEdgeError
from train.predict import classification_metrics

DEFAULT_MAX_DROP_PP = 1.0


class ParityError(FerEdgeError, ValueError):
    """The two models cannot be compared (different labels or input size)."""


@dataclass(frozen=True)
class ClassDelta:
    support: int
    float_accuracy: float
    quant_accuracy: float
    delta_pp: float


@dataclass(frozen=True)
class ParityReport:
    n: int
    float_accuracy: float
    quant_accuracy: float
    float_macro_f1: float
    quant_macro_f1: float
    # Fraction of faces on which both models give the same top-1 label.
    agreement: float
    mean_abs_prob_diff: float
    per_class: dict[str, ClassDelta]
    # Rows: the float model's label, columns: the quantised model's label.
    label_confusion: list[list[int]]
    max_drop_pp: float

    @property
    def accuracy_drop_pp(self) -> float:
        return 100.0 * (self.float_accuracy - self.quant_accuracy)

    @property
    def macro_f1_drop_pp(self) -> float:
        return 100.0 * (self.float_macro_f1 - self.quant_macro_f1)

    @property
    def passed(self) -> bool:
        """The gate: top-1 accuracy may drop by at most max_drop_pp percentage points."""
        return self.accuracy_drop_pp <= self.max_drop_pp

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(accuracy_drop_pp=self.accuracy_drop_pp, macro_f1_drop_pp=self.macro_f1_drop_pp,
                   passed=self.passed)
        return out


def compare(float_model, quant_model, faces: np.ndarray, labels: np.ndarray,
            max_drop_pp: float = DEFAULT_MAX_DROP_PP) -> ParityReport:
    """Both predictors (train.predict.load_predictor objects) on the same preprocessed faces."""
    if tuple(float_model.labels) != tuple(quant_model.labels):
        raise ParityError(f"the models name different classes: {list(float_model.labels)} vs "
                          f"{list(quant_model.labels)}; comparing them would mix up labels")
    if float_model.preprocessing.size != quant_model.preprocessing.size:
        raise ParityError(f"the models take different input sizes ({float_model.preprocessing.size} vs "
                          f"{quant_model.preprocessing.size})")
    if not len(faces):
        raise ParityError("no labelled faces to compare on")
    names = tuple(float_model.labels)
    p_float, p_quant = float_model.predict(faces), quant_model.predict(faces)
    y_float, y_quant = p_float.argmax(axis=1), p_quant.argmax(axis=1)
    m_float = classification_metrics(labels, y_float, names)
    m_quant = classification_metrics(labels, y_quant, names)
    per_class = {
        name: ClassDelta(
            support=m_float["per_class"][name]["support"],
            float_accuracy=m_float["per_class"][name]["recall"],
            quant_accuracy=m_quant["per_class"][name]["recall"],
            delta_pp=100.0 * (m_quant["per_class"][name]["recall"] - m_float["per_class"][name]["recall"]),
        )
        for name in names
    }
    # Reuse the confusion matrix with the float model's labels standing in for the truth.
    label_confusion = classification_metrics(y_float, y_quant, names)["confusion"]
    return ParityReport(
        n=int(len(labels)),
        float_accuracy=m_float["accuracy"], quant_accuracy=m_quant["accuracy"],
        float_macro_f1=m_float["macro_f1"], quant_macro_f1=m_quant["macro_f1"],
        agreement=float(np.mean(y_float == y_quant)),
        mean_abs_prob_diff=float(np.mean(np.abs(p_float - p_quant))),
        per_class=per_class, label_confusion=label_confusion, max_drop_pp=float(max_drop_pp),
    )


def format_report(report: ParityReport, float_name: str, quant_name: str) -> str:
    """A few lines for a terminal. Changes read quantised minus float: -0.33 pp means the quantised model
    is 0.33 points less accurate."""
    names = list(report.per_class)
    lines = [
        f"{report.n} faces   {'':14s}{'float':>10s}{'quantised':>11s}   quantised vs float",
        f"{'accuracy':31s}{report.float_accuracy:10.4f}{report.quant_accuracy:11.4f}   "
        f"{-report.accuracy_drop_pp:+.2f} pp (gate: at most {report.max_drop_pp:g} pp lower)",
        f"{'macro-F1':31s}{report.float_macro_f1:10.4f}{report.quant_macro_f1:11.4f}   "
        f"{-report.macro_f1_drop_pp:+.2f} pp",
        f"top-1 agreement {report.agreement:.4f}   mean |p_float - p_quant| {report.mean_abs_prob_diff:.5f}",
        f"{'class':10s}{'support':>8s}{'float acc':>11s}{'quant acc':>11s}{'change pp':>11s}",
    ]
    for name, c in report.per_class.items():
        lines.append(f"{name:10s}{c.support:8d}{c.float_accuracy:11.4f}{c.quant_accuracy:11.4f}{c.delta_pp:+11.2f}")
    lines.append(f"top-1 labels: {float_name} (float, rows) vs {quant_name} (quantised, columns):")
    lines.append(f"{'':10s}" + "".join(f"{n[:5]:>6s}" for n in names))
    lines.extend(f"{name:10s}" + "".join(f"{v:6d}" for v in row) for name, row in zip(names, report.label_confusion))
    drop = report.accuracy_drop_pp
    change = f"{abs(drop):.2f} pp {'lower' if drop > 0 else 'higher'}" if round(drop, 2) else "the same"
    if report.passed:
        lines.append(f"PASS: quantised accuracy {change}, within the gate (at most {report.max_drop_pp:g} pp lower)")
    else:
        lines.append(f"FAIL: quantised accuracy {change}, more than the gate allows ({report.max_drop_pp:g} pp)")
    return "\n".join(lines)
