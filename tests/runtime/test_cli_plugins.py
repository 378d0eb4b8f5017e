"""A workstation command group that fails to load (missing or broken) never takes the device's own
commands down with it: `detect` and `run` still parse, and --help says what is unavailable."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from edge_runtime import cli


def test_a_broken_plugin_is_named_and_the_device_commands_still_work(monkeypatch):
    broken = EntryPoint("train", "edge_runtime.labels:no_such_register", "fer_edge.commands")  # AttributeError
    missing = EntryPoint("convert", "no_such_package.cli:register", "fer_edge.commands")  # ImportError
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken, missing])

    parser = cli.build_parser()
    args = parser.parse_args(["detect", "--json"])
    assert args.func is cli.cmd_detect
    assert "train (AttributeError: " in parser.epilog and "no_such_register" in parser.epilog
    assert "convert (No module named 'no_such_package')" in parser.epilog


def test_a_group_the_checkout_declares_but_the_installation_lacks_is_still_registered(monkeypatch):
    # The installed metadata is written by `pip install -e .`: a group added to pyproject.toml since is read there.
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert {ep.name for ep in cli.checkout_entry_points()} >= {"train", "convert", "bench", "fleet", "release"}
    parser = cli.build_parser()
    assert parser.parse_args(["bundle", "verify", "b.tar.gz"]).func.__module__ == "release_tools.cli"
    assert parser.parse_args(["deploy", "b.tar.gz", "--host", "pi@cam"]).func.__module__ == "release_tools.cli"
