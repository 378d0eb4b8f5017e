"""fer-edge deploy against a real sshd on loopback; the "device" is a prefix folder on this machine.

One story, through the whole real path (ssh, scp, install.sh, the health check): a good bundle goes
live; a bundle whose config the daemon refuses is rolled back and the previous release is current
again; a newer good bundle goes live and the oldest release is pruned; a release that fails its
health check with nothing older to go back to says so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_deploy_goes_live_rolls_back_and_prunes(make_bundle, sshd, device_python, tmp_path):
    prefix = tmp_path / "device" / "opt" / "fer-edge"

    def deploy(bundle, *extra):
        cmd = [sys.executable, "-m", "edge_runtime.cli", "deploy", str(bundle),
               *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python", device_python,
               "--no-systemd", "--timeout", "3", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240)

    good = deploy(make_bundle("good.tar.gz", version="0.1.0-good"))
    assert good.returncode == 0, good.stdout + good.stderr
    for step in ("[1/7] check", "[2/7] copy", "[3/7] verify", "[4/7] install", "[5/7] health", "[6/7] prune",
                 "[7/7] clean"):
        assert step in good.stdout
    assert "deployed 0.1.0-good" in good.stdout and "(previous: none)" in good.stdout
    assert os.readlink(prefix / "current") == "releases/0.1.0-good"
    assert not (prefix / "incoming" / "0.1.0-good").exists()

    broken = tmp_path / "broken.yaml"
    # `fer-edge bundle` refuses what the daemon's config model refuses anywhere; what only the device can tell
    # remains for its gate: a file source the device lacks.
    broken.write_text("camera:\n  source: /nonexistent/porch.mp4\n")
    bad = deploy(make_bundle("bad.tar.gz", version="0.1.1-bad", config=broken))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "camera.source: no such file or folder" in bad.stdout
    assert "[6/7] rollback: back to 0.1.0-good" in bad.stdout
    assert "rolled back: 0.1.0-good is current again" in bad.stderr
    assert os.readlink(prefix / "current") == "releases/0.1.0-good"
    assert sorted(os.listdir(prefix / "releases")) == ["0.1.0-good"]
    assert not list((prefix / "incoming").iterdir())
    check = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                            "config/fer-edge.yaml"], cwd=prefix / "current", capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    newer = make_bundle("newer.tar.gz", version="0.1.1")
    live = deploy(newer, "--keep", "1", "--health-cmd", "test -f manifest.json")
    assert live.returncode == 0, live.stdout + live.stderr
    assert "removed 0.1.0-good" in live.stdout and "(previous: 0.1.0-good)" in live.stdout
    assert sorted(os.listdir(prefix / "releases")) == ["0.1.1"]
    # Same wheels, same Python: the three releases shared one venv, made once.
    assert len(os.listdir(prefix / "venvs")) == 1 and "wheels already installed" in live.stdout

    again = deploy(newer, "--health-cmd", "false")
    assert again.returncode == 1
    assert "already installed" in again.stdout and "health command failed: false" in again.stdout
    assert "nothing to roll back to" in again.stderr
    assert os.readlink(prefix / "current") == "releases/0.1.1"


def test_an_unreachable_device_is_one_sentence(make_bundle, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(make_bundle()), "--host",
                             "pi@127.0.0.1", "--port", str(port), "--prefix", str(tmp_path / "device")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("fer-edge deploy: ssh pi@127.0.0.1 failed:") and "refused" in result.stderr
    assert "Traceback" not in result.stderr
