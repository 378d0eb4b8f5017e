"""Bundle manifests and archives: no accepted path leaves its root, and a bundled model's metadata is
checked like the model itself. Small hand-made bundles (written by the real manifest writer); no
wheel is built."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.release import manifest as manifest_module
from edge_runtime.release.manifest import (
    ManifestError,
    check_model,
    check_version,
    load_manifest,
    main,
    verify_dir,
    verify_tarball,
    write_manifest,
)

SHA = "0" * 64
segments = st.sampled_from(["a", "b.json", "..", ".", "", "venv", "a\\..", "...", "..a", " ", "models"])
paths = st.lists(segments, min_size=1, max_size=5).map("/".join) | st.lists(segments, max_size=4).map(
    lambda parts: "/" + "/".join(parts))


def manifest_text(files: dict) -> str:
    return json.dumps({"version": "1.0", "files": files})


@settings(max_examples=400, deadline=None)
@given(paths)
def test_no_accepted_manifest_path_escapes_the_bundle(rel):
    try:
        load_manifest(manifest_text({rel: {"sha256": SHA, "size": 0}}), "m.json")
    except ManifestError as exc:
        assert "is not a plain relative path inside the bundle" in str(exc)
        return
    # (A non-canonical name such as "a//b" or "a/" may pass here; it stays inside, and verify then reports
    # it missing, since the files found are named canonically.)
    assert posixpath.normpath(posixpath.join("/bundle", rel)).startswith("/bundle/")
    assert rel.split("/")[0] != "venv"


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "a/./b", "a\\..\\b", "venv/bin/python", "",
                                 "..", "."])
def test_manifest_paths_that_are_refused(rel):
    with pytest.raises(ManifestError, match=r"m\.json: files: .* is not a plain relative path inside the bundle"):
        load_manifest(manifest_text({rel: {"sha256": SHA, "size": 0}}), "m.json")


def test_a_plain_nested_path_is_accepted():
    manifest = load_manifest(manifest_text({"models/m.tflite": {"sha256": SHA, "size": 3}}), "m.json")
    assert manifest["files"] == {"models/m.tflite": {"sha256": SHA, "size": 3}}


def tarball(tmp_path, names: list[str], manifest: dict | None = None):
    """A .tar.gz with an empty regular file at each name, plus fer-edge-1.0/manifest.json."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = [*names, "fer-edge-1.0/manifest.json"]
        for name in members:
            data = json.dumps(manifest or {"version": "1.0", "files": {}}).encode() if name.endswith(
                "/manifest.json") else b""
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("name", ["fer-edge-1.0/../evil", "fer-edge-1.0/a/../../evil", "../evil", "/etc/evil",
                                  "fer-edge-1.0/./x", "fer-edge-1.0\\..\\evil", "other/evil"])
def test_a_tarball_member_outside_the_top_folder_is_refused(tmp_path, name):
    names = [name] if name.startswith("fer-edge-1.0") else ["fer-edge-1.0/a", name]
    with pytest.raises(ManifestError, match=r"outside the bundle's one top folder"):
        verify_tarball(tarball(tmp_path, names))


def test_a_tarball_of_plain_members_is_accepted(tmp_path):
    files = {"a": {"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size": 0}}
    manifest = verify_tarball(tarball(tmp_path, ["fer-edge-1.0/a"], {"version": "1.0", "files": files}))
    assert manifest["top"] == "fer-edge-1.0" and manifest["files"] == files


@settings(max_examples=100, deadline=None)
@given(paths)
def test_no_accepted_tarball_member_escapes_the_top_folder(tmp_path_factory, rel):
    tmp = tmp_path_factory.mktemp("tar")
    name = "fer-edge-1.0/" + rel
    files = {}
    try:
        verify_tarball(tarball(tmp, [name], {"version": "1.0", "files": files}))
    except ManifestError as exc:
        # Refused for its path, or (accepted path) for not being listed in the empty manifest.
        assert "outside the bundle's one top folder" in str(exc) or "extra file" in str(exc) or "twice" in str(exc)
        if "outside" in str(exc):
            return
    resolved = posixpath.normpath(posixpath.join("/x", name))
    assert resolved.startswith("/x/fer-edge-1.0")


