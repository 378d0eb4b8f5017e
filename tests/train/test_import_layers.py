"""train/ is layered: cli.py is its top and nothing imports it; no module of train/ imports one that
imports it back (directly or round a longer circle), counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(*roots: str) -> dict[str, set[str]]:
    files = {_module_name(p): p for root in roots for p in (REPO / root).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # `from pkg import submodule` depends on the submodule
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_train_has_no_import_circle():
    assert _cycles(_imports("train")) == []


def test_nothing_imports_train_cli():
    graph = _imports("train", "convert", "bench", "edge_runtime")
    assert "train.cli" in graph and "train.env" in graph["train.cli"]  # the graph does see train's modules
    # Only the entry points stand above it: the console script reaches it through its entry point,
    # `python -m train` (train/__main__.py) imports it directly.
    assert [m for m, deps in graph.items() if "train.cli" in deps] == ["train.__main__"]


def test_the_checker_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
