"""`fer-edge blend`: several trained models as one, their predictions pooled with weights, in one .keras file.

Models trained on FER2013 err alike on FER2013 but less alike on real photographs: the fast fer_mobile, weaker on
FER2013 val (62.6 % against fer_cnn's 67.5 %, flip-averaged), is right on other faces of wild_dev than fer_cnn is,
and 0.6 fer_cnn + 0.4 fer_mobile labels more of them right than either (docs/training_log.md). A blend is one
Keras graph: each member's logits (its last softmax Dense without the softmax) on the same input, scaled by its
weight, summed, then one softmax: the weighted geometric mean of the members' probabilities, renormalised. The
softmax at the end gives the int8 output the fixed 1/256 scale every model has (a sum of probabilities would be
quantised to whatever range calibration saw, and cap the top score under 1). It converts to one int8 file that the
device runs through its one interpreter loader, as any model: nothing on the device knows it is a blend.

`--class-weights` (train/class_weights.py) multiplies each class's probability by a weight and renormalises, inside
the graph: a correction of the class prior learnt from FER2013 towards that of photographs of people.

The blend is written as a run folder (model.keras, model.json, report/) for `fer-edge publish`, like a training
run: its card records each member's file, sha256, name and val accuracy, and its weight.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import ModelError
from edge_runtime.metadata import read_metadata, sha256_file, write_json_atomic
from train.class_weights import log_bias, positive_weight


@dataclass(frozen=True)
class Member:
    path: Path
    weight: float


def parse_member(text: str) -> Member:
    """'models/fer_cnn.keras:0.7' -> Member; the weight is a positive number (the last ':' separates it)."""
    path, sep, weight = text.rpartition(":")
    if not sep or not path:
        raise ValueError(f"{text!r}: expected MODEL.keras:WEIGHT, e.g. models/fer_cnn.keras:0.7")
    value = positive_weight(weight, repr(text), "weight")
    return Member(Path(path), value)


def _cards(members: list[Member]) -> list[dict]:
    """Each member's model card, checked: a .keras file with its card, all with the same labels and
    preprocessing (one crop feeds every member)."""
    if len(members) < 2:
        raise ValueError(f"a blend needs at least two models (got {len(members)})")
    if len({m.path.resolve() for m in members}) != len(members):
        raise ValueError("a blend names each model once: " + ", ".join(str(m.path) for m in members))
    cards = []
    for m in members:
        if m.path.suffix.lower() != ".keras":
            raise ValueError(f"{m.path}: a blend is made of float .keras models (got {m.path.suffix or 'no suffix'})")
        if not m.path.is_file():
            raise FileNotFoundError(f"{m.path}: no such model")
        cards.append(read_metadata(m.path))
    first = cards[0]
    for m, card in zip(members[1:], cards[1:]):
        for key in ("labels", "preprocessing"):
            if card.get(key) != first.get(key):
                raise ValueError(f"{m.path}: its {key} {card.get(key)} differ from {members[0].path}'s "
                                 f"{first.get(key)}; a blend's members must share them")
    return cards


def softmax_head(model):
    """The model's last layer, which must be a Dense with a softmax: a blend pools the logits under it."""
    import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.get_config().get("activation") != "softmax":
        raise ValueError(f"its last layer is {type(last).__name__} "
                         f"({last.get_config().get('activation', 'no activation')}), not a softmax Dense: "
                         "a blend pools the members' logits")
    return last


def member_logits(model, tag: str, shift=None):
    """`model` up to its logits: its last layer, a softmax Dense, again without the softmax (same weights; `shift`,
    one number per class, added to its bias)."""
    import keras

    last = softmax_head(model)
    head = keras.layers.Dense(last.units, name=f"logits_{tag}")
    logits = keras.Model(model.inputs, head(last.input), name=f"member_{tag}")
    kernel, bias = last.get_weights()
    head.set_weights([kernel, bias if shift is None else bias + np.asarray(shift, dtype=bias.dtype)])
    return logits


def build_blend(models: list, weights: list[float], class_weights: list[float] | None = None):
    """One Keras model: softmax of the members' logits weighted (weights normalised to sum to 1) and summed, every
    member on the same input under a name of its own. With class_weights, each class's probability is multiplied
    by its weight and renormalised: log(weight) is added to every member's logits bias, which adds it once to the
    weighted sum (the member weights sum to 1), so the graph is the same size."""
    import keras

    total = sum(weights)
    shift = None if class_weights is None else log_bias(class_weights)
    face = keras.Input(models[0].input_shape[1:], name="face")
    parts = [keras.layers.Rescaling(weight / total, name=f"weight_{i}")(member_logits(model, str(i), shift)(face))
             for i, (model, weight) in enumerate(zip(models, weights, strict=True))]
    pooled = keras.layers.Softmax(name="blend")(keras.layers.Add(name="logits")(parts))
    return keras.Model(face, pooled, name="blend")


def write_blend(members: list[Member], out: Path, *, command: str, data=None, split=None,
                split_name: str = "val", class_weights: list[float] | None = None,
                class_weights_fit: dict | None = None) -> dict:
    """OUT/model.keras (the blend), OUT/model.json (its card) and, given a labelled split, OUT/report/ (metrics.json,
    confusion matrix) for `fer-edge publish OUT --name NAME`. Returns the card."""
    import keras

    from train.architectures import count_macs

    cards = _cards(members)
    labels = cards[0]["labels"]
    if class_weights is not None and len(class_weights) != len(labels):  # before any model is loaded
        raise ValueError(f"{len(class_weights)} class weights for a model of {len(labels)} classes "
                         f"({', '.join(labels)})")
    models = []
    for m in members:
        try:
            models.append(keras.saving.load_model(m.path, compile=False))
        except Exception as exc:  # Keras raises many types for a bad file
            raise ModelError(f"{m.path}: cannot load Keras model: {exc}") from exc
    for m, model in zip(members, models):
        try:
            softmax_head(model)
        except ValueError as exc:
            raise ValueError(f"{m.path}: {exc}") from None
    blend = build_blend(models, [m.weight for m in members], class_weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    total = sum(m.weight for m in members)
    record = [{"model": str(m.path), "sha256": sha256_file(m.path), "name": card.get("name"),
               "arch": card.get("arch"), "val_accuracy": (card.get("evaluation") or {}).get("accuracy"),
               "weight": m.weight / total} for m, card in zip(members, cards)]
    card = {
        "name": "blend", "format": "keras", "labels": labels, "input": cards[0].get("input"),
        "preprocessing": cards[0]["preprocessing"], "arch": "blend",
        "parameters": int(blend.count_params()), "multiply_adds": count_macs(blend),
        "training": {"command": command, "data": str(data) if data else None, "members": record,
                     **({"class_weights": dict(zip(labels, (float(w) for w in class_weights)))}
                        if class_weights is not None else {}),
                     **({"class_weights_fit": class_weights_fit} if class_weights_fit else {})},
        "date": datetime.date.today().isoformat(),
    }
    notices = list(dict.fromkeys(n for c in cards for n in c.get("notices") or []))
    if notices:  # the licences of weights a member started from
        card["notices"] = notices
    blend.save(out / "model.keras")
    write_json_atomic(out / "model.json", card)
    if split is not None:
        from train.report import write_report

        write_report(out / "model.keras", split, out / "report", split_name=split_name)
    return card
