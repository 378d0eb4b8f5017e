"""What every `fer-edge` command module shares: the one-sentence error and the subcommand factory.

Its own module so that edge_runtime.cli and the command groups it registers (release, train,
convert, bench) import it without importing each other."""

from __future__ import annotations

import argparse
import logging
import os
import sys


class CommandError(Exception):
    """A user-facing failure: printed as one sentence, exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def add_command(subparsers, name: str, *, help: str, example: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and shows an example."""
    return subparsers.add_parser(
        # help is %-formatted in the parent's list (so a percent sign is written %%); the description is shown raw.
        name, help=help, description=help.replace("%%", "%"), epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )


def run_parsed(parser: argparse.ArgumentParser, argv: list[str] | None, prog: str) -> int:
    """Parse, set up logging (-v when the parser has it), run the chosen subcommand's func and turn a
    CommandError into one sentence on stderr: `prog COMMAND: what is wrong`."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"{prog} {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`fer-edge detect clip.mp4 --json | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


class Bounded(argparse.Action):
    """A numeric option checked where it is parsed, naming the option as typed:
    `--batch-size 0: expected an integer >= 1`. add_argument(..., action=Bounded, kind=int, low=1);
    `low`/`high` are inclusive bounds, `above` an exclusive lower one, `below` an exclusive upper one."""

    def __init__(self, option_strings, dest, *, kind=int, low=None, high=None, above=None, below=None, **kwargs):
        self.kind, self.low, self.high, self.above, self.below = kind, low, high, above, below
        super().__init__(option_strings, dest, **kwargs)

    def expected(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        bounds = [f"{op} {v:g}" for op, v in ((">=", self.low), (">", self.above), ("<=", self.high),
                                              ("<", self.below)) if v is not None]
        return f"{noun} {' and '.join(bounds)}".rstrip()

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            value = self.kind(values)
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")) or any((
                self.low is not None and value < self.low, self.high is not None and value > self.high,
                self.above is not None and value <= self.above, self.below is not None and value >= self.below)):
            parser.error(f"{option_string} {values}: expected {self.expected()}")
        setattr(namespace, self.dest, value)
