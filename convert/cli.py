"""Workstation commands: `convert`, `calibration build`, `parity`, `edgetpu check` and, as its own group,
`verifier train` (need the [train] extra).

Exit status: 0 done, 1 the model failed a gate (parity drop, Edge TPU check), 2 bad input or a
failed step (nothing is written then).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from edge_runtime.cli_helpers import Bounded, CommandError, add_command
from edge_runtime.errors import FerEdgeError
from train.data import FORMATS, load_dataset
from train.env import tensorflow_env

BAD_INPUT = 2
GATE_FAILED = 1
# 350 FER2013 val faces shipped with convert: `convert` shows parity on them when no --parity-data is given.
VAL_SAMPLE = Path(__file__).resolve().parent / "val_sample"


def _exit_note(gate: str) -> str:
    return f"Exit status: 0 done, 1 {gate}, 2 bad input or a failed step."


def _labelled_split(path: str, fmt: str | None, split: str | None, size: int, skip_bad: bool):
    """(split name, Split) of labelled faces; by default the val split when there is one."""
    from train.predict import default_split

    try:
        ds = load_dataset(path, fmt, skip_bad=skip_bad, size=size)
        name = split or default_split(ds.splits)
        faces = ds.split(name)
    except FerEdgeError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} bad records in {path} (first: {ds.skipped[0]})", file=sys.stderr)
    if not faces.labelled:
        raise CommandError(f"{path} [{name}]: faces are unlabelled; parity needs labels", BAD_INPUT)
    return name, faces


def _open_model(path: str | Path, flag: str):
    """train.predict's predictor for a .keras or .tflite model, or a one-sentence error."""
    from train.predict import load_predictor

    if not Path(path).is_file():
        raise CommandError(f"{path}: model file not found ({flag})", BAD_INPUT)
    try:
        return load_predictor(path)
    except FerEdgeError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc


QUANTISED = ("int8", "float16", "dynamic")


def _precision(predictor) -> str:
    """float32, float16, dynamic or int8: from a .tflite model's metadata (its input type when that does not
    say); a .keras model is float32."""
    if Path(predictor.path).suffix.lower() == ".keras":
        return "float32"
    import numpy as np

    fallback = "int8" if np.dtype(predictor.input.dtype) in (np.int8, np.uint8) else "float32"
    return predictor.meta.get("precision") or fallback


def _check_roles(float_model, quant_model, args) -> None:
    """--float must be a float model and --quant a quantised one: swapped, the report reads backwards."""
    swapped = "; did you swap --float and --quant?"
    kind = _precision(float_model)
    if kind in QUANTISED:
        raise CommandError(f"{args.float}: --float takes the float model, but this is a quantised ({kind}) model"
                           + (swapped if _precision(quant_model) not in QUANTISED else ""), BAD_INPUT)
    kind = _precision(quant_model)
    if kind not in QUANTISED:
        raise CommandError(f"{args.quant}: --quant takes a quantised model ({', '.join(QUANTISED)}), but this is a "
                           f"{kind} model", BAD_INPUT)


def _compare(float_model, quant_model, faces, max_drop: float):
    from convert.parity import ParityError, compare

    try:
        return compare(float_model, quant_model, faces.images, faces.labels, max_drop)
    except ParityError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc


