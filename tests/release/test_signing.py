"""Signed bundles (issue 14, item 10): `fer-edge bundle --sign KEY` signs manifest.json with ssh-keygen -Y;
a device with an allowed-signers file (PREFIX/allowed_signers or /etc/fer-edge/allowed_signers) installs
only bundles one of its keys signed, by install.sh and by deploy, which checks before any bundle code runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edge_runtime.cli import main
from edge_runtime.release.manifest import ManifestError, verify, write_manifest


def keypair(folder, name):
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture
def keys(tmp_path):
    """The release key, a stranger's key, and an allowed-signers file that lists only the release key."""
    folder = tmp_path / "keys"
    folder.mkdir()
    release, stranger = keypair(folder, "release"), keypair(folder, "stranger")
    allowed = folder / "allowed_signers"
    allowed.write_text("release@fer-edge " + " ".join(release.with_suffix(".pub").read_text().split()[:2]) + "\n")
    return release, stranger, allowed



def test_a_signed_bundle_verifies_against_the_allowed_signers(make_bundle, keys, capsys):
    release, _, allowed = keys
    bundle = make_bundle(sign_key=release)
    assert verify(bundle, allowed)["signed_by"] == "release@fer-edge"
    assert main(["bundle", "verify", str(bundle), "--allowed-signers", str(allowed)]) == 0
    assert "6 files match manifest.json, signed by release@fer-edge" in capsys.readouterr().out
    assert "signed_by" not in verify(bundle)  # without an allowed-signers file nothing is required


def test_unsigned_strangers_and_changed_manifests_are_refused(make_bundle, keys, unpack, tmp_path):
    release, stranger, allowed = keys
    with pytest.raises(ManifestError, match="unsigned \\(manifest.json.sig missing\\)"):
        verify(make_bundle("unsigned.tar.gz"), allowed)
    with pytest.raises(ManifestError, match="manifest.json.sig is by no key in"):
        verify(make_bundle("stranger.tar.gz", sign_key=stranger), allowed)
    top = unpack(make_bundle("signed.tar.gz", sign_key=release), tmp_path / "unpacked")
    manifest = json.loads((top / "manifest.json").read_text())
    manifest["parity"] = {"agreement": 1.0}  # a manifest changed after signing
    (top / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="manifest.json.sig does not match manifest.json"):
        verify(top, allowed)


def test_install_sh_requires_a_signature_where_the_device_lists_keys(install_sh, make_bundle, keys, unpack, tmp_path):
    release, _, allowed = keys
    prefix = tmp_path / "root"
    prefix.mkdir()
    (prefix / "allowed_signers").write_text(allowed.read_text())
    unsigned = unpack(make_bundle("unsigned.tar.gz"), tmp_path / "unsigned")
    refused = install_sh(unsigned, prefix)
    assert refused.returncode == 1 and "unsigned (manifest.json.sig missing)" in refused.stderr
    assert sorted(os.listdir(prefix)) == ["allowed_signers"]
    signed = unpack(make_bundle("signed.tar.gz", sign_key=release), tmp_path / "signed")
    ok = install_sh(signed, prefix, "--verify-only")
    assert ok.returncode == 0, ok.stderr
    assert "signed by release@fer-edge" in ok.stdout


def test_sign_with_a_missing_key_is_one_sentence(make_bundle, tmp_path):
    from release_tools.bundle import BundleError

    with pytest.raises(BundleError, match="--sign .*nokey: no such ssh private key file"):
        make_bundle(sign_key=tmp_path / "nokey")


def test_deploy_refuses_an_unsigned_bundle_before_its_code_runs(make_bundle, keys, unpack, sshd, device_python,
                                                                tmp_path, shipped_int8):
    release, _, allowed = keys
    prefix = tmp_path / "device" / "fer-edge"
    prefix.mkdir(parents=True)
    (prefix / "allowed_signers").write_text(allowed.read_text())
    # A hostile bundle, consistent with its own (unsigned) manifest, whose install.sh leaves a mark.
    marker = tmp_path / "install-sh-ran"
    top = unpack(make_bundle("base.tar.gz", version="0.2.0-evil"), tmp_path / "evil")
    (top / "install.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    fields = {k: v for k, v in json.loads((top / "manifest.json").read_text()).items() if k not in ("files", "format")}
    write_manifest(top, fields)
    evil = tmp_path / "evil.tar.gz"
    subprocess.run(["tar", "-czf", str(evil), "-C", str(top.parent), top.name], check=True)

    def deploy(bundle):
        return subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(bundle),
                               *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python",
                               device_python, "--no-systemd", "--timeout", "3"],
                              capture_output=True, text=True, timeout=240)

    refused = deploy(evil)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "unsigned (manifest.json.sig missing)" in refused.stderr
    assert not marker.exists() and not (prefix / "releases").exists()

    good = deploy(make_bundle("signed.tar.gz", version="0.2.0-signed", sign_key=release))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "signed by release@fer-edge" in good.stdout
    assert os.readlink(prefix / "current") == "releases/0.2.0-signed"