def bundle_with_model(tmp_path):
    root = tmp_path / "fer-edge-1.0"
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.tflite").write_bytes(b"model bytes")
    (root / "models" / "m.json").write_text('{"labels": ["a", "b"]}')
    write_manifest(root, {"name": "fer-edge", "version": "1.0"})
    return root


def test_a_bundled_model_and_its_metadata_are_checked(tmp_path):
    root = bundle_with_model(tmp_path)
    assert check_model(root / "models" / "m.tflite") == root / "manifest.json"
    (root / "models" / "m.json").write_text('{"labels": ["b", "a"]}')  # labels swapped after bundling
    with pytest.raises(ManifestError, match=r"m\.json: sha256 [0-9a-f]{12}\.\.\. does not match the bundle manifest"):
        check_model(root / "models" / "m.tflite")
    (root / "models" / "m.json").unlink()
    with pytest.raises(ManifestError, match=r"m\.json: missing, but listed in the bundle manifest"):
        check_model(root / "models" / "m.tflite")


def test_a_changed_or_unlisted_bundled_model_is_refused(tmp_path):
    root = bundle_with_model(tmp_path)
    (root / "models" / "m.tflite").write_bytes(b"model bytez")
    with pytest.raises(ManifestError, match=r"m\.tflite: sha256 [0-9a-f]{12}\.\.\. does not match the bundle manifest "
                                            r".*manifest\.json \([0-9a-f]{12}\.\.\.\): the file changed after "
                                            r"the bundle was made; refusing to load it\. Reinstall or redeploy the "
                                            r"bundle\.$"):
        check_model(root / "models" / "m.tflite")
    (root / "models" / "other.tflite").write_bytes(b"x")
    with pytest.raises(ManifestError, match=r"other\.tflite: refusing to load a model that its bundle's manifest"):
        check_model(root / "models" / "other.tflite")


