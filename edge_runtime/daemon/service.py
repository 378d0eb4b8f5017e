"""The systemd unit shipped with the package (`fer-edge.service`), filled in for this installation."""

from __future__ import annotations

import shlex
import sys
from importlib import resources
from pathlib import Path
from string import Template

DEFAULT_CONFIG = "/etc/fer-edge/config.yaml"


def daemon_command() -> list[str]:
    """How to start this installation's fer-edge: the console script beside the interpreter (a venv's bin/),
    or the interpreter running the CLI module."""
    script = Path(sys.executable).parent / "fer-edge"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edge_runtime.cli"]


def render_unit(config: str = DEFAULT_CONFIG, user: str = "fer-edge", watchdog: int = 30,
                command: list[str] | None = None) -> str:
    template = Template(resources.files("edge_runtime.daemon").joinpath("fer-edge.service").read_text("utf-8"))
    exec_start = shlex.join([*(command or daemon_command()), "run", "--config", str(config)])
    return template.substitute(exec_start=exec_start, config=config, user=user, watchdog=watchdog)
