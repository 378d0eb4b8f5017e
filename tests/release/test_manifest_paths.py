"""Bundle manifests and archives: no accepted path leaves its root, and a bundled model's metadata is
checked like the model itself. Small hand-made bundles (written by the real manifest writer); no
wheel is built."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.release.manifest import (
    ManifestError,
    check_model,
    load_manifest,
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


@settings(max_examples=200, deadline=None)
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
    with pytest.raises(ManifestError, match=r"m\.tflite: sha256 .* does not match the bundle manifest"):
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