def test_a_model_outside_any_bundle_passes(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")
    assert check_model(tmp_path / "m.tflite") is None
    # Another project's manifest.json on the way is not a fer-edge bundle.
    (tmp_path / "manifest.json").write_text(manifest_text({}))
    assert check_model(tmp_path / "m.tflite") is None


# The rest of manifest.py's checks, on small bundles made here (no wheel is built).

def small_bundle(tmp_path, version: str = "1.0") -> tuple[Path, dict]:
    root = tmp_path / f"fer-edge-{version}"
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.tflite").write_bytes(b"model bytes")
    (root / "install.sh").write_text("#!/bin/sh\n")
    return root, write_manifest(root, {"name": "fer-edge", "version": version})


def test_a_bundle_folder_verifies_and_names_the_first_difference(tmp_path):
    root, written = small_bundle(tmp_path)
    assert written["format"] == 1 and written["version"] == "1.0"
    assert written["files"]["models/m.tflite"] == {"sha256": hashlib.sha256(b"model bytes").hexdigest(), "size": 11}
    assert sorted(written["files"]) == ["install.sh", "models/m.tflite"]
    assert verify_dir(root)["files"] == written["files"]
    (root / "models" / "m.tflite").write_bytes(b"model byteZ")  # same size
    with pytest.raises(ManifestError, match=r"^models/m\.tflite: changed: sha256 [0-9a-f]{12}\.\.\., manifest\.json "
                                            r"says [0-9a-f]{12}\.\.\.$"):
        verify_dir(root)
    (root / "models" / "m.tflite").write_bytes(b"model")
    with pytest.raises(ManifestError, match=r"^models/m\.tflite: changed: 5 bytes, manifest\.json says 11$"):
        verify_dir(root)
    (root / "models" / "m.tflite").write_bytes(b"model bytes")
    (root / "extra.txt").write_text("x")
    with pytest.raises(ManifestError, match=r"^extra\.txt: extra file \(not listed in manifest\.json\)$"):
        verify_dir(root)
    (root / "extra.txt").unlink()
    (root / "install.sh").unlink()
    with pytest.raises(ManifestError, match=r"^install\.sh: missing \(listed in manifest\.json\)$"):
        verify_dir(root)


def test_links_are_refused_except_the_install_venv(tmp_path):
    root, _ = small_bundle(tmp_path)
    (root / "venv").symlink_to("../../venvs/0123456789abcdef")
    assert verify_dir(root)["version"] == "1.0"
    (root / "venv").unlink()
    (root / "venv").symlink_to("/usr")
    with pytest.raises(ManifestError, match=r"^venv: a link to /usr, not to an install\.sh venv$"):
        verify_dir(root)
    (root / "venv").unlink()
    (root / "models" / "link.tflite").symlink_to(root / "models" / "m.tflite")
    with pytest.raises(ManifestError, match=r"^models/link\.tflite: not a regular file \(links and special files "
                                            r"are refused\)$"):
        verify_dir(root)


def test_a_missing_or_linked_manifest_is_refused(tmp_path):
    root, _ = small_bundle(tmp_path)
    (root / "manifest.json").rename(tmp_path / "elsewhere.json")
    with pytest.raises(ManifestError, match=r"^manifest\.json: missing in .*fer-edge-1\.0 \(or not a regular file\)$"):
        verify_dir(root)
    (root / "manifest.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ManifestError, match=r"^manifest\.json: missing in"):
        verify_dir(root)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", r"^m\.json: not a readable manifest: "),
    ("[1]", r"^m\.json: not a fer-edge manifest \(no 'files' table\)$"),
    ('{"files": []}', r"^m\.json: not a fer-edge manifest \(no 'files' table\)$"),
    ('{"version": "1.0", "files": {"a": {"sha256": "ABC", "size": 1}}}',
     r"^m\.json: files: a: needs a 64-hex-digit 'sha256' and a byte 'size', has \{'sha256': 'ABC', 'size': 1\}$"),
    ('{"version": "1.0", "files": {"a": {"sha256": "' + "0" * 64 + '", "size": -1}}}', r"files: a: needs a 64-hex"),
    ('{"version": "1.0", "files": {"a": {"sha256": "' + "0" * 64 + '", "size": true}}}', r"files: a: needs a 64-hex"),
    ('{"version": "1.0", "files": {"a": {"sha256": "' + "0" * 64 + '", "size": 1.0}}}', r"files: a: needs a 64-hex"),
    ('{"version": "1.0", "files": {"a": {"size": 1}}}', r"files: a: needs a 64-hex"),
    ('{"version": "1.0", "files": {"a": "0"}}', r"files: a: needs a 64-hex"),
    ('{"version": "../1", "files": {}}', r"^m\.json: version '\.\./1' is not a plain release name \(1-100 letters, "
                                         r"digits and \. _ \+ -, starting with a letter or digit\)$"),
    ('{"files": {}}', r"^m\.json: version None is not a plain release name"),
])
def test_bad_manifests_are_named(text, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(text, "m.json")


@pytest.mark.parametrize("version", ["1.0", "2026.12.01+pi", "a", "A_b-c", "9" * 100])
def test_plain_release_names(version):
    assert check_version(version, "here") == version


@pytest.mark.parametrize("version", ["", ".hidden", "-rf", "a/b", "a b", "9" * 101, 1.0, None])
def test_release_names_that_could_name_another_folder_are_refused(version):
    with pytest.raises(ManifestError, match=r"^here: version .* is not a plain release name"):
        check_version(version, "here")


def pack(root: Path, out: Path, extra=None) -> Path:
    """root as a .tar.gz with root's name as its one top folder; `extra(tar)` may add members."""
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root, arcname=root.name)
        if extra:
            extra(tar)
    return out


