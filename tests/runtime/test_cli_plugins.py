"""A workstation command group that fails to load (missing or broken) never takes the device's own
commands down with it: `detect`, `run` and `bundle` still parse, and --help says what is unavailable."""

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
