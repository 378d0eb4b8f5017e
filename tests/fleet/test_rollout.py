"""`fer-edge fleet deploy` on three "devices" (real sshd servers on loopback, a prefix each), through the real
playbook, ssh, install.sh and health gate; then `fer-edge fleet status` reads each device's release from the
daemon that release runs.

One story: a first install reaches all three; --check changes nothing; a bundle whose daemon refuses its config
stops at the canary, which is rolled back while the other two keep their release untouched; a device with an
allowed_signers file refuses an unsigned bundle the same way; a rerun with a good (signed) bundle converges;
`fleet status` reads each device's version from its daemon; a release that fails the /healthz gate (plain
ansible-playbook) is rolled back. Rollout times are printed (-s shows them)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

PLAYBOOK = Path(__file__).resolve().parents[2] / "fleet" / "ansible" / "deploy.yml"


def fleet(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "fleet", *args], capture_output=True,
                            text=True, timeout=timeout)
    print(f"fer-edge fleet {' '.join(args[:2])}: exit {result.returncode}, {time.monotonic() - started:.1f} s")
    print("\n".join(line for line in result.stdout.splitlines() if re.match(r"(DEVICE|dev\d) +[^\s:]", line)))
    return result


def table(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by device: [result, release, seconds, note]."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^(dev\d)\s{2,}([^\s:].*)$", line)  # not the PLAY RECAP's lines
        if match:
            rows[match.group(1)] = re.split(r"\s{2,}", match.group(2))
    return rows


def current(device) -> str:
    return os.readlink(device.prefix / "current")


@pytest.mark.slow
def test_canary_first_rollout_with_rollback_and_status(tools, devices, make_bundle, ansible_env, token_file,
                                                       daemon, tmp_path):
    devs = devices(3)
    inv = tools.write_inventory(tmp_path / "cameras.ini", devs, devices.key, token_file)
    good, newer = make_bundle("1.0.0"), make_bundle("1.1.0")
    broken = tmp_path / "broken.yaml"
    # `fer-edge bundle` refuses what the daemon's config model refuses anywhere; what only the device can tell
    # remains for its gate: a file source the device lacks.
    broken.write_text("camera:\n  source: /nonexistent/porch.mp4\n")
    bad = make_bundle("1.2.0-bad", config=broken)

    first = fleet("deploy", str(good), "-i", str(inv))
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    rows = table(first.stdout)
    assert {d: r[:2] for d, r in rows.items()} == {d.name: ["deployed", "none -> 1.0.0"] for d in devs}
    assert "1.0.0: 3/3 devices on it in" in first.stdout
    assert all(current(d) == "releases/1.0.0" for d in devs)
    assert all(not list((d.prefix / "incoming").iterdir()) for d in devs)
    # Canary first: one device, then 25 % (one of the other two), then the rest.
    assert first.stdout.count("PLAY [Roll out a fer-edge bundle, canary first]") == 3

    check = fleet("deploy", str(newer), "-i", str(inv), "--check", "--limit", "dev1,dev3")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    assert {d: r[:2] for d, r in table(check.stdout).items()} == {
        "dev1": ["would deploy", "1.0.0 -> 1.1.0"], "dev3": ["would deploy", "1.0.0 -> 1.1.0"]}
    assert all(current(d) == "releases/1.0.0" for d in devs)
    assert all(sorted(os.listdir(d.prefix / "releases")) == ["1.0.0"] for d in devs)

    refused = fleet("deploy", str(bad), "-i", str(inv))
    assert refused.returncode == 1
    rows = table(refused.stdout)
    assert rows["dev1"][:2] == ["rolled back", "1.0.0 -> 1.2.0-bad"]
    assert "camera.source: no such file or folder" in rows["dev1"][3]
    assert rows["dev2"][0] == rows["dev3"][0] == "not reached"
    assert refused.stderr.strip() == "fer-edge fleet: rollout of 1.2.0-bad stopped at dev1 (rolled back)"
    for d in devs:
        assert current(d) == "releases/1.0.0"
        assert sorted(os.listdir(d.prefix / "releases")) == ["1.0.0"]
    # The two after the canary never saw the bad bundle.
    assert not (devs[1].prefix / "incoming" / "1.2.0-bad.tar.gz").exists()
    assert not list((devs[2].prefix / "incoming").iterdir())
    canary = subprocess.run([devs[0].prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                             "config/fer-edge.yaml"], cwd=devs[0].prefix / "current", capture_output=True, text=True)
    assert canary.returncode == 0, canary.stderr

    key = tmp_path / "release-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(key)], check=True)
    newer = make_bundle("1.1.0", sign_key=key)
    converged = fleet("deploy", str(newer), "-i", str(inv))
    assert converged.returncode == 0, converged.stdout[-4000:] + converged.stderr
    assert {d: r[:2] for d, r in table(converged.stdout).items()} == {
        d.name: ["deployed", "1.0.0 -> 1.1.0"] for d in devs}
    assert all(current(d) == "releases/1.1.0" for d in devs)
    # A device with an allowed-signers file takes only signed bundles: an unsigned one stops at that canary, which
    # goes back to its (signed) release.
    (devs[0].prefix / "allowed_signers").write_text(f"release {(tmp_path / 'release-key.pub').read_text()}")
    unsigned = fleet("deploy", str(make_bundle("1.2.1")), "-i", str(inv))
    assert unsigned.returncode == 1
    rows = table(unsigned.stdout)
    assert rows["dev1"][:2] == ["rolled back", "1.1.0 -> 1.2.1"], rows
    assert "Verify every file" in rows["dev1"][3] and "unsigned" in rows["dev1"][3], rows
    assert rows["dev2"][0] == rows["dev3"][0] == "not reached"
    assert all(current(d) == "releases/1.1.0" for d in devs)

    # Each device runs its current release as systemd would, and status reads its version from it.
    for d in devs:
        daemon(d.name, d.http_port, token_file, fer_edge=[str(d.prefix / "current" / "venv" / "bin" / "fer-edge")],
               model=d.prefix / "current" / "models" / "fer_blend_int8.tflite")
    status = fleet("status", "-i", str(inv))
    assert status.returncode == 0, status.stdout + status.stderr
    lines = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert {name: fields[1:3] + fields[4:5] for name, fields in lines.items()} == {
        d.name: ["yes", "1.1.0", "online"] for d in devs}

    # The /healthz gate, through plain ansible-playbook (someone's own Ansible tree): a release whose health URL
    # never answers 200 within the timeout is rolled back, and the play fails.
    silent = tools.free_port()
    unhealthy = subprocess.run([tools.need("ansible-playbook"), "-i", str(inv), str(PLAYBOOK), "--limit", "dev2",
                                "-e", f"fer_edge_bundle={make_bundle('1.3.0')}",
                                "-e", f"fer_edge_health_url=http://127.0.0.1:{silent}/healthz"],
                               capture_output=True, text=True, timeout=600)
    assert unhealthy.returncode == 2, unhealthy.stdout[-3000:] + unhealthy.stderr
    assert "release 1.3.0 failed at \\\"Gate - the health URL answers 200\\\"; rolled back: 1.1.0 is current again" \
        in unhealthy.stdout, unhealthy.stdout[-3000:]
    assert re.search(r"^dev2 +: .* failed=1 .* rescued=1", unhealthy.stdout, re.MULTILINE)
    assert current(devs[1]) == "releases/1.1.0" and "1.3.0" not in os.listdir(devs[1].prefix / "releases")

    # The lock `fer-edge deploy` holds on a device: while someone else holds it, the install waits, then gives up.
    # -o: the lock stays with flock itself, so killing it lets the lock go (a child would keep it).
    holder = subprocess.Popen(["flock", "-o", str(devs[2].prefix / ".deploy.lock"), "sleep", "120"])
    try:
        tools.wait_until(lambda: subprocess.run(["flock", "-n", str(devs[2].prefix / ".deploy.lock"), "true"])
                         .returncode, 10, "the lock to be held")
        locked = subprocess.run([tools.need("ansible-playbook"), "-i", str(inv), str(PLAYBOOK), "--limit", "dev3",
                                 "-e", f"fer_edge_bundle={newer}", "-e", "fer_edge_lock_timeout=1"],
                                capture_output=True, text=True, timeout=600)
    finally:
        holder.kill()
        holder.wait()
    assert locked.returncode == 2, locked.stdout[-3000:]
    # The install task is the one that fails (Ansible may print a warning line between its header and the error).
    assert re.search(r"TASK \[fer_edge : Install the release with its install.sh\] \**\n(?:(?!TASK \[)[^\n]*\n)*?"
                     r"fatal: \[dev3\]", locked.stdout), locked.stdout[-3000:]
    assert current(devs[2]) == "releases/1.1.0"

    # A device whose daemon is gone is a line that says so, and the exit status says not all is well.
    nobody = dataclasses.replace(devs[1], name="dev9", http_port=tools.free_port())  # no daemon on its port
    gone = tools.write_inventory(tmp_path / "with-gone.ini", [devs[0], nobody], devices.key, token_file)
    partial = fleet("status", "-i", str(gone), "--timeout", "1", "--json")
    assert partial.returncode == 1
    by_device = {row["device"]: row for row in map(json.loads, partial.stdout.splitlines())}
    assert by_device["dev1"]["reachable"] and by_device["dev1"]["version"] == "1.1.0"
    assert not by_device["dev9"]["reachable"] and "Connection refused" in by_device["dev9"]["error"]


def test_an_unreachable_canary_stops_the_rollout(tools, make_bundle, ansible_env, token_file, tmp_path):
    nowhere = [SimpleNamespace(name=f"dev{i}", ssh_port=tools.free_port(), prefix=tmp_path / f"dev{i}",
                               http_port=tools.free_port()) for i in (1, 2)]  # nothing listens on these ports
    inv = tools.write_inventory(tmp_path / "cameras.ini", nowhere, tmp_path / "no-key", token_file)
    result = fleet("deploy", str(make_bundle("1.0.0")), "-i", str(inv), "--forks", "2")
    assert result.returncode == 1 and " --forks 2" in result.stdout.splitlines()[0]
    rows = table(result.stdout)
    assert rows["dev1"][0] == "unreachable" and "Connection refused" in rows["dev1"][3]
    assert rows["dev2"][0] == "not reached"
    assert result.stderr.strip() == "fer-edge fleet: rollout of 1.0.0 stopped at dev1 (unreachable)"


def test_a_bundle_whose_own_install_sh_lies_never_runs_on_the_device(tools, devices, make_bundle, ansible_env,
                                                                     token_file, tmp_path):
    """The bundle's install.sh is part of what is checked: the controller's verifier runs first, so a
    tampered install.sh (here one that says every check passed, and leaves a mark) never runs."""
    import io
    import tarfile

    (dev,) = devices(1)
    inv = tools.write_inventory(tmp_path / "cameras.ini", [dev], devices.key, token_file)
    mark = tmp_path / "install.sh-ran"
    hostile = tmp_path / "hostile.tar.gz"
    lie = f"#!/bin/sh\ntouch {mark}\necho 'all files match'\nexit 0\n".encode()
    with tarfile.open(make_bundle("1.0.0")) as src, tarfile.open(hostile, "w:gz", format=tarfile.GNU_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("/install.sh"):
                data, member.size = lie, len(lie)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)

    # `fer-edge fleet deploy` checks a bundle on the controller before it goes out: refused here already.
    refused = fleet("deploy", str(hostile), "-i", str(inv))
    assert refused.returncode == 1 and "install.sh: changed" in refused.stderr, refused.stdout + refused.stderr
    # Plain ansible-playbook (someone's own Ansible tree) sends it: the device checks it with the controller's
    # verifier before any file of the bundle runs.
    result = subprocess.run([tools.need("ansible-playbook"), "-i", str(inv), str(PLAYBOOK),
                             "-e", f"fer_edge_bundle={hostile}"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert "controller's verifier" in result.stdout and "install.sh: changed" in result.stdout, result.stdout[-3000:]
    assert not mark.exists()
    assert not (dev.prefix / "current").exists()
