"""Publish a training run as a shipped model: the .keras file, its model card and report pictures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edge_runtime.metadata import read_metadata, sha256_file, write_atomic, write_json_atomic


def publish(run_dir: Path, name: str, models_dir: Path) -> Path:
    """Copy run_dir/model.keras to models_dir/<name>.keras with the model card <name>.json beside it."""
    run_dir, models_dir = Path(run_dir), Path(models_dir)
    model = run_dir / "model.keras"
    metrics_file = run_dir / "report" / "metrics.json"
    for needed in (model, metrics_file):
        if not needed.exists():
            raise FileNotFoundError(f"{needed}: missing; is {run_dir} a finished `fer-edge train` run?")
    meta = read_metadata(model)
    metrics = json.loads(metrics_file.read_text())
    target = models_dir / f"{name}.keras"
    card = dict(meta)
    run_sha256 = sha256_file(model)
    # Before the target is replaced: a run may continue the very model it replaces (--init models/NAME.keras).
    _record_init(card, target, run_sha256)
    _record_teachers(card, target)
    previous = read_metadata(target, required=False) if target.exists() else {}
    # Publishing the same run again (to refresh the card after `fer-edge convert`) keeps the shipped bytes:
    # Keras writes a new zip (new timestamps) on every save, and the int8 build records the float model's
    # sha256 as its source.
    if previous.get("run_model_sha256") != run_sha256 or previous.get("sha256") != sha256_file(target):
        write_atomic(target, _without_training_state(model))
    report_dir = models_dir / f"{name}_report"
    report_dir.mkdir(parents=True, exist_ok=True)
    pictures = {}
    for png in ("confusion_matrix.png", "learning_curves.png"):
        if (run_dir / "report" / png).exists():
            shutil.copyfile(run_dir / "report" / png, report_dir / png)
            pictures[png.removesuffix(".png")] = f"{report_dir.name}/{png}"
    card.update(
        name=name,
        multiply_adds=_multiply_adds(target),
        sha256=sha256_file(target),
        run_model_sha256=run_sha256,
        bytes=target.stat().st_size,
        evaluation={
            "split": metrics.get("split", "val"),
            "faces": metrics["n"],
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "per_class": metrics["per_class"],
            "confusion": metrics["confusion"],
            "single_crop": not metrics.get("tta"),
        },
        report=pictures,
        tflite=_converted_siblings(models_dir, name),
    )
    write_json_atomic(models_dir / f"{name}.json", card)
    return target


def _without_training_state(model_path: Path) -> bytes:
    """The model's bytes without its optimiser: a shipped model is for inference, conversion and --init,
    and AdamW's two moments per weight would triple the file (fer_vgg: 21 MB instead of 7)."""
    import tempfile

    import keras

    model = keras.saving.load_model(model_path, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / model_path.name
        model.save(path)
        return path.read_bytes()


def _record_init(card: dict, target: Path, run_sha256: str) -> None:
    """A run started with --init continues another run: put that run's training record in the card,
    so the card holds every command that made the model, and the licence notices of the weights it started from.

    When the run started from the model it now replaces (`--init models/NAME.keras`, published as NAME),
    that model's card is the record, read before it is overwritten; publishing the same run again (to
    refresh the card after `fer-edge convert`) keeps the record the first publish made, also once the init
    file is gone (a cleaned runs/ folder)."""
    training = card.get("training") or {}
    init = (training.get("config") or {}).get("init")
    if not init:
        return
    if not Path(init).exists():
        earlier = read_metadata(target, required=False) if target.exists() else {}
        if earlier.get("run_model_sha256") == run_sha256:  # the same run again: keep what the first publish read
            if earlier.get("notices"):
                card["notices"] = earlier["notices"]
            if (earlier.get("training") or {}).get("init_from"):
                card["training"] = dict(training, init_from=earlier["training"]["init_from"])
        return
    previous = read_metadata(init, required=False)
    if previous.get("notices"):  # licences of weights it started from (train/faceapi_weights.py)
        card["notices"] = previous["notices"]
    sha256 = sha256_file(Path(init))
    if target.exists() and Path(init).resolve() == target.resolve():
        earlier = previous.get("training") or {}
        if earlier.get("command") == training.get("command") and earlier.get("init_from"):
            card["training"] = dict(training, init_from=earlier["init_from"])
            return
        sha256 = previous.get("sha256", sha256)
    card["training"] = dict(training, init_from={"model": init, "sha256": sha256,
                                                 "training": previous.get("training")})


def _record_teachers(card: dict, target: Path) -> None:
    """A distilled run names its teachers by path, and a path can be overwritten later (a run may distil
    from the very model it replaces): record which files they were (sha256, and their own model card's
    name and val accuracy) and carry their licence notices, read before the target is replaced; publishing
    the same run again keeps the record and notices the first publish made."""
    training = card.get("training") or {}
    teachers = (training.get("config") or {}).get("teacher") or []
    teachers = [teachers] if isinstance(teachers, str) else list(teachers)
    if not teachers:
        return
    earlier_card = read_metadata(target, required=False) if target.exists() else {}
    earlier = earlier_card.get("training") or {}
    if earlier.get("command") == training.get("command") and earlier.get("teachers"):
        card["training"] = dict(training, teachers=earlier["teachers"])
        _add_notices(card, earlier_card.get("notices"))
        return
    record = []
    for teacher in teachers:
        path = Path(teacher)
        if not path.exists():
            record.append({"model": teacher, "sha256": None, "note": "not found when published"})
            continue
        meta = read_metadata(path, required=False)
        evaluation = meta.get("evaluation") or {}
        record.append({"model": teacher, "sha256": sha256_file(path), "name": meta.get("name"),
                       "val_accuracy": evaluation.get("accuracy")})
        # A student learns its teachers' answers: the licences of a teacher's weights (a blend with
        # fer_faceapi carries face-api's MIT notices) travel with it as with weights it started from.
        _add_notices(card, meta.get("notices"))
    card["training"] = dict(training, teachers=record)


def _add_notices(card: dict, notices) -> None:
    """Add licence notices to the card's, each once, in the order first met."""
    if notices:
        card["notices"] = list(dict.fromkeys([*(card.get("notices") or []), *notices]))


def _multiply_adds(model_path: Path) -> int:
    import keras

    from train.architectures import count_macs

    return count_macs(keras.saving.load_model(model_path))


def _converted_siblings(models_dir: Path, name: str) -> dict:
    """Size and parity of the TFLite builds made from this model (fer-edge convert), by precision."""
    builds = {}
    for meta_file in sorted(models_dir.glob(f"{name}_*.json")):
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != "tflite":
            continue
        parity = {k: v for k, v in meta.get("parity", {}).items() if k not in ("label_confusion", "per_class")}
        builds[meta.get("precision", meta_file.stem)] = {
            "file": meta_file.with_suffix(".tflite").name,
            "size_bytes": meta.get("size_bytes"),
            "sha256": meta.get("sha256"),
            "parity": parity or None,
        }
    return builds
