"""Workstation commands: `data stats`, `train`, `blend`, `evaluate`, `predict`, `publish` (need the [train] extra).
`verifier train` trains here too but builds its int8 file with convert, so it registers from convert/cli.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_runtime.cli_helpers import Bounded, CommandError, add_command
from train.data import FORMATS, DataError
from train.env import command_line, data_args, load_for_command, need_train_extra, tensorflow_env


def cmd_data_stats(args) -> int:
    ds = load_for_command(args.path, args.format, args.skip_bad)
    from edge_runtime.labels import LABELS

    if args.json:
        print(json.dumps({"path": ds.path, "format": ds.format, "skipped": len(ds.skipped),
                          "splits": {n: {"faces": len(s), "classes": s.class_counts() if s.labelled else None}
                                     for n, s in ds.splits.items()}}))
        return 0
    print(f"{ds.path} ({ds.format})")
    print(f"{'split':8s}{'faces':>8s}" + "".join(f"{name:>10s}" for name in LABELS))
    for name, split in ds.splits.items():
        counts = split.class_counts() if split.labelled else {}
        print(f"{name:8s}{len(split):8d}" + "".join(f"{counts.get(c, '-'):>10}" for c in LABELS))
    if ds.skipped:
        print(f"skipped: {len(ds.skipped)}")
    return 0


def _resume_hint(command: str, out: Path) -> str:
    """One line after Ctrl-C: the command that continues the run (Keras backs up at each epoch's end)."""
    if not (out / "backup").is_dir():
        return f"fer-edge train: interrupted before the first epoch ended, nothing to resume; start again: {command}"
    if " --resume " not in f"{command} ":
        command += " --resume"
    return f"fer-edge train: interrupted; continue this run with: {command}"


def cmd_train(args) -> int:
    tensorflow_env()
    need_train_extra()
    from train.architectures import get_arch
    from train.augment import AUGMENTS
    from train.trainer import TrainConfig, train

    try:
        arch = get_arch(args.arch)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc
    if args.train_on_val and args.patience:
        raise CommandError("--train-on-val: val selects nothing then; pass --patience 0 (and the --epochs an "
                           "earlier run chose on val)", 2)
    ds = load_for_command(args.data, args.format, args.skip_bad, size=arch.input_size)
    try:
        tr, va = ds.split("train"), ds.split(args.val_split)
    except DataError as exc:
        raise CommandError(str(exc)) from exc
    if not (tr.labelled and va.labelled):
        raise CommandError(f"{args.data}: training needs labelled train and {args.val_split} splits")
    if args.train_on_val:
        import numpy as np

        from train.data import Split

        tr = Split(np.concatenate([tr.images, va.images]), np.concatenate([tr.labels, va.labels]),
                   list(tr.sources) + list(va.sources))
    cfg = TrainConfig(
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        schedule=args.schedule, label_smoothing=args.label_smoothing, class_weight=args.class_weight,
        patience=args.patience, seed=args.seed, max_steps_per_epoch=args.max_steps,
        teacher=(args.teacher[0] if args.teacher and len(args.teacher) == 1 else args.teacher),
        distill=args.distill, init=args.init, precision=args.precision,
        augment=AUGMENTS["none" if args.no_augment else args.augment],
        keep="last" if args.train_on_val else "best",
    )
    command = command_line()
    try:
        meta = train(tr, va, cfg, Path(args.out), resume=args.resume, command=command, data_path=args.data,
                     verbose=1 if sys.stderr.isatty() else 2)
    except (RuntimeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        print(_resume_hint(command, Path(args.out)), file=sys.stderr)
        return 130
    from train.report import write_report

    report = write_report(Path(args.out) / "model.keras", va, Path(args.out) / "report",
                          history_csv=Path(args.out) / "history.csv", split_name=args.val_split)
    print(f"model: {Path(args.out) / 'model.keras'}  val accuracy {report['accuracy']:.4f}  "
          f"macro-F1 {report['macro_f1']:.4f}  ({meta['parameters']:,} parameters)"
          + (f"  [{args.val_split} was trained on: these figures are not a held-out measure]"
             if args.train_on_val else ""))
    return 0


def cmd_evaluate(args) -> int:
    from train.evaluate import evaluate_command

    return evaluate_command(args)


def cmd_predict(args) -> int:
    from train.evaluate import predict_command

    return predict_command(args)


def cmd_publish(args) -> int:
    tensorflow_env()  # publish loads the model with Keras: TensorFlow's import lines go to the log
    from train.publish import publish

    try:
        target = publish(Path(args.run), args.name, Path(args.models))
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"published {target} with model card {target.with_suffix('.json')}")
    return 0


def cmd_blend(args) -> int:
    tensorflow_env()
    from train.blend import parse_member, write_blend
    from train.class_weights import read_class_weights
    from train.predict import default_split

    try:
        members = [parse_member(text) for text in args.members]
        class_weights, fit = (None, None) if args.class_weights is None else read_class_weights(args.class_weights)
        split = split_name = None
        if args.data:
            ds = load_for_command(args.data, args.format, args.skip_bad)
            split_name = args.split or default_split(ds.splits)
            split = ds.split(split_name)
        card = write_blend(members, Path(args.out), command=command_line(),
                           data=args.data, split=split, split_name=split_name or "val",
                           class_weights=class_weights, class_weights_fit=fit)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    shares = ", ".join(f"{m['name'] or m['model']} {m['weight']:.2f}" for m in card["training"]["members"])
    print(f"{args.out}/model.keras: blend of {shares}; {card['multiply_adds'] / 1e6:.1f} M multiply-adds per face")
    if split is not None:
        metrics = json.loads((Path(args.out) / "report" / "metrics.json").read_text())
        print(f"{split_name}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} (single crop)")
    print(f"next: fer-edge publish {args.out} --name NAME, then fer-edge convert --model models/NAME.keras --int8")
    return 0


def register(sub) -> None:
    add_data_command(sub)
    add_train_command(sub)
    add_blend_command(sub)
    add_evaluate_command(sub)
    add_predict_command(sub)
    add_publish_command(sub)


def add_data_command(sub) -> None:
    data = add_command(sub, "data", help="Inspect FER2013 data in any supported form.",
                       example="fer-edge data stats ../shared/fer2013")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    stats = add_command(data_sub, "stats", help="Per-split, per-class face counts.",
                        example="fer-edge data stats fer2013.csv")
    stats.add_argument("path")
    stats.add_argument("--format", choices=FORMATS, help="force the data format (default: detected from the path: "
                       ".csv, .bin/.dat or image folders)")
    stats.add_argument("--skip-bad", action="store_true", help="skip bad records (counted) instead of failing")
    stats.add_argument("--json", action="store_true", help="one JSON object on stdout")
    stats.set_defaults(func=cmd_data_stats)


def add_train_command(sub) -> None:
    from train.trainer import TrainConfig

    d = TrainConfig()
    tr = add_command(sub, "train", help="Train a float Keras model on FER2013 and write its report.",
                     example="fer-edge train --data ../shared/fer2013 --epochs 40 --out runs/fer_vgg")
    data_args(tr)
    tr.add_argument("--arch", default=d.arch, help=f"network preset (default {d.arch}; see README)")
    _optimiser_args(tr, d)
    _regularisation_args(tr, d)
    _teacher_args(tr, d)
    tr.add_argument("--seed", action=Bounded, low=0, default=d.seed,
                    help="random seed for initialisation, shuffling and augmentation (default %(default)s)")
    tr.add_argument("--max-steps", action=Bounded, low=1, help="cap steps per epoch (smoke runs)")
    tr.add_argument("--val-split", default="val", help="split used to select the best epoch (default val)")
    tr.add_argument("--train-on-val", action="store_true",
                    help="a final cycle: train on train + the --val-split faces for exactly --epochs epochs (chosen "
                    "on val by an earlier run) and keep the last epoch; the val figures then measure faces the "
                    "model trained on (needs --patience 0)")
    tr.add_argument("--out", default="runs/train", help="output folder for model.keras, model.json and report/ "
                    "(default %(default)s)")
    tr.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    tr.set_defaults(func=cmd_train)


def _optimiser_args(tr: argparse.ArgumentParser, d) -> None:
    """`train`: epochs, batch, optimiser and learning-rate schedule."""
    tr.add_argument("--epochs", action=Bounded, low=1, default=d.epochs, help="passes over the training split "
                    "(default %(default)s)")
    tr.add_argument("--batch-size", action=Bounded, low=1, default=d.batch_size, help="faces per training step "
                    "(default %(default)s)")
    tr.add_argument("--optimizer", choices=("adamw", "sgd", "adam"), default=d.optimizer,
                    help="adamw, sgd (Nesterov momentum 0.9) or adam (no weight decay) (default %(default)s)")
    tr.add_argument("--lr", action=Bounded, kind=float, above=0, default=d.learning_rate,
                    help="peak learning rate (default %(default)s)")
    tr.add_argument("--weight-decay", action=Bounded, kind=float, low=0, default=d.weight_decay,
                    help="the optimizer's weight decay, for adamw and sgd (default %(default)s)")
    tr.add_argument("--warmup-epochs", action=Bounded, kind=float, low=0, default=d.warmup_epochs,
                    help="epochs of linear warm-up to the peak learning rate (default %(default)s)")
    tr.add_argument("--schedule", choices=("cosine", "onecycle", "constant"), default=d.schedule,
                    help="learning-rate schedule after the warm-up (default %(default)s)")


def _regularisation_args(tr: argparse.ArgumentParser, d) -> None:
    """`train`: label smoothing, class weights, early stopping, the starting weights, augmentation."""
    from train.augment import AUGMENTS

    tr.add_argument("--label-smoothing", action=Bounded, kind=float, low=0, below=1, default=d.label_smoothing,
                    help="share of each target moved evenly onto the other classes (default %(default)s)")
    tr.add_argument("--class-weight", choices=("none", "balanced", "sqrt"), default=d.class_weight,
                    help="weigh rare classes (disgust) up in the loss (default %(default)s)")
    tr.add_argument("--patience", action=Bounded, low=0, default=d.patience,
                    help="early stopping on val accuracy (0 = off)")
    tr.add_argument("--init", metavar="MODEL", help="start from this trained .keras model of the same "
                    "architecture (e.g. a second learning-rate cycle for a run that ended underfitting)")
    tr.add_argument("--augment", choices=tuple(AUGMENTS), default="default",
                    help="augmentation strength: light = flip and geometry only, for small networks that underfit; "
                    "robust = wider geometry plus blur, noise, JPEG, dim/uneven light, low resolution or "
                    "overexposure on half the faces (what `evaluate --robustness` measures)")
    tr.add_argument("--no-augment", action="store_true", help="same as --augment none")


def _teacher_args(tr: argparse.ArgumentParser, d) -> None:
    """`train`: distillation and compute precision."""
    from train.trainer import PRECISIONS

    tr.add_argument("--teacher", metavar="MODEL", action="append",
                    help="distil from this trained model (.keras or .tflite): targets mix the labels with its "
                    "probabilities on each training face; give it more than once for an ensemble (averaged)")
    tr.add_argument("--distill", action=Bounded, kind=float, low=0, high=1, default=d.distill,
                    help=f"weight of the teacher's probabilities in the targets (default {d.distill})")
    tr.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                    help="mixed_bfloat16: bfloat16 compute, float32 weights (faster on CPUs with AVX512_BF16); "
                    "the saved model is float32 either way")


