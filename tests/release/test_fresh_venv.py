"""`fer-edge bundle` in the venv the README's first command makes (issue 14, item 11).

`python3 -m venv .venv && .venv/bin/pip install -e .` leaves Python 3.11's setuptools 65 and no `wheel`
in the venv (pip builds the editable install in an isolated env). Reproduced offline: a real fresh venv,
the runtime dependencies reached through a .pth file, the checkout on PYTHONPATH as the editable install
puts it, and `wheel` hidden the way it is absent there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from edge_runtime.release.manifest import verify

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bundle_builds_its_own_wheel_in_a_fresh_venv(tmp_path, shipped_int8, unpack):
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "wheel").mkdir(exist_ok=True)
    (site / "wheel" / "__init__.py").write_text("raise ImportError('wheel is not installed in a fresh venv')\n")
    (site / "zz-dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = subprocess.run([python, "-c", "import wheel"], capture_output=True, text=True)
    assert probe.returncode == 1 and "not installed" in probe.stderr

    out = tmp_path / "fresh.tar.gz"
    result = subprocess.run([python, "-m", "edge_runtime.cli", "bundle", "--model", str(shipped_int8), "--out",
                             str(out), "--version", "0.1.0-fresh"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "release 0.1.0-fresh, 6 files" in result.stdout
    manifest = verify(out)
    assert manifest["wheels"] == ["fer_edge-0.1.0-py3-none-any.whl"]
    # The wheel is complete: its own verifier runs from it, with its package data.
    top = unpack(out, tmp_path / "unpacked")
    wheel = top / "wheels" / manifest["wheels"][0]
    check = subprocess.run([sys.executable, "-m", "edge_runtime.release.manifest", "verify", str(top)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(wheel)},
                           cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("edge_runtime/release/install.sh", "edge_runtime/samples/faces.mp4",
                 "edge_runtime/daemon/preview.html",
                 "fer_edge-0.1.0.dist-info/entry_points.txt", "fer_edge-0.1.0.dist-info/RECORD"):
        assert data in names
    assert not any(n.startswith("tests/") or "__pycache__" in n for n in names)


def test_the_own_wheel_is_the_same_bytes_from_the_same_source(tmp_path):
    from release_tools.bundle import build_own_wheel

    assert build_own_wheel(tmp_path / "a").read_bytes() == build_own_wheel(tmp_path / "b").read_bytes()
