"""A wheel of fer-edge built from its source checkout with the standard library alone (PEP 427).

`pip wheel` needs setuptools>=68 and `wheel`: a venv made by `python3 -m venv` (Python 3.11: setuptools
65, no wheel) has neither, and fetching them needs the network. fer-edge is pure Python, so its wheel is a
zip of the packages and package data pyproject.toml names, plus the dist-info files; nothing to compile.
Fixed timestamps and sorted entries make the same source the same wheel, byte for byte, so a device reuses
the venv of a release with the same wheels.
"""

from __future__ import annotations

import base64
import csv
import fnmatch
import hashlib
import io
import re
import zipfile
from pathlib import Path

from edge_runtime.errors import FerEdgeError

try:
    import tomllib
except ImportError:  # Python 3.10: tomli is a base dependency there
    import tomli as tomllib

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class WheelError(FerEdgeError, RuntimeError):
    """The checkout cannot be made into a wheel (no pyproject.toml, a field this builder does not know)."""


def build_wheel(source: Path, out: Path) -> Path:
    """Write NAME-VERSION-py3-none-any.whl for the project in `source` into folder `out`; returns its path."""
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        raise WheelError(f"no pyproject.toml in {source}: build the bundle from a fer-edge checkout, "
                         "or pass --wheel FILE")
    config = tomllib.loads(pyproject.read_text())
    project = config["project"]
    name, version = project["name"], project["version"]
    dist = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"
    files = package_files(source, config.get("tool", {}).get("setuptools", {}))
    meta = {
        f"{dist}.dist-info/METADATA": metadata(project).encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: fer-edge\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n",
        f"{dist}.dist-info/entry_points.txt": entry_points(project).encode(),
        f"{dist}.dist-info/top_level.txt": "".join(f"{top}\n" for top in sorted({f.split("/")[0]
                                                                                   for f in files})).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dist}-py3-none-any.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in [*((f, (source / f).read_bytes()) for f in files), *meta.items()]:
            add(zf, arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([arcname, f"sha256={digest}", len(data)])
        writer.writerow([f"{dist}.dist-info/RECORD", "", ""])
        add(zf, f"{dist}.dist-info/RECORD", record.getvalue().encode())
    return path


def add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def package_files(source: Path, setuptools: dict) -> list[str]:
    """The .py files of every package [tool.setuptools.packages.find] includes, and their package data."""
    include = setuptools.get("packages", {}).get("find", {}).get("include")
    if not include:
        raise WheelError("pyproject.toml: [tool.setuptools.packages.find] include is needed to know the packages")
    data = setuptools.get("package-data", {})
    found = set()
    tops = [p for p in source.iterdir() if p.is_dir() and any(fnmatch.fnmatchcase(p.name, i) for i in include)]
    folders = [folder for top in tops for folder in (top, *top.rglob("*"))]
    for folder in sorted(p for p in folders if p.is_dir() and "__pycache__" not in p.parts):
        package = folder.relative_to(source).as_posix().replace("/", ".")
        if not any(fnmatch.fnmatchcase(package, pattern) for pattern in include):
            continue
        found.update(f.relative_to(source).as_posix() for f in folder.glob("*.py"))
        for pattern in data.get(package, []):
            found.update(f.relative_to(source).as_posix() for f in folder.glob(pattern) if f.is_file())
    return sorted(found)


def metadata(project: dict) -> str:
    """Core metadata 2.1: name, version, summary, Python and the dependencies, extras as markers."""
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("license", {}).get("text"):
        lines.append(f"License: {project['license']['text']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {req}" for req in project.get("dependencies", [])]
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        for req in requirements:
            spec, _, marker = req.partition(";")
            condition = f'({marker.strip()}) and extra == "{extra}"' if marker.strip() else f'extra == "{extra}"'
            lines.append(f"Requires-Dist: {spec.strip()}; {condition}")
    return "\n".join(lines) + "\n"


def entry_points(project: dict) -> str:
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    return "".join(f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(entries.items())) + "\n"
                   for group, entries in groups.items() if entries)
