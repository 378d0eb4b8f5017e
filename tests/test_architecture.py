"""What may import what (docs/architecture.md): no import cycle among the project's modules, and no arrow
between top-level packages that the table below does not allow. Imports at any depth count (a function's
`import` runs as surely as the module's, only later), so a cycle hidden inside a function is still found."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_runtime", "release_tools", "train", "convert", "bench", "fleet")

# Each top-level package and the project packages it may import; everything else is an upward arrow.
ALLOWED = {
    "edge_runtime": set(),  # the device: standard library, numpy, OpenCV, the interpreter; nothing of the rest
    "release_tools": {"edge_runtime"},  # bundles and ssh deploy: the device's manifest, config, unit
    "fleet": {"edge_runtime"},  # many cameras: the device's manifest verifier
    "train": {"edge_runtime"},  # the runtime's preprocessing, labels, metadata, interpreter
    "convert": {"train", "edge_runtime"},
    "bench": {"convert", "train", "edge_runtime"},
}

# Known upward arrows, to be removed, not added to. The last ones went with issue 22, item 3: the face verifier's
# int8 file is built by convert (convert/verifier.py), not by train.
KNOWN_UPWARD: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if "__pycache__" not in p.parts}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in it: `from pkg import mod` is an arrow to pkg.mod."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..a import b
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a module: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted, as one import cycle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "edge_runtime.errors" in graph["edge_runtime.release.manifest"]  # inside require_bundled_model
    assert "edge_runtime.release.manifest" in graph["edge_runtime.interpreter"]
    assert "convert.calibration" in graph["convert.cli"]  # `from convert import calibration` in a function


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_upward_arrow_between_top_level_packages():
    assert set(ALLOWED) == set(PACKAGES)
    upward = sorted(f"{name} -> {target}" for name, targets in import_graph().items() for target in targets
                    if (src := name.split(".")[0]) != (dst := target.split(".")[0]) and dst not in ALLOWED[src])
    assert sorted(set(upward) - KNOWN_UPWARD) == [], "imports the table does not allow:\n" + "\n".join(upward)
    # A known arrow that is gone comes off the list, so that it cannot come back unnoticed.
    assert sorted(KNOWN_UPWARD - set(upward)) == []


def test_edge_runtime_never_imports_the_workstation_release_tools():
    graph = import_graph()
    assert not any(t.startswith("release_tools") for n, ts in graph.items() if n.startswith("edge_runtime")
                   for t in ts)
    assert "edge_runtime.release.manifest" in graph["release_tools.bundle"]  # and the arrow that is allowed is seen
