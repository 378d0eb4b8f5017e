"""Which models to measure: the shipped ones (found through their model cards in models/*.json),
finished training runs in runs/, and the float32 TFLite builds that latency compares with int8."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.interpreter import is_edgetpu_model
from edge_runtime.metadata import read_metadata, sha256_file, sidecar_path


@dataclass(frozen=True)
class ModelEntry:
    """One model file to measure. kind: keras, float32, int8 or edgetpu; group: shipped, run (a finished
    training run in runs/, not shipped) or peer."""

    name: str
    path: Path
    kind: str
    group: str
    family: str  # the float model it was built from (a card name), so sizes and parameters line up


def _kind(path: Path, card: dict) -> str:
    if path.suffix == ".keras":
        return "keras"
    if is_edgetpu_model(path):
        return "edgetpu"
    return "int8" if card.get("precision", "int8") in ("int8", "uint8") else card["precision"]


def shipped(models_dir: Path) -> list[ModelEntry]:
    """Every model in models/ that has a card: .keras for a keras card, .tflite otherwise."""
    entries = []
    for card_path in sorted(models_dir.glob("*.json")):
        card = json.loads(card_path.read_text())
        if not isinstance(card, dict) or "format" not in card:
            continue
        path = card_path.with_suffix(".keras" if card["format"] == "keras" else ".tflite")
        if not path.exists():
            continue
        family = Path(card.get("source_model", {}).get("file", path.name)).stem
        entries.append(ModelEntry(path.name, path, _kind(path, card), "shipped", family))
    return entries


def presets(runs_dir: Path, shipped_entries: list[ModelEntry]) -> list[ModelEntry]:
    """Finished trained runs (runs/NAME/model.keras with its card) that are not a shipped model already: not
    the same bytes, and not the run a shipped card was published from (`fer-edge publish` strips the optimiser,
    so the shipped bytes differ from the run's; the card keeps the run's sha256). A run with a backup/ folder
    is still training (or was interrupted): Keras's BackupAndRestore removes it when training ends."""
    known = {sha256_file(e.path) for e in shipped_entries if e.kind == "keras"}
    known |= {read_metadata(e.path).get("run_model_sha256") for e in shipped_entries if e.kind == "keras"} - {None}
    entries = []
    for path in sorted(runs_dir.glob("*/model.keras")):
        if (path.parent / "backup").exists() or not sidecar_path(path).exists() or sha256_file(path) in known:
            continue
        arch = read_metadata(path).get("arch", "?")
        entries.append(ModelEntry(f"runs/{path.parent.name}/model.keras ({arch})", path, "keras", "run",
                                  path.parent.name))
    return entries


def float32_tflite(keras_entry: ModelEntry, entries: list[ModelEntry], workdir: Path) -> ModelEntry:
    """A float32 TFLite build of a Keras model: the shipped one if there is one, else built now by convert's
    one model-file builder (with its full card, as `fer-edge convert` writes it)."""
    for e in entries:
        if e.family == keras_entry.family and e.kind == "float32":
            return e
    from convert.build import build_model_file

    path = build_model_file(keras_entry.path, workdir / f"{keras_entry.family}_float32.tflite", "float32").path
    return ModelEntry(f"{path.name} (converted now)", path, "float32", "shipped", keras_entry.family)

