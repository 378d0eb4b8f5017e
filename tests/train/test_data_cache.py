"""The decoded-faces cache returns what a fresh load returns, and notices changed files."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from train.data import load_dataset
from train.data.cache import cache_dir


def _write(root, name, value):
    folder = root / "train" / "happy"
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.full((48, 48), value, np.uint8))


def test_second_load_comes_from_cache_and_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    for i in range(3):
        _write(tmp_path / "data", f"{i}.png", 10 * i)
    first = load_dataset(tmp_path / "data").split("train")
    assert len(list((tmp_path / "cache").glob("faces-*.npz"))) == 1
    # Overwrite every image with zeros of the same size and modification time: a load that decoded the
    # files again would fail on them, so only a load that reads the cache returns the faces.
    for path in (tmp_path / "data").rglob("*.png"):
        st = path.stat()
        path.write_bytes(bytes(st.st_size))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = load_dataset(tmp_path / "data").split("train")
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.sources == second.sources


def test_changed_file_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    _write(tmp_path / "data", "a.png", 10)
    assert load_dataset(tmp_path / "data").split("train").images[0, 0, 0] == 10
    _write(tmp_path / "data", "a.png", 200)  # same name, new content and size/mtime
    _write(tmp_path / "data", "b.png", 50)
    split = load_dataset(tmp_path / "data").split("train")
    assert split.images[:, 0, 0].tolist() == [200, 50]


def test_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _write(tmp_path / "data", "a.png", 10)
    load_dataset(tmp_path / "data")
    assert not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("setting", ["off", "OFF", "0", "no", "False"])
def test_words_that_switch_the_cache_off(monkeypatch, setting):
    monkeypatch.setenv("FER_EDGE_CACHE", setting)
    assert cache_dir() is None


def test_where_the_cache_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.setenv("FER_EDGE_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fer-edge"
    monkeypatch.delenv("FER_EDGE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "fer-edge"
