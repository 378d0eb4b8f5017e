"""What every workstation command needs first: a quiet TensorFlow, the [train] extra, the FER2013 data options
and data loaded with its bad records reported (CommandError on a bad path, so the CLI prints one sentence),
and the command as typed for the record a run leaves. train/cli.py and convert's `verifier train` use them."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys

from edge_runtime.cli_helpers import CommandError
from edge_runtime.native_stderr import captured_stderr
from train.data import FORMATS, DataError, load_dataset


def tensorflow_env() -> None:
    # oneDNN kernels are off by default on some x86 CPUs (AMD here) and are 2-3x faster for training.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    # Importing TensorFlow still writes absl/oneDNN lines on fd 2 (the oneDNN one twice), whatever the level
    # above: they go to the log at DEBUG (-v). Without TensorFlow, the command's own import says what to install.
    with captured_stderr(logging.getLogger("fer_edge.tensorflow")), contextlib.suppress(ImportError):
        import tensorflow  # noqa: F401


def need_train_extra():
    try:
        import keras  # noqa: F401
    except ImportError as exc:
        raise CommandError(f"this command needs the workstation extra: pip install 'fer-edge[train]' ({exc})") from exc


def load_for_command(path: str, fmt: str | None, skip_bad: bool, size: int = 48):
    try:
        ds = load_dataset(path, fmt, skip_bad=skip_bad, size=size)
    except DataError as exc:
        raise CommandError(str(exc)) from exc
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} bad records in {path}:", file=sys.stderr)
        for err in ds.skipped[:20]:
            print(f"  {err}", file=sys.stderr)
        if len(ds.skipped) > 20:
            print(f"  ... and {len(ds.skipped) - 20} more", file=sys.stderr)
    return ds


def data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--data", required=required, help="FER2013: Kaggle CSV, binary records or image folders")
    p.add_argument("--format", choices=FORMATS, help="force the data format (default: detected from the path)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad records (counted and listed) instead of failing")


def command_line() -> str:
    """This command as typed, for the record a run leaves."""
    return "fer-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
