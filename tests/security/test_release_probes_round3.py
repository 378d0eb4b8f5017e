"""The release probes of issue 24 (third round), kept as regression tests: a bundle on the device is never older
than the one it replaces unless asked, never a second set of files under a version already installed, never
extracted with the archive's owners and modes; the manifest is capped and, with allowed signers, its signature
checked before it is parsed; a prefix pip would misread is refused up front. Loopback only, bounded sizes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge_runtime.cli import main
from edge_runtime.release.manifest import MAX_SPECIAL, ManifestError, verify

REPO = Path(__file__).resolve().parents[2]


def repack(folder, out):
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


# N22: a downgrade is refused unless asked for; a rollback from an installed release needs no flag.

def test_an_older_release_is_refused_unless_asked_and_a_rollback_still_works(install_sh, make_bundle, unpack,
                                                                            tmp_path):
    old = unpack(make_bundle("1.tar.gz", version="1.0.0"), tmp_path / "one")
    new = unpack(make_bundle("2.tar.gz", version="2.0.0"), tmp_path / "two")
    prefix = tmp_path / "root"
    for top in (old, new):
        result = install_sh(top, prefix)
        assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(prefix / "current") == "releases/2.0.0"

    refused = install_sh(old, prefix)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("install.sh: error: release 1.0.0 is older than the current release 2.0.0: "
                                      "refused as a downgrade (--allow-downgrade installs it anyway)")
    assert install_sh(old, prefix, "--verify-only").returncode == 1  # what a rollout checks first
    assert os.readlink(prefix / "current") == "releases/2.0.0"

    # The rollback deploy and the rollout make: the installed release's own install.sh, run from its folder.
    back = install_sh(prefix / "releases" / "1.0.0", prefix)
    assert back.returncode == 0, back.stdout + back.stderr
    assert os.readlink(prefix / "current") == "releases/1.0.0"
    assert install_sh(new, prefix).returncode == 0
    asked = install_sh(old, prefix, "--allow-downgrade")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert os.readlink(prefix / "current") == "releases/1.0.0"


def test_release_names_order_as_versions(tmp_path):
    ordered = ["0.1.0-20261206T014700Z", "0.1.0-20261207T000000Z", "0.1.0-bad", "1.0.0-rc.2", "1.0.0-rc.10",
               "1.0.0", "1.2.0-bad", "1.9.9", "1.10.0", "2.0.0"]
    for older, newer in zip(ordered, ordered[1:]):
        for a, b, want in ((older, newer, 0), (newer, older, 1), (newer, newer, 1)):
            code = subprocess.run([sys.executable, "-m", "edge_runtime.release.manifest", "older", a, b],
                                  cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode
            assert code == want, (a, b)


# N23: the same version with other files is refused; the installed release stays whole.

def test_the_same_version_with_other_files_is_refused(install_sh, make_bundle, unpack, tmp_path):
    prefix = tmp_path / "root"
    first = unpack(make_bundle("a.tar.gz", version="1.0.0"), tmp_path / "a")
    assert install_sh(first, prefix).returncode == 0
    other = unpack(make_bundle("b.tar.gz", version="1.0.0", model=REPO / "models" / "fer_mobile_int8.tflite"),
                   tmp_path / "b")
    result = install_sh(other, prefix)
    assert result.returncode == 1
    assert (f"release 1.0.0 is already installed in {prefix}/releases/1.0.0 with other files: a changed bundle "
            "needs a new version") in result.stderr
    unit = (prefix / "fer-edge.service").read_text()
    model = re.search(r"--model (\S+)", unit).group(1).replace("/opt/fer-edge", str(prefix))
    assert os.path.isfile(model), unit  # the unit names a model the installed release has
    ok = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                         "config/fer-edge.yaml"], cwd=prefix / "current", capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # The very same files again (a rebuilt bundle of the same inputs) are nothing to do, not a refusal.
    again = unpack(make_bundle("c.tar.gz", version="1.0.0"), tmp_path / "c")
    assert "nothing to do" in install_sh(again, prefix).stdout


# N21: the manifest is capped, and with allowed signers its signature is checked before it is parsed.

def test_a_manifest_over_its_cap_is_refused_unparsed(make_bundle, unpack, tmp_path, capsys):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    text = (top / "manifest.json").read_text()
    (top / "manifest.json").write_text(text[:-2] + " " * MAX_SPECIAL["manifest.json"] + "}\n")  # valid JSON
    big = repack(top, tmp_path / "big.tar.gz")
    for target in (top, big):
        with pytest.raises(ManifestError, match=r"manifest.json is \d+ bytes or more, more than it may have "
                                                r"\(1024 KiB\): refused"):
            verify(target)
    assert main(["bundle", "verify", str(big)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_with_allowed_signers_an_unsigned_manifest_is_refused_before_it_is_parsed(make_bundle, unpack, tmp_path):
    key = tmp_path / "release"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("release " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (top / "manifest.json").write_text("[" * 100000)  # what a parser would spend itself on
    for target in (top, repack(top, tmp_path / "deep.tar.gz")):
        with pytest.raises(ManifestError, match=r"unsigned \(manifest.json.sig missing\)"):
            verify(target, allowed)


# N25: a prefix pip would read as a marker is refused up front, by deploy and install.sh.

def test_a_semicolon_in_the_prefix_is_refused_up_front(install_sh, make_bundle, unpack, tmp_path, capsys):
    prefix = str(tmp_path / "fer;edge")
    assert main(["deploy", str(make_bundle()), "--host", "pi@127.0.0.1", "--port", "9", "--prefix", prefix]) == 1
    assert f"--prefix {prefix!r}: must be an absolute path without spaces, %, \\, quotes, $, ` or ;" \
        in capsys.readouterr().err
    top = unpack(make_bundle("again.tar.gz"), tmp_path / "unpacked")
    result = install_sh(top, prefix)
    assert result.returncode == 1 and f"--prefix {prefix}: spaces, %, \\, quotes, $, ` and ; are not allowed" \
        in result.stderr
    assert not os.path.exists(prefix)


# N24: the archive's owners and modes are not the device's: staging is root's alone, modes are tar's own.

def test_deploy_extracts_without_the_archive_s_owners_and_modes(make_bundle, sshd, device_python, tmp_path):
    prefix = tmp_path / "device" / "fer-edge"
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(make_bundle(version="1.0.0")) as src, tarfile.open(hostile, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            member.uid = member.gid = 1000
            member.uname = member.gname = "pi"
            member.mode = 0o777 if member.isdir() else 0o4777 if member.name.endswith(".tflite") else 0o666
            dst.addfile(member, data)
    assert verify(hostile)["version"] == "1.0.0"  # the headers are not what the manifest covers
    report = tmp_path / "staging.txt"
    stage = prefix / "incoming" / "1.0.0"
    look = (f"stat -c '%a %u %n' {stage} $(find {stage}/fer-edge-1.0.0) > {report}")
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(hostile),
                             *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python",
                             device_python, "--no-systemd", "--timeout", "3", "--health-cmd", look],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    modes = [line.split(" ", 2) for line in report.read_text().splitlines()]
    assert modes[0] == ["700", str(os.getuid()), str(stage)]
    assert len(modes) > 10
    for mode, uid, name in modes[1:]:
        assert int(mode, 8) & 0o7022 == 0 and uid == str(os.getuid()), (mode, uid, name)


def test_deploy_refuses_a_downgrade_and_a_changed_same_version_and_says_why(make_bundle, sshd, device_python,
                                                                              tmp_path):
    prefix = tmp_path / "device" / "fer-edge"

    def deploy(bundle, *extra):
        return subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(bundle),
                               *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python",
                               device_python, "--no-systemd", "--timeout", "3", *extra],
                              capture_output=True, text=True, timeout=300)

    old, new = make_bundle("1.tar.gz", version="1.0.0"), make_bundle("2.tar.gz", version="2.0.0")
    for bundle in (old, new):
        done = deploy(bundle)
        assert done.returncode == 0, done.stdout + done.stderr
    changed = deploy(make_bundle("2b.tar.gz", version="2.0.0", model=REPO / "models" / "fer_mobile_int8.tflite"))
    assert changed.returncode == 1
    assert changed.stderr.strip().endswith("release 2.0.0 is already installed in "
                                           f"{prefix}/releases/2.0.0 with other files: a changed bundle needs a new "
                                           "version (fer-edge bundle --version)"), changed.stderr
    refused = deploy(old)
    assert refused.returncode == 1 and "refused as a downgrade" in refused.stderr, refused.stdout + refused.stderr
    assert os.readlink(prefix / "current") == "releases/2.0.0"
    assert sorted(os.listdir(prefix / "releases")) == ["1.0.0", "2.0.0"]  # nothing that was there is removed
    ok = subprocess.run([prefix / "current" / "venv" / "bin" / "fer-edge", "run", "--validate-config",
                         "config/fer-edge.yaml"], cwd=prefix / "current", capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    asked = deploy(old, "--allow-downgrade")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert os.readlink(prefix / "current") == "releases/1.0.0"
