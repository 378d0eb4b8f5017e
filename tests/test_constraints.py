"""constraints.txt: the exact versions a fresh clone installs (docs/testing.md, "Pinned versions").

Without it, a fresh clone took whatever was newest: ansible-core 2.19 under cryptography 51 printed a
CryptographyDeprecationWarning into every `fer-edge fleet deploy`, and the rollout tests failed."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("train", "mqtt", "dev", "fleet")  # the README's test command


def pins() -> dict[str, Requirement]:
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def test_the_readme_and_ci_install_through_the_constraints_file():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = re.findall(r"^python3 -m venv \.venv && (.*)$", readme, re.MULTILINE)
    assert len(commands) == 2, commands  # the two commands, as the README's heading says
    assert all(".venv/bin/pip install -c constraints.txt -e " in c for c in commands)
    assert f"pip install -q -c constraints.txt -e '.[{','.join(EXTRAS)}]' && set +e && .venv/bin/python -m pytest" \
        in ci
    assert all(" -c constraints.txt " in line for line in ci.splitlines() if "pip install" in line)


def test_every_dependency_is_pinned_exactly_within_its_declared_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    pinned = pins()
    env = {"python_version": "3.11", "python_full_version": "3.11.0", "platform_machine": "x86_64",
           "platform_system": "Linux", "sys_platform": "linux"}
    for text in declared:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate(env):
            continue
        pin = pinned.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not in constraints.txt"
        (spec,) = pin.specifier
        assert spec.operator == "==" and req.specifier.contains(spec.version), f"{pin} is outside {req}"
        assert str(pin.marker) == 'python_version == "3.11"'
    assert "fer-edge" not in pinned  # the checkout itself is never pinned
