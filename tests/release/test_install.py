"""install.sh into a throwaway prefix (no systemd): installs, a second run changes nothing, --dry-run
changes nothing, a tampered bundle is refused."""

from __future__ import annotations

import json
import os
import subprocess


def listing(root):
    """Every path below root with its type, size and modification time (links not followed)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            found[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def test_install_twice_into_a_prefix(install_sh, make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(version="0.1.0-a"), tmp_path / "unpacked")
    prefix = tmp_path / "root"
    dry = install_sh(top, prefix, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would run: " in dry.stdout and "dry run:" in dry.stdout and not prefix.exists()

    first = install_sh(top, prefix)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "installed release 0.1.0-a" in first.stdout
    assert os.readlink(prefix / "current") == "releases/0.1.0-a"
    unit = (prefix / "fer-edge.service").read_text()
    assert f"ExecStart={prefix}/current/venv/bin/fer-edge run --config {prefix}/current/config/fer-edge.yaml" in unit
    venv_python = prefix / "current" / "venv" / "bin" / "python"
    where = subprocess.run([venv_python, "-c", "import edge_runtime; print(edge_runtime.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(prefix / "current" / "venv" / "lib")), where
    ok = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                         "config/fer-edge.yaml"], cwd=prefix / "current", capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # With no --model, an installed fer-edge classifies with its release's model, from any folder.
    detect = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "detect", "--json", "--no-progress"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert detect.returncode == 0, detect.stderr
    records = [json.loads(line) for line in detect.stdout.splitlines()]
    assert records and {"label", "score", "box"} <= set(records[0])
    venv_python = prefix / "venvs" / os.listdir(prefix / "venvs")[0] / "bin" / "python"
    found = subprocess.run([venv_python, "-c", "from edge_runtime.release.installed import installed_model; "
                            "print(installed_model())"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == f"{prefix}/current/models/fer_blend_int8.tflite"

    before = listing(prefix)
    second = install_sh(top, prefix)
    assert second.returncode == 0, second.stderr
    assert "nothing to do: release 0.1.0-a is already installed" in second.stdout
    assert "  + " not in second.stdout  # no command that changes anything ran
    assert listing(prefix) == before
    # Run again from the installed release itself, as a rollback does.
    third = install_sh(prefix / "releases" / "0.1.0-a", prefix)
    assert "nothing to do" in third.stdout and listing(prefix) == before


def test_install_refuses_a_tampered_bundle(install_sh, make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    with open(top / "models" / "fer_blend_int8.json", "a") as fh:
        fh.write(" ")
    result = install_sh(top, tmp_path / "root")
    assert result.returncode == 1
    assert "models/fer_blend_int8.json: changed" in result.stderr
    assert not (tmp_path / "root").exists()
