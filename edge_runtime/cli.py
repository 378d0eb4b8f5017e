"""`fer-edge`: one console script, subcommands.

Device commands live here; workstation command groups (train, convert, ...) register
themselves through the `fer_edge.commands` entry point group, so this module never imports
them and a Pi without TensorFlow still gets a working CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from edge_runtime import __version__

EPILOG = "Run `fer-edge COMMAND --help` for each command's options and an example."


class CommandError(Exception):
    """A user-facing failure: printed as one sentence, exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def add_command(subparsers, name: str, *, help: str, example: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and shows an example."""
    return subparsers.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge",
        description="Facial-expression recognition for the edge: train on FER2013, convert to int8 "
        "TFLite, run on a Raspberry Pi or Coral.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for ep in sorted(entry_points(group="fer_edge.commands"), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"fer-edge {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the imported module's main: under `python -m` this file is `__main__`, and a CommandError
    # raised by a plugin (edge_runtime.cli.CommandError) would not be the class main() here catches.
    from edge_runtime.cli import main as _main

    sys.exit(_main())