def cmd_calibration_build(args) -> int:
    from convert import calibration

    try:
        # Refuse a non-empty --out before spending a minute reading the data.
        calibration.check_destination(args.out, args.overwrite)
        ds = load_dataset(args.data, args.format, skip_bad=args.skip_bad, size=args.size)
        split = ds.split(args.split)
    except FerEdgeError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    # The README's rebuild command: the options that decide which faces, not how this run was typed.
    command = (f"fer-edge calibration build --data {shlex.quote(args.data)} --split {args.split} "
               f"--per-class {args.per_class} --seed {args.seed} --out {shlex.quote(args.out)}")
    try:
        counts = calibration.build(split, args.out, per_class=args.per_class, seed=args.seed,
                                   data_path=args.data, command=command, overwrite=args.overwrite)
    except calibration.CalibrationError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    short = [f"{name} ({n})" for name, n in counts.items() if n < args.per_class]
    print(f"{args.out}: {sum(counts.values())} faces, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if short:
        print(f"classes with fewer than {args.per_class} faces in the data (all taken): {', '.join(short)}",
              file=sys.stderr)
    return 0


def cmd_parity(args) -> int:
    from convert.parity import format_report

    tensorflow_env()
    float_model, quant_model = _open_model(args.float, "--float"), _open_model(args.quant, "--quant")
    _check_roles(float_model, quant_model, args)
    split_name, faces = _labelled_split(args.data, args.format, args.split, float_model.preprocessing.size,
                                        args.skip_bad)
    report = _compare(float_model, quant_model, faces, args.max_drop)
    if args.json:
        print(json.dumps({"float": args.float, "quant": args.quant, "data": args.data, "split": split_name,
                          **report.to_dict()}))
    else:
        print(f"{args.float} vs {args.quant} on {args.data} [{split_name}]")
        print(format_report(report, Path(args.float).name, Path(args.quant).name))
    return 0 if report.passed else GATE_FAILED


def _check_convert_args(args) -> str:
    precision = "int8" if args.int8 else "float16" if args.float16 else "dynamic" if args.dynamic else "float32"
    if args.io != "int8" and precision != "int8":
        raise CommandError("--io applies to --int8 models only (the others keep float32 input and output)",
                           BAD_INPUT)
    if args.edgetpu and precision != "int8":
        raise CommandError("--edgetpu needs --int8: the Edge TPU runs full-integer models only", BAD_INPUT)
    if args.out and Path(args.out).suffix != ".tflite":
        raise CommandError(f"{args.out}: --out must name a .tflite file", BAD_INPUT)
    return precision


def cmd_convert(args) -> int:
    from convert import calibration as cal
    from convert import edgetpu, tflite
    from convert.build import build_model_file

    precision = _check_convert_args(args)
    tensorflow_env()
    # SavedModel export logs every asset it writes at INFO; the summary below says what matters.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    # Everything that can fail on bad input is checked before the (slow) conversion starts.
    compiler = None
    if args.edgetpu:
        try:
            compiler = edgetpu.find_compiler()
        except edgetpu.EdgeTpuBuildError as exc:
            raise CommandError(str(exc), BAD_INPUT) from exc
    try:
        source = tflite.load_source(args.model)
        calibration = cal.load(args.calibration, source.preprocessing.size) if precision == "int8" else None
        if calibration is not None:
            tflite.check_input_range(calibration)
    except FerEdgeError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    parity = _parity_faces(args, source.preprocessing.size)
    out = Path(args.out) if args.out else tflite.default_output(args.model, precision)
    try:
        built = build_model_file(source, out, precision, io=args.io, calibration=calibration, parity=parity,
                                 edgetpu_compiler=compiler)
    except FerEdgeError as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    return _print_built(built, args, precision, out)


def _parity_faces(args, size: int):
    """--parity-data's faces (gated, recorded in the card), else the shipped sample's (shown only), else None."""
    from convert.build import Parity

    if args.parity_data:
        split_name, faces = _labelled_split(args.parity_data, args.format, args.parity_split, size, args.skip_bad)
        return Parity(faces.images, faces.labels, args.max_drop, {"data": args.parity_data, "split": split_name})
    if VAL_SAMPLE.is_dir():
        # Shown, not gated or recorded: 350 faces are a check on the conversion, not the model's figures.
        _, faces = _labelled_split(str(VAL_SAMPLE), None, None, size, False)
        return Parity(faces.images, faces.labels, args.max_drop)
    return None


def _print_built(built, args, precision: str, out: Path) -> int:
    """The summary and the parity report of `convert`; its exit status."""
    from convert.parity import format_report

    kind = f"{precision} ({args.io} I/O)" if precision == "int8" else precision
    print(f"{built.paths[0]}: {kind}, {built.meta['size_bytes'] / 1e6:.2f} MB; metadata in {built.paths[1]}")
    if len(built.paths) > 2:
        print(f"{built.paths[2]}: Edge TPU build; metadata in {built.paths[3]}")
    report = built.report
    if report is not None:
        text = format_report(report, Path(args.model).name, out.name)
        if not args.parity_data:
            print(f"parity on the in-repo sample {VAL_SAMPLE.relative_to(VAL_SAMPLE.parents[1])} ({report.n} FER2013 "
                  "val faces; shown, not gated or recorded: --parity-data DATA for that):")
            text = text.rsplit("\n", 1)[0]  # no PASS/FAIL verdict where nothing is gated
        print(text)
        if args.parity_data and not report.passed:
            print("parity gate failed: the model was written for inspection, its metadata says passed: false",
                  file=sys.stderr)
            return GATE_FAILED
    return 0


def cmd_verifier_train(args) -> int:
    import numpy as np

    from convert.verifier import build_verifier
    from train.data import DataError
    from train.env import command_line, load_for_command, need_train_extra
    from train.verifier import VerifierConfig

    tensorflow_env()
    need_train_extra()
    ds = load_for_command(args.data, args.format, args.skip_bad)
    try:
        faces = ds.split("train").images
        val = ds.split(args.val_split).images if args.val_split in ds.splits else None
    except DataError as exc:
        raise CommandError(str(exc)) from exc
    if args.faces:
        faces = faces[np.random.default_rng(args.seed).permutation(len(faces))[: args.faces]]
    cfg = VerifierConfig(epochs=args.epochs, seed=args.seed, threshold=args.threshold, wild=args.wild or "")
    try:
        figures = build_verifier(faces, val, Path(args.out), cfg, command=command_line(), data_path=args.data,
                                 verbose=1 if sys.stderr.isatty() else 2)
    except (RuntimeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"{Path(args.out) / 'face_verifier_int8.tflite'}: int8 face verifier, its figures (crops it did not "
          f"train on; FER2013 {args.val_split} faces):")
    print(json.dumps(figures, indent=2))
    return 0


def cmd_edgetpu_check(args) -> int:
    from convert import edgetpu

    try:
        report = edgetpu.check(args.model)
    except (FerEdgeError, ImportError) as exc:
        raise CommandError(str(exc), BAD_INPUT) from exc
    if args.json:
        print(json.dumps({**report.to_dict(), "advice": edgetpu.advice(report)}))
    else:
        verdict = "runs entirely on the Edge TPU" if report.compatible else "does NOT run entirely on the Edge TPU"
        print(f"{args.model}: {verdict} ({len(report.ops)} ops; fully int8: {report.fully_int8}, "
              f"static shapes: {report.static_shapes})")
        for problem in report.problems:
            print(f"  {problem}")
        for op in report.cpu_ops:
            print(f"  CPU: op {op.index} {op.name}: {op.reason}")
        if not report.compatible:
            print(edgetpu.advice(report))
    return 0 if report.compatible else GATE_FAILED


def _data_args(p: argparse.ArgumentParser, flag: str = "--data", required: bool = True) -> None:
    p.add_argument(flag, required=required, help="labelled FER faces: Kaggle CSV, binary records or image folders")
    p.add_argument("--format", choices=FORMATS, help="force the data format (default: detected from the path)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad records (counted) instead of failing")


def register(sub) -> None:
    _add_convert(sub)
    _add_calibration(sub)
    _add_parity(sub)
    _add_edgetpu(sub)


def _max_drop(p: argparse.ArgumentParser, help_text: str) -> None:
    from convert.parity import DEFAULT_MAX_DROP_PP

    p.add_argument("--max-drop", action=Bounded, kind=float, low=-100, high=100, default=DEFAULT_MAX_DROP_PP,
                   metavar="PP",
                   help=f"{help_text}, -100..100 (below 0 asks for a gain) (default {DEFAULT_MAX_DROP_PP})")


def _add_convert(sub) -> None:
    from convert.tflite import IO_TYPES

    cv = add_command(sub, "convert", help="Convert a float .keras model to TFLite (float32 by default; --int8 "
                     "full-integer, --float16, --dynamic) with its metadata .json beside it.",
                     example="fer-edge convert --model models/fer_cnn.keras --int8 --parity-data "
                     "../shared/fer2013 --edgetpu")
    cv.description += " " + _exit_note("the parity drop exceeds --max-drop (the model is still written)") \
        + " On status 2 nothing is written."
    cv.add_argument("--model", required=True, help="float Keras 3 model (.keras, with its .json beside it)")
    precision = cv.add_mutually_exclusive_group()
    precision.add_argument("--int8", action="store_true", help="full-integer int8 (integer ops only), calibrated")
    precision.add_argument("--float16", action="store_true", help="float16 weights, float32 compute")
    precision.add_argument("--dynamic", action="store_true", help="dynamic-range: int8 weights, float activations")
    cv.add_argument("--io", choices=IO_TYPES, default="int8",
                    help="int8 model input/output type (default int8; uint8 for Edge-TPU-style I/O)")
    cv.add_argument("--out", help="output .tflite (default: beside the model, e.g. fer_cnn_int8.tflite)")
    cv.add_argument("--calibration", default="calibration_data",
                    help="folder of calibration faces for --int8 (default calibration_data/)")
    cv.add_argument("--parity-data", metavar="DATA", help="after converting, compare with the float model on "
                    "these labelled faces, gate on --max-drop and record the figures in the metadata (default: "
                    "compare on the in-repo convert/val_sample and only show the figures)")
    cv.add_argument("--parity-split", metavar="SPLIT", help="split of --parity-data (default val when present)")
    cv.add_argument("--format", choices=FORMATS, help="force the --parity-data format")
    cv.add_argument("--skip-bad", action="store_true", help="skip bad --parity-data records instead of failing")
    _max_drop(cv, "parity gate: largest accuracy drop in percentage points")
    cv.add_argument("--edgetpu", action="store_true", help="also build <out>_edgetpu.tflite with edgetpu_compiler")
    cv.set_defaults(func=cmd_convert)


def _add_calibration(sub) -> None:
    calib = add_command(sub, "calibration", help="Make the int8 calibration set.",
                        example="fer-edge calibration build --data ../shared/fer2013/train --per-class 72 --seed 0 "
                        "--out calibration_data")
    calib_sub = calib.add_subparsers(dest="calibration_command", metavar="ACTION", required=True)
    build = add_command(calib_sub, "build", help="Draw a class-stratified, seeded set of real faces from any "
                        "supported FER2013 form and write them as PNGs with manifest.csv and README.md.",
                        example="fer-edge calibration build --data fer2013.csv --per-class 72 --seed 0 "
                        "--out calibration_data")
    _data_args(build)
    build.add_argument("--split", default="train", help="split to draw from (default train: FER2013 Training)")
    build.add_argument("--per-class", action=Bounded, low=1, default=72, help="faces per class (default 72)")
    build.add_argument("--seed", action=Bounded, low=0, default=0,
                       help="random seed of the draw: the same data and seed give the same faces (default 0)")
    build.add_argument("--size", action=Bounded, low=8, default=48, help="face side in pixels (default 48)")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    build.set_defaults(func=cmd_calibration_build)


def _add_parity(sub) -> None:
    par = add_command(sub, "parity", help="Compare a float model with its quantised TFLite build on labelled "
                      "faces: accuracy, macro-F1, top-1 agreement, per-class deltas, probability difference.",
                      example="fer-edge parity --float models/fer_cnn.keras --quant models/fer_cnn_int8.tflite "
                      "--data ../shared/fer2013 --split val")
    par.description += " " + _exit_note("the accuracy drop exceeds --max-drop")
    par.add_argument("--float", required=True, help="float model (.keras or a float .tflite)")
    par.add_argument("--quant", required=True, help="quantised .tflite model")
    _data_args(par)
    par.add_argument("--split", help="split of --data (default val when present)")
    par.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    _max_drop(par, "largest accepted accuracy drop in percentage points")
    par.set_defaults(func=cmd_parity)


def _add_edgetpu(sub) -> None:
    tpu = add_command(sub, "edgetpu", help="Edge TPU tools.", example="fer-edge edgetpu check models/x_int8.tflite")
    tpu_sub = tpu.add_subparsers(dest="edgetpu_command", metavar="ACTION", required=True)
    chk = add_command(tpu_sub, "check", help="Static check of a .tflite: fully int8, static shapes, every op on the "
                      "Edge TPU's supported list; names each op that would fall back to the CPU.",
                      example="fer-edge edgetpu check models/fer_cnn_int8.tflite --json")
    chk.description += " " + _exit_note("some op would run on the CPU")
    chk.add_argument("model", help=".tflite model")
    chk.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    chk.set_defaults(func=cmd_edgetpu_check)


def register_verifier(sub) -> None:
    """`fer-edge verifier train`: trained by train.verifier, built to int8 here (its own command group, so it
    keeps its place after train's commands in --help)."""
    from train.env import data_args
    from train.verifier import VerifierConfig

    v = VerifierConfig()
    ver = add_command(sub, "verifier", help="The face verifier that vets each new Haar detection.",
                      example="fer-edge verifier train --data ../shared/fer2013 --out runs/verifier")
    ver_sub = ver.add_subparsers(dest="verifier_command", metavar="ACTION", required=True)
    vt = add_command(ver_sub, "train", help="Train the face / not-face CNN on FER2013 train faces and the windows the "
                     "cascade accepts on generated backdrops, convert it to int8 and measure it.",
                     example="fer-edge verifier train --data ../shared/fer2013 --out runs/verifier")
    data_args(vt)
    vt.add_argument("--out", required=True, help="folder for face_verifier.keras and face_verifier_int8.tflite")
    vt.add_argument("--faces", action=Bounded, low=0, default=0, help="use this many train faces (default 0: all)")
    vt.add_argument("--epochs", action=Bounded, low=1, default=v.epochs, help=f"default {v.epochs}")
    vt.add_argument("--threshold", action=Bounded, kind=float, low=0, high=1, default=v.threshold,
                    help=f"P(face) a detection needs, recorded in the metadata and measured (default {v.threshold})")
    vt.add_argument("--val-split", default="val", help="faces of unseen people to measure on (default val)")
    vt.add_argument("--seed", action=Bounded, low=0, default=v.seed,
                    help="random seed for the backdrops, shuffling and initialisation (default %(default)s)")
    vt.add_argument("--wild", metavar="FOLDER", help="real photographs in one folder per class (../shared/wild_dev): "
                    "the faces and non-faces of one half of its people are trained on, the other half measured")
    vt.set_defaults(func=cmd_verifier_train)
