"""The bundle probes of issue 14 (items 2-5), kept as regression tests: a hostile bundle or command line
is refused before anything is written outside the install prefix. Loopback only, bounded sizes."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from edge_runtime.cli import main
from edge_runtime.release.manifest import MAX_MEMBER, ManifestError, verify


def repack(folder, out):
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out



def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], end: bool = True) -> bytes:
    """A tar stream of these members, with or without its end-of-archive blocks."""
    buf = io.BytesIO()
    for info, data in members:
        buf.write(info.tobuf(tarfile.PAX_FORMAT))
        if data:
            buf.write(data + b"\0" * (-len(data) % 512))
    if end:
        buf.write(b"\0" * 1024)
    return buf.getvalue()


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, size: int | None = None):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, len(data) if size is None else size, 0o755
    return info, data


def archive_end(raw: bytes) -> int:
    """Where the last member of a tar stream ends (before its zero blocks)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1]
        return last.offset_data + -(-last.size // 512) * 512


# Item 2: the version is a release name, never a path; a malformed manifest is one sentence.

def test_a_version_that_is_a_path_is_refused_by_verify_and_install(install_sh, make_bundle, unpack, tmp_path, capsys):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    manifest = json.loads((top / "manifest.json").read_text())
    manifest["version"] = "../../../canary/victim"
    (top / "manifest.json").write_text(json.dumps(manifest))
    evil = repack(top, tmp_path / "evil.tar.gz")
    for target in (top, evil):
        assert main(["bundle", "verify", str(target)]) == 1
        assert "version '../../../canary/victim' is not a plain release name" in capsys.readouterr().err
    # deploy checks the bundle before it reaches for the device (nothing listens on this port).
    assert main(["deploy", str(evil), "--host", "pi@127.0.0.1", "--port", "9", "--prefix", str(tmp_path / "d")]) == 1
    assert "version '../../../canary/victim' is not a plain release name" in capsys.readouterr().err
    prefix = tmp_path / "a" / "b" / "c" / "prefix"
    result = install_sh(top, prefix)
    assert result.returncode == 1 and "not a plain release name" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "canary").exists()


