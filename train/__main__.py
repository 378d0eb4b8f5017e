"""`python -m train COMMAND ...`: the workstation commands (`train`, `evaluate`, `data stats`, `publish`, ...)
from a source tree that was not pip-installed, where the `fer-edge` console script and its entry points do
not exist: a lent GPU machine (train/gpu_run.sh), a checkout used in place. Same options as `fer-edge`.
`verifier train` is not here: convert builds its int8 file (`python -m edge_runtime.cli verifier train` runs it)."""

from __future__ import annotations

import argparse
import sys

from edge_runtime.cli_helpers import run_parsed
from train.cli import register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv, "python -m train")


if __name__ == "__main__":
    sys.exit(main())
