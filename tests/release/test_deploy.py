"""fer-edge deploy against a real sshd on loopback; the "device" is a prefix folder on this machine.

A good bundle goes live; a bundle whose config the daemon refuses is rolled back and the previous
release is current again. The whole real path runs: ssh, scp, install.sh, the health check."""

from __future__ import annotations

import os
import subprocess
import sys


def deploy(bundle, sshd, prefix, python, tmp_path, *extra):
    cmd = [sys.executable, "-m", "edge_runtime.cli", "deploy", str(bundle), *sshd.deploy_args(tmp_path / "known_hosts"),
           "--prefix", str(prefix), "--python", python, "--no-systemd", "--timeout", "5", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def test_good_bundle_goes_live_and_a_bad_one_is_rolled_back(make_bundle, sshd, device_python, tmp_path):
    prefix = tmp_path / "device" / "opt" / "fer-edge"
    good = make_bundle("good.tar.gz", version="0.1.0-good")
    first = deploy(good, sshd, prefix, device_python, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    for step in ("[1/8] check", "[2/8] copy", "[3/8] verify", "[4/8] install", "[5/8] health", "[6/8] prune"):
        assert step in first.stdout
    assert "deployed 0.1.0-good" in first.stdout and "previous: none" in first.stdout
    assert os.readlink(prefix / "current") == "releases/0.1.0-good"
    assert not (prefix / "incoming" / "0.1.0-good").exists()

    broken_config = tmp_path / "broken.yaml"
    broken_config.write_text("detection:\n  threads: 2\n  frames_per_minute: 3\n")  # a key the daemon refuses
    bad = make_bundle("bad.tar.gz", version="0.1.0-bad", config=broken_config)
    second = deploy(bad, sshd, prefix, device_python, tmp_path)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "frames_per_minute: unknown key" in second.stdout
    assert "[6/8] rollback: back to 0.1.0-good" in second.stdout
    assert "rolled back: 0.1.0-good is current again" in second.stderr
    assert os.readlink(prefix / "current") == "releases/0.1.0-good"
    assert sorted(os.listdir(prefix / "releases")) == ["0.1.0-good"]

    check = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                            "config/fer-edge.yaml"], cwd=prefix / "current", capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_failing_health_command_rolls_back_and_old_releases_are_pruned(make_bundle, sshd, device_python,
                                                                          tmp_path):
    prefix = tmp_path / "device"
    releases = prefix / "releases"
    releases.mkdir(parents=True)
    bundles = [make_bundle(f"{v}.tar.gz", version=v) for v in ("r1", "r2")]
    for bundle in bundles:
        result = deploy(bundle, sshd, prefix, device_python, tmp_path, "--keep", "1",
                        "--health-cmd", "test -f manifest.json")
        assert result.returncode == 0, result.stdout + result.stderr
    assert "removed r1" in result.stdout
    assert sorted(os.listdir(releases)) == ["r2"]
    # The same release again, with a health check it cannot pass: there is nothing older to go back to.
    again = deploy(bundles[1], sshd, prefix, device_python, tmp_path, "--health-cmd", "false")
    assert again.returncode == 1
    assert "health command failed: false" in again.stdout and "nothing to roll back to" in again.stderr
    assert os.readlink(prefix / "current") == "releases/r2"
