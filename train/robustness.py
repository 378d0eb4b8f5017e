"""Accuracy under what real deployments do to a face (`fer-edge evaluate --robustness`).

Every condition in train.corruptions.CONDITIONS is applied to every face with a fixed seed per
condition, so two models are always judged on exactly the same corrupted faces.
"""

from __future__ import annotations

import numpy as np

from train.corruptions import CONDITIONS


def corrupted(faces: np.ndarray, condition: str, seed: int = 0) -> np.ndarray:
    """The faces under one named condition, the same for a given seed whatever the model."""
    names = list(CONDITIONS)
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(names)}")
    return CONDITIONS[condition](faces, np.random.default_rng([seed, names.index(condition)]))


def accuracy(predictor, faces: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `predictor` (anything with predict(faces) -> probabilities); 0 for no faces."""
    labels = np.asarray(labels)
    return float((predictor.predict(faces).argmax(axis=1) == labels).mean()) if len(labels) else 0.0


def robustness(predictor, faces: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> dict:
    """Clean accuracy, accuracy per condition, their mean and the mean as a fraction of clean
    ("retention": 0.92 means the model keeps 92 % of its clean accuracy on average)."""
    clean = accuracy(predictor, faces, labels)
    per = {name: accuracy(predictor, corrupted(faces, name, seed), labels) for name in CONDITIONS}
    mean = float(np.mean(list(per.values())))
    return {"n": int(len(labels)), "seed": seed, "clean": clean, "conditions": per, "mean": mean,
            "retention": mean / clean if clean else 0.0}


def format_robustness(result: dict) -> str:
    lines = [f"{'condition':14s}{'accuracy':>10s}{'of clean':>10s}",
             f"{'clean':14s}{result['clean']:10.4f}{1.0:10.3f}"]
    for name, acc in result["conditions"].items():
        lines.append(f"{name:14s}{acc:10.4f}{acc / result['clean'] if result['clean'] else 0.0:10.3f}")
    lines.append(f"{'mean':14s}{result['mean']:10.4f}{result['retention']:10.3f}")
    return "\n".join(lines)
