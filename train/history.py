"""A training run's history.csv (Keras CSVLogger, one row per epoch): read back for resuming, the model
card and the learning-curve pictures."""

from __future__ import annotations

import csv
from pathlib import Path


def best_so_far(history_csv: Path) -> float | None:
    if not history_csv.exists():
        return None
    with open(history_csv) as fh:
        values = [float(r["val_accuracy"]) for r in csv.DictReader(fh) if r.get("val_accuracy")]
    return max(values) if values else None


def epochs_in(history_csv: Path) -> int:
    with open(history_csv) as fh:
        return sum(1 for _ in csv.DictReader(fh))


def read_history(history_csv: Path) -> dict[str, list[float]]:
    with open(history_csv) as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in (rows[0] if rows else {})}

