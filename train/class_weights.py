"""`python -m train.class_weights`: per-class weights that move a model's class prior from FER2013's to that of
photographs of people, fitted on one half of wild_dev's people, held to a floor on FER2013 val.

A model learns its training set's class frequencies along with the faces: FER2013 has 14 % fear and 1.5 % disgust,
real photographs far less fear and more happy and neutral faces. Multiplying each class's probability by a weight
and renormalising (adding log-weights to the logits) is the standard correction for such a shift in the labels
(Saerens et al., 2002; logit adjustment). The weights are fitted by maximum likelihood on the faces the device's
face path finds in the photos of one half of wild_dev's people (train/wild_data.py's split, the half the face
verifier learnt from), then shrunk towards 1 (log-weights times tau, tau = 1, 0.99, ... 0) until the model's
accuracy on FER2013 val, single crop and flip-averaged, holds the floor. The other half of the people is the
honest judge: the figures for it are printed beside the fitted half's.

The weights go into a blend's graph (`fer-edge blend ... --class-weights W,W,...`), folded into its logits, so
nothing on the device changes: the int8 file simply answers with the corrected probabilities.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def positive_weight(text: str, where: str, name: str) -> float:
    """float(text), which must be a positive finite number; else a ValueError that says `where: name ...`."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive number (got {text})")
    return value


def parse_class_weights(text: str) -> list[float]:
    """'0.8,1.5,...' -> positive finite weights, one per class in the model's label order (the blend checks the
    count against its members' labels)."""
    return [positive_weight(part.strip(), f"class weights {text!r}", f"weight {i + 1}")
            for i, part in enumerate(text.split(","))]


def read_class_weights(arg: str) -> tuple[list[float], dict | None]:
    """`--class-weights`: 'W,W,...', or the JSON file `python -m train.class_weights --out` wrote -> (weights, the
    fit's record with the file's sha256, or None for numbers given by hand)."""
    if not arg.lower().endswith(".json"):
        return parse_class_weights(arg), None
    from edge_runtime.metadata import sha256_file

    path = Path(arg)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such class-weights file")
    try:
        record = json.loads(path.read_text())
        weights = record["weights"]
        if not isinstance(weights, list) or not weights:
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ValueError(f"{path}: not a class-weights file (JSON with a list of weights, as python -m "
                         "train.class_weights --out writes)") from None
    values = [positive_weight(str(w), str(path), f"weight {i + 1}") for i, w in enumerate(weights)]
    return values, {**{k: v for k, v in record.items() if k != "weights"}, "file": str(path),
                    "sha256": sha256_file(path)}


def log_bias(weights: Sequence[float]) -> np.ndarray:
    """The logits' shift for these weights: log(w) centred on 0 (a common factor changes no probability)."""
    b = np.log(np.asarray(weights, dtype=np.float64))
    return b - b.mean()


