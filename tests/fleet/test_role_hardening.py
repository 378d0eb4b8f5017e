"""The role run by plain `ansible-playbook -i INV deploy.yml -e fer_edge_bundle=B` (someone's own Ansible tree,
without `fer-edge fleet deploy`'s checks first) against a real sshd "device" (issue 24): it checks the bundle's
version before anything is written, extracts without the archive's owners and modes, refuses a downgrade unless
asked, and quotes fer_edge_python."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

PLAYBOOK = Path(__file__).resolve().parents[2] / "fleet" / "ansible" / "deploy.yml"


def play(tools, inv: Path, bundle: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([tools.need("ansible-playbook"), "-i", str(inv), str(PLAYBOOK),
                           "-e", json.dumps({"fer_edge_bundle": str(bundle)}), *extra],
                          capture_output=True, text=True, timeout=600)


def rewrite(bundle: Path, out: Path, change) -> Path:
    """The bundle with change(member, data) -> data applied to every member (headers and contents)."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            data = change(member, data)
            if data is not None:
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


def test_a_version_that_is_a_path_is_refused_before_anything_is_written(tools, devices, make_bundle, ansible_env,
                                                                         token_file, tmp_path):
    (dev,) = devices(1)
    inv = tools.write_inventory(tmp_path / "cameras.ini", [dev], devices.key, token_file)
    victim = dev.prefix.parent / "victim"  # PREFIX/incoming/../../victim
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("mine\n")
    (dev.prefix.parent / "victim.tar.gz").write_text("mine too\n")

    def path_version(member, data):
        if member.name.endswith("/manifest.json"):
            manifest = json.loads(data)
            manifest["version"] = "../../victim"
            return json.dumps(manifest).encode()
        return data

    hostile = rewrite(make_bundle("1.0.0"), tmp_path / "hostile.tar.gz", path_version)
    result = play(tools, inv, hostile)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert "not a bundle to install" in result.stdout and "version '../../victim' is not a plain release name" \
        in result.stdout, result.stdout[-3000:]
    assert (victim / "keep.txt").read_text() == "mine\n"
    assert (dev.prefix.parent / "victim.tar.gz").read_text() == "mine too\n"
    assert not dev.prefix.exists()


def test_staging_takes_no_owner_or_mode_from_the_archive(tools, devices, make_bundle, ansible_env, token_file,
                                                         tmp_path):
    (dev,) = devices(1)
    inv = tools.write_inventory(tmp_path / "cameras.ini", [dev], devices.key, token_file)

    def loose(member, data):
        member.uid = member.gid = 1000
        member.uname = member.gname = "pi"
        member.mode = 0o777 if member.isdir() else 0o4777 if member.name.endswith(".tflite") else 0o666
        return data

    hostile = rewrite(make_bundle("1.0.0"), tmp_path / "loose.tar.gz", loose)
    stage, report = dev.prefix / "incoming" / "1.0.0", tmp_path / "staging.txt"
    look = f"stat -c '%a %u %n' {stage} $(find {stage}/fer-edge-1.0.0) > {report}"
    result = play(tools, inv, hostile, "-e", json.dumps({"fer_edge_health_cmd": look}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    modes = [line.split(" ", 2) for line in report.read_text().splitlines()]
    assert modes[0] == ["700", str(os.getuid()), str(stage)] and len(modes) > 10
    for mode, uid, name in modes[1:]:
        assert int(mode, 8) & 0o7022 == 0 and uid == str(os.getuid()), (mode, uid, name)


def test_an_older_release_is_refused_unless_asked(tools, devices, make_bundle, ansible_env, token_file, tmp_path):
    (dev,) = devices(1)
    inv = tools.write_inventory(tmp_path / "cameras.ini", [dev], devices.key, token_file)
    old, new = make_bundle("1.0.0"), make_bundle("2.0.0")
    for bundle in (old, new):
        done = play(tools, inv, bundle)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    refused = play(tools, inv, old)
    assert refused.returncode == 2
    assert "release 1.0.0 is older than the current release 2.0.0: refused as a downgrade" in refused.stdout
    assert os.readlink(dev.prefix / "current") == "releases/2.0.0"
    assert sorted(os.listdir(dev.prefix / "releases")) == ["1.0.0", "2.0.0"]  # the kept 1.0.0 is not removed
    asked = play(tools, inv, old, "-e", "fer_edge_allow_downgrade=true")
    assert asked.returncode == 0, asked.stdout[-3000:] + asked.stderr
    assert os.readlink(dev.prefix / "current") == "releases/1.0.0"


def test_fer_edge_python_is_one_command_not_a_shell_line(tools, devices, make_bundle, ansible_env, token_file,
                                                         tmp_path):
    (dev,) = devices(1)
    inv = tools.write_inventory(tmp_path / "cameras.ini", [dev], devices.key, token_file)
    mark = tmp_path / "ran"
    python = inv.read_text().split("fer_edge_python=")[1].split("\n")[0]
    result = play(tools, inv, make_bundle("1.0.0"), "-e", json.dumps({"fer_edge_python": f"{python}; touch {mark}"}))
    assert result.returncode == 2, result.stdout[-3000:]
    assert not mark.exists()
