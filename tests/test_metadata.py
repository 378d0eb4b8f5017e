"""Model metadata files: atomic, readable, and clear about what is wrong."""

from __future__ import annotations

import os

import pytest

from edge_runtime.metadata import MetadataError, read_metadata, write_atomic, write_json_atomic


def test_atomic_write_leaves_no_temporary_and_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "m.json", {"labels": ["a", "b"]})
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    target.write_text("old")

    def disk_gone(fd):
        raise OSError(5, "disk gone")

    # The new bytes are written, then flushing them to the disk fails: the rename must not happen.
    monkeypatch.setattr(os, "fsync", disk_gone)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "metadata file missing"), ("{not json", "unreadable metadata"), ("[1]", "JSON object"),
     ('{"labels": []}', "non-empty list")],
)
def test_bad_metadata_is_named(tmp_path, content, message):
    model = tmp_path / "m.tflite"
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    with pytest.raises(MetadataError, match=message) as info:
        read_metadata(model)
    assert "m.json" in str(info.value)