def add_blend_command(sub) -> None:
    bl = add_command(sub, "blend", help="Several trained models as one .keras run folder (softmax of their logits "
                     "summed with weights: a weighted geometric mean of their probabilities), for `fer-edge publish` "
                     "and `fer-edge convert`.",
                     example="fer-edge blend models/fer_cnn.keras:0.6 models/fer_mobile.keras:0.4 "
                     "--data ../shared/fer2013 --out runs/fer_blend")
    bl.add_argument("members", nargs="+", metavar="MODEL.keras:WEIGHT",
                    help="float models with their cards, each with a positive weight (normalised to sum to 1)")
    data_args(bl, required=False)
    bl.add_argument("--split", help="split of --data (default: val when present)")
    bl.add_argument("--class-weights", metavar="W,W,...|FIT.json",
                    help="one positive weight per class in label order, or the JSON file python -m "
                    "train.class_weights --out wrote (its fit is then recorded in the card): each class's "
                    "probability is multiplied by its weight and renormalised inside the graph")
    bl.add_argument("--out", required=True, help="run folder to write (model.keras, model.json, report/)")
    bl.set_defaults(func=cmd_blend)


def add_evaluate_command(sub) -> None:
    ev = add_command(sub, "evaluate", help="Accuracy, macro-F1, per-class metrics and confusion of a .keras or "
                     ".tflite model on labelled faces; on a pixels-only CSV, writes a Kaggle-style submission.",
                     example="fer-edge evaluate --model models/fer_blend_int8.tflite --data ../shared/fer2013 "
                     "--split val --report runs/eval")
    ev.add_argument("--model", required=True, help=".keras or .tflite model (metadata .json beside it)")
    data_args(ev)
    ev.add_argument("--split", help="train, val or test (default: val when present)")
    ev.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    ev.add_argument("--report", metavar="DIR", help="write metrics.json, confusion_matrix.png (+ learning curves)")
    ev.add_argument("--tta", choices=("flip",), help="test-time augmentation: average with the mirrored face")
    ev.add_argument("--robustness", action="store_true",
                    help="accuracy under a detector's crop, rotation, blur, noise, JPEG, dim and uneven light, "
                    "low resolution and overexposure (fixed seed), their mean and the share of clean accuracy kept")
    ev.add_argument("--threads", action=Bounded, low=1, default=None, help="TFLite interpreter threads")
    ev.add_argument("--submission", metavar="CSV", help="predict mode output (default submission.csv)")
    ev.set_defaults(func=cmd_evaluate)


