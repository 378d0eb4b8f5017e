"""The evaluation report: metrics.json, confusion_matrix.png and learning_curves.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.metadata import write_json_atomic
from train.data import Split


def plot_confusion(confusion: list[list[int]], labels, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="recall share")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    # Markers on every epoch: a single epoch is a point, and a line through one point draws nothing.
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        if key in history:
            ax.plot(epochs, history[key], marker="o", markersize=4, label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", markersize=4, label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key if len(epochs) != 1 else f"{key} (one epoch: a point each, no curve)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(model_path, split: Split, out_dir: Path, *, history_csv: Path | None = None,
                 split_name: str = "val", tta: str | None = None, predictor=None) -> dict:
    """Evaluate `model_path` on `split` and write the report files into out_dir; returns the metrics."""
    from train.history import read_history
    from train.predict import evaluate, load_predictor

    predictor = predictor or load_predictor(model_path)
    metrics = evaluate(predictor, split.images, split.labels, tta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = dict(metrics, model=str(model_path), split=split_name, tta=tta)
    write_json_atomic(out_dir / "metrics.json", metrics_file)
    plot_confusion(metrics["confusion"], predictor.labels, out_dir / "confusion_matrix.png",
                   f"{Path(model_path).name} on {split_name}: accuracy {metrics['accuracy']:.3f}")
    if history_csv is not None and Path(history_csv).exists():
        plot_learning_curves(read_history(Path(history_csv)), out_dir / "learning_curves.png")
    return metrics
