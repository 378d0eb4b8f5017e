"""--help says what each option does and its default, and shows usage and examples as typed (issue 14, item 17)."""

from __future__ import annotations

import re

import pytest

from edge_runtime.cli import main


def help_of(capsys, *command) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    return re.sub(r"\s+", " ", capsys.readouterr().out)


def option_help(text: str, option: str) -> str:
    """The help of one option: from its name to the next option's."""
    return re.search(rf" {re.escape(option)} [A-Z_{{}},a-z]+ (.*?)(?= --[a-z]|$)", text).group(1)


@pytest.mark.parametrize("option, default", [("--epochs", "60"), ("--batch-size", "64"), ("--optimizer", "adamw"),
                                             ("--weight-decay", "0.01"), ("--seed", "1234"),
                                             ("--out", "runs/train")])
def test_train_options_say_what_they_do_and_their_default(capsys, option, default):
    said = option_help(help_of(capsys, "train"), option)
    assert f"(default {default})" in said
    assert len(said) > len(f"(default {default})") + 10  # and what it does


@pytest.mark.parametrize("command, option", [(("publish",), "--name"), (("predict",), "--tta"),
                                             (("predict",), "--threads"), (("data", "stats"), "--format")])
def test_every_option_says_what_it_does(command, option):
    import argparse

    from edge_runtime.cli import build_parser

    parser = build_parser()
    for name in command:  # down the subcommands
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert action.help and len(action.help) > 20, action.help


def test_no_option_of_any_command_is_left_without_help():
    import argparse

    from edge_runtime.cli import build_parser

    def bare(parser, path=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from bare(sub, (*path, name))
            elif action.option_strings and not action.help:
                yield " ".join(path), action.option_strings[-1]

    assert list(bare(build_parser())) == []


def test_bundle_usage_shows_its_required_options_as_required(capsys):
    text = help_of(capsys, "bundle")
    assert text.startswith("usage: fer-edge bundle --model MODEL --out OUT [options] fer-edge bundle verify BUNDLE")


def test_bench_example_is_the_command_its_help_belongs_to(capsys):
    text = help_of(capsys, "bench")
    assert "example: nice -n 10 fer-edge bench " in text and "python -m bench" not in text