def reweighted(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """probs * exp(bias), renormalised per row."""
    p = np.asarray(probs, dtype=np.float64) * np.exp(bias)
    return p / p.sum(axis=1, keepdims=True)


def accuracy(probs: np.ndarray, labels: np.ndarray, bias: np.ndarray | None = None) -> float:
    """Share of rows whose top class (after the shift) is the label; a row of NaN (no face) is wrong."""
    probs = np.asarray(probs, dtype=np.float64)
    found = ~np.isnan(probs).any(axis=1)
    top = np.full(len(probs), -1)
    if found.any():
        shift = np.zeros(probs.shape[1]) if bias is None else bias
        top[found] = reweighted(probs[found], shift).argmax(axis=1)
    return float((top == np.asarray(labels)).mean()) if len(probs) else 0.0


def fit_bias(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The logit shift (centred) that maximises the likelihood of the labels under reweighted(probs, shift)."""
    from scipy.optimize import minimize

    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if len(probs) == 0:
        raise ValueError("no faces to fit class weights on")
    logp = np.log(np.clip(probs, 1e-6, 1.0))
    rows = np.arange(len(labels))

    def loss(b):
        z = logp + b
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        nll = -(z[rows, labels] - np.log(s[:, 0])).mean()
        q = e / s
        onehot = np.zeros_like(q)
        onehot[rows, labels] = 1.0
        return nll, (q - onehot).mean(axis=0)

    b = minimize(loss, np.zeros(probs.shape[1]), jac=True, method="L-BFGS-B").x
    return b - b.mean()


# tau is tried in steps of 0.01: the floor is met by the largest share of the fitted shift that holds it (steps of
# 0.05 left up to a twentieth of the shift unused; the fit of session 12's fer_blend took tau 0.16).
TEMPER_STEPS = 100


def temper(bias: np.ndarray, keep: Callable[[np.ndarray], bool],
           steps: int = TEMPER_STEPS) -> tuple[np.ndarray, float]:
    """(tau * bias, tau) for the largest tau in 1, 1 - 1/steps, ... 0 that keep() accepts; tau 0 (no shift) is
    taken when none is."""
    for k in range(steps, 0, -1):
        tau = k / steps
        if keep(tau * bias):
            return tau * bias, tau
    return np.zeros_like(bias), 0.0


def wild_probabilities(model: Path, photos) -> np.ndarray:
    """The face path's answer for each photo as `fer-edge detect` gives it (detection defaults, the model's crop,
    flip-averaged): the largest face's probabilities, a row of NaN where no face was found."""
    from edge_runtime.face_path import DetectionSettings
    from edge_runtime.labels import LABELS
    from train.wild_data import largest_faces

    out = np.full((len(photos), len(LABELS)), np.nan)
    for i, face in enumerate(largest_faces(photos, DetectionSettings(model=model, threads=1))):
        if face is not None:
            out[i] = face.emotion.probabilities
    return out


def val_probabilities(model: Path, data: Path, split: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(single-crop probabilities, flip-averaged probabilities, labels) of the model on a labelled split."""
    from edge_runtime.classifier import Classifier, flip_average
    from train.predict import load_split

    _, found = load_split(Path(data), split)
    classifier = Classifier(model, batch_size=64)
    single = classifier.predict(found.images)
    return single, flip_average(classifier.predict, found.images, "flip"), np.asarray(found.labels)


def fit(wild_probs, wild_labels, fit_half, val_single, val_flip, val_labels, floor: float) -> dict:
    """Fit on the wild rows of fit_half that have a face, temper against the val floor; every figure before and
    after, per half."""
    wild_probs, wild_labels, fit_half = np.asarray(wild_probs), np.asarray(wild_labels), np.asarray(fit_half, bool)
    found = ~np.isnan(wild_probs).any(axis=1)
    rows = fit_half & found
    raw = fit_bias(wild_probs[rows], wild_labels[rows])

    def keep(b):
        return accuracy(val_single, val_labels, b) >= floor and accuracy(val_flip, val_labels, b) >= floor

    bias, tau = temper(raw, keep)
    zero = np.zeros_like(bias)
    figures = {}
    for name, b in (("before", zero), ("after", bias)):
        figures[name] = {
            "val_single": accuracy(val_single, val_labels, b), "val_flip": accuracy(val_flip, val_labels, b),
            "wild_fit_half": accuracy(wild_probs[fit_half], wild_labels[fit_half], b),
            "wild_other_half": accuracy(wild_probs[~fit_half], wild_labels[~fit_half], b),
            "wild_all": accuracy(wild_probs, wild_labels, b),
        }
    weights = np.exp(bias)
    return {"weights": [round(float(w), 4) for w in weights], "tau": tau, "floor": floor,
            "fitted_faces": int(rows.sum()), "figures": figures}


def parser() -> argparse.ArgumentParser:
    from edge_runtime.cli_helpers import Bounded

    p = argparse.ArgumentParser(
        prog="python -m train.class_weights", description=__doc__.split("\n\n")[0],
        epilog="example: python -m train.class_weights --model runs/fer_blend/model_int8.tflite --out "
        "runs/fer_blend_fit.json, then fer-edge blend ... --class-weights runs/fer_blend_fit.json")
    p.add_argument("--model", type=Path, required=True, help="int8 .tflite model (with its card) to correct")
    p.add_argument("--wild", type=Path, default=Path("../shared/wild_dev"),
                   help="photos in class folders (default ../shared/wild_dev)")
    p.add_argument("--half", type=int, choices=(0, 1), default=0,
                   help="the half of the people fitted on (default 0, the half the verifier learnt from)")
    p.add_argument("--data", type=Path, default=Path("../shared/fer2013"),
                   help="FER2013 folder or CSV for the floor (default ../shared/fer2013)")
    p.add_argument("--split", default=None, help="split of --data (default: val)")
    p.add_argument("--floor", action=Bounded, kind=float, low=0, high=1, default=0.67,
                   help="accuracy the split keeps, single crop and flip-averaged, 0..1 (default 0.67)")
    p.add_argument("--out", type=Path, help="write the weights and figures here as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    from edge_runtime.metadata import sha256_file
    from train.wild_data import half, photos

    args = parser().parse_args(argv)
    try:
        pics = photos(args.wild)
        wild = wild_probabilities(args.model, pics)
        single, flip, labels = val_probabilities(args.model, args.data, args.split)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fitted = np.array([half(ph.person) == args.half for ph in pics])
    if not (fitted & ~np.isnan(wild).any(axis=1)).any():
        print(f"error: {args.wild}: no face found in the photos of half {args.half}'s people, nothing to fit on",
              file=sys.stderr)
        return 2
    result = fit(wild, [ph.label for ph in pics], fitted, single, flip, labels, args.floor)
    result.update({"model": str(args.model), "model_sha256": sha256_file(args.model), "wild": str(args.wild),
                   "half": args.half, "data": str(args.data)})
    before, after = result["figures"]["before"], result["figures"]["after"]
    for key in before:
        print(f"{key:16s} {before[key]:.4f} -> {after[key]:.4f}")
    print(f"tau {result['tau']:.2f}; --class-weights " + ",".join(f"{w:g}" for w in result["weights"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