@pytest.mark.parametrize("files, said", [
    ({"install.sh": "abc"}, "install.sh: needs a 64-hex-digit 'sha256' and a byte 'size'"),
    ({"install.sh": {"sha256": 1, "size": 3}}, "install.sh: needs a 64-hex-digit 'sha256'"),
    ({"install.sh": {"sha256": "0" * 64, "size": "3"}}, "install.sh: needs a 64-hex-digit 'sha256' and a byte"),
    ({"../outside": {"sha256": "0" * 64, "size": 3}}, "'../outside' is not a plain relative path"),
    ({"venv/bin/fer-edge": {"sha256": "0" * 64, "size": 3}}, "'venv/bin/fer-edge' is not a plain relative path"),
])
def test_a_malformed_manifest_entry_is_one_sentence(make_bundle, unpack, tmp_path, capsys, files, said):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    manifest = json.loads((top / "manifest.json").read_text())
    manifest["files"].update(files)
    (top / "manifest.json").write_text(json.dumps(manifest))
    assert main(["bundle", "verify", str(top)]) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_manifest_without_a_version_is_one_sentence(make_bundle, unpack, tmp_path, capsys):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    manifest = json.loads((top / "manifest.json").read_text())
    del manifest["version"]
    (top / "manifest.json").write_text(json.dumps(manifest))
    result = subprocess.run([sys.executable, "-m", "edge_runtime.release.manifest", "version", str(top)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "version None is not a plain release name" in result.stderr
    assert "Traceback" not in result.stderr


# Item 3: verify reads the archive as tar does.

def test_a_second_install_sh_behind_a_junk_block_is_refused(make_bundle, tmp_path):
    bundle = make_bundle(version="0.1.0-junk")
    raw = gzip.decompress(bundle.read_bytes())
    evil = tar_bytes([member("fer-edge-0.1.0-junk/install.sh", b"#!/bin/sh\necho owned\n")])
    hostile = tmp_path / "hostile.tar.gz"
    hostile.write_bytes(gzip.compress(raw[:archive_end(raw)] + b"J" * 512 + evil))
    # The probe is real: GNU tar extracts the second install.sh over the first.
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xzf", str(hostile), "-C", str(tmp_path / "x")], capture_output=True)
    assert "owned" in (tmp_path / "x" / "fer-edge-0.1.0-junk" / "install.sh").read_text()
    with pytest.raises(ManifestError, match="install.sh: 512 bytes before it that are no file of the archive"):
        verify(hostile)
    # The same member again without the junk block: tar keeps the second, so verify refuses both.
    twice = tmp_path / "twice.tar.gz"
    twice.write_bytes(gzip.compress(raw[:archive_end(raw)] + evil))
    with pytest.raises(ManifestError, match="install.sh: in the archive twice"):
        verify(twice)


def test_junk_after_the_archive_end_is_refused(make_bundle, tmp_path):
    bundle = make_bundle()
    raw = gzip.decompress(bundle.read_bytes())
    hostile = tmp_path / "trailing.tar.gz"
    hostile.write_bytes(gzip.compress(raw + b"#!/bin/sh\n" + b"\0" * 1014))
    with pytest.raises(ManifestError, match="data after the archive's last file"):
        verify(hostile)


def test_a_flipped_gzip_crc_is_refused_as_tar_refuses_it(make_bundle, tmp_path):
    data = bytearray(make_bundle().read_bytes())
    data[-8] ^= 0x01  # the gzip trailer: CRC32, then the length
    flipped = tmp_path / "crc.tar.gz"
    flipped.write_bytes(bytes(data))
    (tmp_path / "x").mkdir()
    assert subprocess.run(["tar", "-xzf", str(flipped), "-C", str(tmp_path / "x")], capture_output=True).returncode
    with pytest.raises(ManifestError, match="not a readable .tar.gz bundle: CRC check failed"):
        verify(flipped)


def test_a_huge_member_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    info, _ = member("fer-edge-1/wheels/big.whl", size=2 << 30)  # 2 GB of zeros claimed; only 1 MB present
    bomb.write_bytes(gzip.compress(tar_bytes([member("fer-edge-1/manifest.json", b"{}")], end=False)
                                   + info.tobuf(tarfile.PAX_FORMAT) + b"\0" * (1 << 20)))
    with pytest.raises(ManifestError, match=f"wheels/big.whl: 2147483648 bytes, more than a bundle file may have "
                                            f"\\({MAX_MEMBER >> 20} MiB\\)"):
        verify(bomb)


def test_a_flood_of_zeros_after_the_end_is_refused_within_the_padding_cap(make_bundle, tmp_path):
    raw = gzip.decompress(make_bundle().read_bytes())
    bomb = tmp_path / "zeros.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as gz:
        gz.write(raw)
        for _ in range(64):
            gz.write(bytes(1 << 20))
    with pytest.raises(ManifestError, match="KiB after the archive's last file: refused"):
        verify(bomb)


@pytest.mark.parametrize("kind, name", [(tarfile.LNKTYPE, "hard link"), (tarfile.FIFOTYPE, "fifo"),
                                        (tarfile.CHRTYPE, "device")])
def test_links_and_special_files_are_refused(tmp_path, kind, name):
    info, _ = member("fer-edge-1/install.sh", kind=kind)
    info.linkname = "fer-edge-1/models/x" if kind == tarfile.LNKTYPE else ""
    path = tmp_path / "special.tar.gz"
    path.write_bytes(gzip.compress(tar_bytes([member("fer-edge-1/", kind=tarfile.DIRTYPE), (info, None)])))
    with pytest.raises(ManifestError, match="install.sh: not a regular file"):
        verify(path)


# Item 4: everything that is installed is verified, with real paths.

def test_an_unlisted_venv_in_the_bundle_is_refused_by_verify_and_install(install_sh, make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (top / "venv" / "bin").mkdir(parents=True)
    (top / "venv" / "bin" / "fer-edge").write_text("#!/bin/sh\necho owned\n")
    with pytest.raises(ManifestError, match="venv/bin/fer-edge: extra file"):
        verify(top)
    result = install_sh(top, tmp_path / "root", "--verify-only")
    assert result.returncode == 1 and "venv/bin/fer-edge: extra file" in result.stderr


def test_a_symlinked_folder_in_a_bundle_folder_is_refused(make_bundle, unpack, tmp_path, capsys):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (tmp_path / "elsewhere").mkdir()
    (top / "extra").symlink_to(tmp_path / "elsewhere")
    assert main(["bundle", "verify", str(top)]) == 1
    assert "extra: not a regular file (links and special files are refused)" in capsys.readouterr().err
    (top / "extra").unlink()
    shutil.move(top / "models", tmp_path / "elsewhere" / "models")
    (top / "models").symlink_to(tmp_path / "elsewhere" / "models")  # the same files, reached through a link
    with pytest.raises(ManifestError, match="models: not a regular file"):
        verify(top)


def test_only_install_sh_s_own_venv_link_may_stand_beside_the_files(make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (top / "venv").symlink_to("../../venvs/0123456789abcdef")
    assert verify(top)["version"]
    (top / "venv").unlink()
    (top / "venv").symlink_to("/usr")
    with pytest.raises(ManifestError, match="venv: a link to /usr, not to an install.sh venv"):
        verify(top)


def test_verify_through_a_linked_release_folder_checks_the_real_files(make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (tmp_path / "current").symlink_to(top)
    assert verify(tmp_path / "current")["version"]
    os.chmod(top / "install.sh", 0o755)
    (top / "install.sh").write_text("#!/bin/sh\necho owned\n")
    with pytest.raises(ManifestError, match="install.sh: changed"):
        verify(tmp_path / "current")


# Item 5: deploy's command line and the device's lock.

def test_a_host_that_is_an_ssh_option_is_refused_before_ssh_runs(make_bundle, tmp_path, capsys):
    marker = tmp_path / "proxied"
    code = main(["deploy", str(make_bundle()), f"--host=-oProxyCommand=touch {marker}", "--prefix",
                 str(tmp_path / "device")])
    assert code == 1 and not marker.exists()
    assert "--host '-oProxyCommand=touch" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ["relative/fer-edge", "/opt/fer edge", "/opt/fer%i", "/opt/$(touch x)"])
def test_a_prefix_the_unit_or_a_shell_would_misread_is_refused(install_sh, make_bundle, unpack, tmp_path, capsys,
                                                               prefix):
    assert main(["deploy", str(make_bundle()), "--host", "pi@127.0.0.1", "--prefix", prefix]) == 1
    assert f"--prefix {prefix!r}: must be an absolute path" in capsys.readouterr().err
    top = unpack(make_bundle("again.tar.gz"), tmp_path / "unpacked")
    result = install_sh(top, prefix, "--dry-run")
    assert result.returncode == 1 and f"--prefix {prefix}:" in result.stderr


def test_a_prefix_with_sed_specials_lands_in_the_unit_as_written(install_sh, make_bundle, unpack, tmp_path):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    prefix = tmp_path / "a&b#c" / "fer-edge"
    result = install_sh(top, prefix, "--no-switch")
    assert result.returncode == 0, result.stdout + result.stderr
    unit = (prefix / "fer-edge.service").read_text()
    assert f"ExecStart={prefix}/current/venv/bin/fer-edge run --config {prefix}/current/config/fer-edge.yaml" in unit


def test_a_second_deploy_waits_for_the_first_then_refuses_clearly(make_bundle, sshd, device_python, tmp_path):
    prefix = tmp_path / "device" / "fer-edge"
    prefix.mkdir(parents=True)
    # Another deploy holds the device's lock (the same flock the deploy takes there).
    holder = subprocess.Popen(["flock", "-o", str(prefix / ".deploy.lock"), "sleep", "60"])
    try:
        deadline = 50
        while deadline and subprocess.run(["flock", "-n", str(prefix / ".deploy.lock"), "true"]).returncode == 0:
            deadline -= 1
            subprocess.run(["sleep", "0.1"])
        result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(make_bundle()),
                                 *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python",
                                 device_python, "--no-systemd", "--lock-timeout", "1"],
                                capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert f"another deploy holds {prefix}/.deploy.lock: waiting up to 1 s" in result.stdout
    assert f"still holds {prefix}/.deploy.lock after 1 s: try again when it has finished" in result.stderr
    assert not (prefix / "incoming").exists() and not (prefix / "releases").exists()

    # A lock that is let go in time: the deploy waits for it, then goes through.
    holder, deadline = subprocess.Popen(["flock", "-o", str(prefix / ".deploy.lock"), "sleep", "3"]), 50
    while subprocess.run(["flock", "-n", str(prefix / ".deploy.lock"), "true"]).returncode == 0 and deadline:
        deadline -= 1
        subprocess.run(["sleep", "0.1"])
    waited = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "deploy", str(make_bundle("b.tar.gz")),
                             *sshd.deploy_args(tmp_path / "known_hosts"), "--prefix", str(prefix), "--python",
                             device_python, "--no-systemd", "--lock-timeout", "60", "--timeout", "3"],
                            capture_output=True, text=True, timeout=240)
    holder.wait(timeout=10)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "waiting up to 60 s" in waited.stdout and "deployed" in waited.stdout