def test_a_bundle_tarball_verifies_and_its_top_folder_must_name_its_version(tmp_path):
    root, written = small_bundle(tmp_path)
    manifest = verify_tarball(pack(root, tmp_path / "b.tar.gz"))
    assert manifest["top"] == "fer-edge-1.0" and manifest["files"] == written["files"]
    renamed = tmp_path / "fer-edge-2.0"
    shutil.copytree(root, renamed)
    with pytest.raises(ManifestError, match=r"b2\.tar\.gz: top folder 'fer-edge-2\.0' is not fer-edge-1\.0$"):
        verify_tarball(pack(renamed, tmp_path / "b2.tar.gz"))
    (root / "manifest.json").unlink()
    with pytest.raises(ManifestError, match=r"^manifest\.json: missing in .*b3\.tar\.gz$"):
        verify_tarball(pack(root, tmp_path / "b3.tar.gz"))


def test_tarball_tricks_are_refused(tmp_path):
    root, _ = small_bundle(tmp_path)

    def twice(tar):
        tar.add(root / "install.sh", arcname=f"{root.name}/install.sh")

    with pytest.raises(ManifestError, match=r"^install\.sh: in the archive twice \(tar would keep the second\): "
                                            r"refused$"):
        verify_tarball(pack(root, tmp_path / "twice.tar.gz", twice))

    def link(tar):
        info = tarfile.TarInfo(f"{root.name}/models/l.tflite")
        info.type, info.linkname = tarfile.SYMTYPE, "m.tflite"
        tar.addfile(info)

    with pytest.raises(ManifestError, match=r"^models/l\.tflite: not a regular file \(links and special files are "
                                            r"refused\)$"):
        verify_tarball(pack(root, tmp_path / "link.tar.gz", link))
    good = pack(root, tmp_path / "good.tar.gz")
    data = gzip.decompress(good.read_bytes())
    (tmp_path / "tail.tar.gz").write_bytes(gzip.compress(data + b"appended after the end"))
    with pytest.raises(ManifestError, match=r"tail\.tar\.gz: data after the archive's last file that is not tar's "
                                            r"zero padding: refused$"):
        verify_tarball(tmp_path / "tail.tar.gz")
    (tmp_path / "padded.tar.gz").write_bytes(gzip.compress(data + bytes(4096)))
    assert verify_tarball(tmp_path / "padded.tar.gz")["version"] == "1.0"
    (tmp_path / "plain.tar.gz").write_bytes(data)
    with pytest.raises(ManifestError, match=r"plain\.tar\.gz: not a readable \.tar\.gz bundle: "):
        verify_tarball(tmp_path / "plain.tar.gz")
    (tmp_path / "cut.tar.gz").write_bytes(good.read_bytes()[:-12])
    with pytest.raises(ManifestError, match=r"cut\.tar\.gz: not a readable \.tar\.gz bundle"):
        verify_tarball(tmp_path / "cut.tar.gz")


def keys(tmp_path, *names):
    allowed = []
    for name in names:
        key = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
        allowed.append(f"{name} {(tmp_path / (name + '.pub')).read_text().strip()}")
    (tmp_path / "allowed_signers").write_text("\n".join(allowed[:1]) + "\n")
    return tmp_path / "allowed_signers"


def sign(root: Path, key: Path, namespace: str = "fer-edge-bundle") -> None:
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", namespace, str(root / "manifest.json")],
                   check=True, capture_output=True)