def add_predict_command(sub) -> None:
    pr = add_command(sub, "predict", help="Print emotion probabilities for already-cropped face images.",
                     example="fer-edge predict --model models/fer_blend_int8.tflite face1.png face2.jpg")
    pr.add_argument("images", nargs="+", help="face images (any size or colour; the whole image is the face)")
    pr.add_argument("--model", default="models/fer_blend_int8.tflite", help=".keras or .tflite model")
    pr.add_argument("--json", action="store_true", help="one JSON line per image")
    pr.add_argument("--tta", choices=("flip",), help="test-time augmentation: average with the mirrored face "
                    "(twice the time per face)")
    pr.add_argument("--threads", action=Bounded, low=1, default=None,
                    help="TFLite interpreter threads (default: the runtime's choice; no effect on .keras models)")
    pr.set_defaults(func=cmd_predict)


def add_publish_command(sub) -> None:
    pu = add_command(sub, "publish", help="Ship a finished training run: models/NAME.keras, its model card "
                     "NAME.json and the report pictures.",
                     example="fer-edge publish runs/fer_vgg --name fer_cnn")
    pu.add_argument("run", help="a `fer-edge train --out` folder")
    pu.add_argument("--name", default="fer_cnn", help="the shipped model's name: writes MODELS/NAME.keras and the "
                    "model card NAME.json, replacing those of the same name (default %(default)s)")
    pu.add_argument("--models", default="models", help="where shipped models live (default models/)")
    pu.set_defaults(func=cmd_publish)
