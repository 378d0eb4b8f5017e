"""The command modules share their helpers through edge_runtime.cli_helpers, not through each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import edge_runtime
import release_tools

PACKAGES = [Path(edge_runtime.__file__).parent, Path(release_tools.__file__).parent]
ROOT = PACKAGES[0].parent


def imports_of(path: Path) -> set[str]:
    """The edge_runtime modules a file imports, at any depth of the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("edge_runtime", "release_")):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(("edge_runtime", "release_")))
    return found


def test_no_import_circle_between_the_cli_modules():
    graph = {}
    for path in (p for package in PACKAGES for p in package.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = imports_of(path) & {"edge_runtime.cli", "release_tools.cli", "edge_runtime.cli_helpers"}
    assert "edge_runtime.cli" not in graph["release_tools.cli"]
    assert graph["edge_runtime.cli_helpers"] == set()
    assert "edge_runtime.cli_helpers" in graph["release_tools.cli"]  # the check above is about a real edge
    # The command group plugs in through the entry point: the device CLI never imports it.
    assert "release_tools.cli" not in graph["edge_runtime.cli"]


def test_a_command_error_from_a_command_group_is_one_sentence_under_python_m(tmp_path):
    # Under `python -m edge_runtime.cli` that module is __main__; the error class must still be the one caught.
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "bundle", "--model", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("fer-edge bundle: ") and "Traceback" not in result.stderr