def test_signed_manifests(tmp_path, capsys):
    root, _ = small_bundle(tmp_path / "b")
    allowed = keys(tmp_path, "release", "stranger")
    with pytest.raises(ManifestError, match=r"fer-edge-1\.0: unsigned \(manifest\.json\.sig missing\), but .*"
                                            r"allowed_signers names the keys a bundle must be signed with: refused$"):
        verify_dir(root, allowed)
    sign(root, tmp_path / "release")
    assert verify_dir(root, allowed)["signed_by"] == "release"
    assert verify_tarball(pack(root, tmp_path / "s.tar.gz"), allowed)["signed_by"] == "release"
    assert main(["verify", str(root), "--allowed-signers", str(allowed)]) == 0
    assert capsys.readouterr().out == f"verify: {root}: release 1.0, 2 files match manifest.json, signed by release\n"
    (root / "manifest.json.sig").unlink()
    sign(root, tmp_path / "stranger")
    with pytest.raises(ManifestError, match=r"manifest\.json\.sig is by no key in .*allowed_signers: refused$"):
        verify_dir(root, allowed)
    (root / "manifest.json.sig").unlink()
    sign(root, tmp_path / "release", namespace="file")
    with pytest.raises(ManifestError, match=r"manifest\.json\.sig does not match manifest\.json \(or is not a "
                                            r"fer-edge-bundle signature\) for release's key in .*: refused$"):
        verify_dir(root, allowed)


def test_the_verify_command(tmp_path, capsys):
    root, _ = small_bundle(tmp_path)
    assert main(["verify", str(root)]) == 0
    assert capsys.readouterr().out == f"verify: {root}: release 1.0, 2 files match manifest.json\n"
    assert main(["version", str(root)]) == 0 and capsys.readouterr().out == "1.0\n"
    (root / "install.sh").write_text("changed")
    assert main(["verify", str(root)]) == 1
    assert capsys.readouterr().err == "verify: install.sh: changed: 7 bytes, manifest.json says 10\n"
    assert main(["verify", str(tmp_path / "nothing.tar.gz")]) == 1
    assert "not a readable .tar.gz bundle" in capsys.readouterr().err


