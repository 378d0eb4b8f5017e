"""Evaluation of .keras and .tflite models on labelled faces; predict mode for unlabelled ones."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from edge_runtime.cli_helpers import CommandError
from edge_runtime.errors import FerEdgeError
from edge_runtime.preprocess import preprocess_face
from train.env import load_for_command, tensorflow_env
from train.predict import default_split, evaluate, load_predictor, predict_probs


def _open_model(path: str, **kwargs):
    try:
        return load_predictor(path, **kwargs)
    except (FerEdgeError, ImportError) as exc:
        raise CommandError(str(exc)) from exc


def evaluate_command(args) -> int:
    tensorflow_env()
    predictor = _open_model(args.model, num_threads=args.threads)
    ds = load_for_command(args.data, args.format, args.skip_bad, size=predictor.preprocessing.size)
    split_name = args.split or default_split(ds.splits)
    try:
        split = ds.split(split_name)
    except Exception as exc:
        raise CommandError(str(exc)) from exc
    if not split.labelled:
        return _write_submission(predictor, split, args)
    if args.robustness:
        if args.tta or args.report:
            raise CommandError("--robustness measures single-crop accuracy per condition and prints it: "
                               "it takes neither --tta nor --report")
        return _robustness_command(predictor, split, split_name, args)
    from train.report import write_report

    if args.report:
        history = Path(args.model).parent / "history.csv"
        metrics = write_report(args.model, split, Path(args.report), history_csv=history,
                               split_name=split_name, tta=args.tta, predictor=predictor)
    else:
        metrics = evaluate(predictor, split.images, split.labels, args.tta)
    metrics.update(model=str(args.model), data=str(args.data), split=split_name, tta=args.tta)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.model} on {args.data} [{split_name}], {metrics['n']} faces"
              f"{' (flip TTA)' if args.tta else ''}")
        print(f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}")
        print(f"{'class':10s}{'precision':>10s}{'recall':>10s}{'f1':>10s}{'support':>9s}")
        for name, m in metrics["per_class"].items():
            print(f"{name:10s}{m['precision']:10.3f}{m['recall']:10.3f}{m['f1']:10.3f}{m['support']:9d}")
    return 0


def _robustness_command(predictor, split, split_name: str, args) -> int:
    from train.robustness import format_robustness, robustness

    result = robustness(predictor, split.images, split.labels)
    result.update(model=str(args.model), data=str(args.data), split=split_name)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model} on {args.data} [{split_name}], {result['n']} faces, robustness (seed {result['seed']})")
        print(format_robustness(result))
    return 0


def _write_submission(predictor, split, args) -> int:
    """Predict mode: an unlabelled split (a `pixels`-only CSV) -> a Kaggle-style submission CSV."""
    probs = predict_probs(predictor, split.images, args.tta)
    out = Path(args.submission or "submission.csv")
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "emotion", "label"])
        for i, p in enumerate(probs):
            top = int(p.argmax())
            writer.writerow([i, top, predictor.labels[top]])
    print(f"{len(probs)} unlabelled faces: predictions written to {out}", file=sys.stderr)
    return 0


def predict_command(args) -> int:
    from train.data.image_header import quiet_decoder, read_face_image

    if Path(args.model).suffix.lower() == ".keras":
        tensorflow_env()  # Keras imports TensorFlow: its native import lines go to the log (-v), not the terminal
    predictor = _open_model(args.model, num_threads=args.threads)
    size = predictor.preprocessing.size
    with quiet_decoder():  # libjpeg's "Premature end of JPEG file" and OpenCV's warnings: to the log
        images = [read_face_image(name) for name in args.images]
    faces = []
    for name, image in zip(args.images, images):
        if isinstance(image, str):
            raise CommandError(f"{name}: {image}")
        faces.append(preprocess_face(image, size=size))
    probs = predict_probs(predictor, np.stack(faces), args.tta)
    for name, p in zip(args.images, probs):
        top = int(p.argmax())
        if args.json:
            print(json.dumps({"image": name, "label": predictor.labels[top], "score": round(float(p[top]), 6),
                              "probabilities": {lab: round(float(v), 6) for lab, v in zip(predictor.labels, p)}}))
        else:
            ranked = ", ".join(f"{predictor.labels[i]} {p[i]:.3f}" for i in np.argsort(-p)[:3])
            print(f"{name}: {predictor.labels[top]} ({ranked})")
    return 0
