"""What every `fer-edge` command module shares: the one-sentence error and the subcommand factory.

Its own module so that edge_runtime.cli and the command groups it registers (release, train,
convert, bench) import it without importing each other."""

from __future__ import annotations

import argparse


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