def test_the_verify_command_describes_itself(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: python3 -m edge_runtime.release.manifest [-h] {verify,version,older}")
    assert "Check a fer-edge bundle (.tar.gz or folder) against its manifest." in text
    assert "verify exit 0 when every file matches manifest.json, 1 naming the first that does not" in text
    assert "version print the version a bundle folder's manifest gives" in text
    assert "older exit 0 when release name A is older than B, else 1" in text
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("--allowed-signers FILE require a good signature of manifest.json by a key in this ssh allowed-signers "
            "file") in text
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and "the following arguments are required: command" in capsys.readouterr().err


def big_bundle(tmp_path, size: int) -> tuple[Path, bytes]:
    root, _ = small_bundle(tmp_path)
    (root / "models" / "big.bin").write_bytes(np.random.default_rng(0).bytes(size))
    write_manifest(root, {"name": "fer-edge", "version": "1.0"})
    bundle = pack(root, tmp_path / "big.tar.gz")
    return bundle, gzip.decompress(bundle.read_bytes())


def test_size_limits_on_a_tarball(tmp_path, monkeypatch):
    bundle, data = big_bundle(tmp_path, 3 << 20)
    monkeypatch.setattr(manifest_module, "MAX_TOTAL", len(data))
    assert verify_tarball(bundle)["version"] == "1.0"  # exactly the limit
    monkeypatch.setattr(manifest_module, "MAX_TOTAL", 3 << 20)
    with pytest.raises(ManifestError, match=r"big\.tar\.gz: unpacks to more than 3 MiB: refused$"):
        verify_tarball(bundle)
    monkeypatch.setattr(manifest_module, "MAX_TOTAL", len(data) - 1)
    with pytest.raises(ManifestError, match=r"unpacks to more than"):
        verify_tarball(bundle)
    monkeypatch.setattr(manifest_module, "MAX_TOTAL", 1 << 30)
    monkeypatch.setattr(manifest_module, "MAX_MEMBER", 3 << 20)
    assert verify_tarball(bundle)["version"] == "1.0"  # a file of exactly the limit
    monkeypatch.setattr(manifest_module, "MAX_MEMBER", 2 << 20)
    with pytest.raises(ManifestError, match=r"^models/big\.bin: 3145728 bytes, more than a bundle file may have "
                                            r"\(2 MiB\): refused$"):
        verify_tarball(bundle)


def test_zeros_past_the_end_are_padding_only_up_to_a_mebibyte(tmp_path):
    root, _ = small_bundle(tmp_path)
    data = gzip.decompress(pack(root, tmp_path / "b.tar.gz").read_bytes())
    (tmp_path / "long.tar.gz").write_bytes(gzip.compress(data + bytes(2 << 20)))
    with pytest.raises(ManifestError, match=r"long\.tar\.gz: more than 1024 KiB after the archive's last file: "
                                            r"refused$"):
        verify_tarball(tmp_path / "long.tar.gz")


def test_blocks_between_members_are_refused(tmp_path):
    root, _ = small_bundle(tmp_path)
    data = gzip.decompress(pack(root, tmp_path / "b.tar.gz").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        second = tar.getmembers()[1]
    gap = data[: second.offset] + bytes(512) + data[second.offset:]
    (tmp_path / "gap.tar.gz").write_bytes(gzip.compress(gap))
    with pytest.raises(ManifestError, match=rf"^{re.escape(second.name.split('/', 1)[1])}: 512 bytes before it "
                                            r"that are no file of the archive \(tar would skip them\): refused$"):
        verify_tarball(tmp_path / "gap.tar.gz")


def test_signature_checks_need_ssh_keygen_and_leave_nothing_behind(tmp_path, monkeypatch):
    root, _ = small_bundle(tmp_path / "b")
    allowed = keys(tmp_path, "release")
    sign(root, tmp_path / "release")
    monkeypatch.chdir(tmp_path)
    assert verify_dir(root, allowed)["signed_by"] == "release"
    assert not (tmp_path / "manifest.json.sig").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ManifestError, match=r"^ssh-keygen not found: install openssh-client to check signed bundles$"):
        verify_dir(root, allowed)


# Issue 24: release names order as versions (install.sh's downgrade check), and the manifest's size cap.

def test_release_names_order_as_semantic_versions():
    from edge_runtime.release.manifest import version_key

    ordered = ["0.1.0-20261206T014700Z", "0.1.0-20261207T000000Z", "0.1.0-bad", "0.9", "1.0.0-rc.2", "1.0.0-rc.10",
               "1.0.0", "1.0.0.1", "1.2.0-bad", "1.9.9", "1.10.0", "2.0.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0.0+build.7") == version_key("1.0.0")
    assert version_key("1.0.0-rc1+b") < version_key("1.0.0")
    assert manifest_module.main(["older", "1.0.0", "1.10.0"]) == 0
    assert manifest_module.main(["older", "1.10.0", "1.0.0"]) == 1
    assert manifest_module.main(["older", "1.0.0", "1.0.0"]) == 1


@pytest.mark.parametrize("name", ["manifest.json", "manifest.json.sig", "other.json"])
def test_the_manifest_and_its_signature_are_read_up_to_their_cap_and_not_past_it(tmp_path, name):
    limit = manifest_module.MAX_SPECIAL.get(name, manifest_module.MAX_SPECIAL["manifest.json"])
    path = tmp_path / name
    path.write_bytes(b" " * limit)
    assert manifest_module.read_special(path) == b" " * limit
    path.write_bytes(b" " * (limit + 5))
    with pytest.raises(manifest_module.ManifestError) as info:
        manifest_module.read_special(path)
    assert str(info.value) == (f"{tmp_path}: {name} is {limit + 1} bytes or more, more than it may have "
                               f"({limit >> 10} KiB): refused")
