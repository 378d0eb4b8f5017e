"""The GPU pack: FER2013 split into LZMA parts that each fit a `run` call beside the tree, joined back
there into the binary-records folder `train --data` reads; and `python -m train`, its entry point."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from train import gpu_pack
from train.data import DataError, detect_format, load_dataset


@pytest.fixture
def dataset(tmp_path, write_bin, faces):
    """A binary-records folder: 23 train faces and 5 val faces with known labels."""
    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    src.mkdir()
    train_labels, val_labels = rng.integers(0, 7, 23), rng.integers(0, 7, 5)
    (src / "train.bin").write_bytes(write_bin("t.bin", train_labels, faces(23, seed=2)).read_bytes())
    (src / "val.bin").write_bytes(write_bin("v.bin", val_labels, faces(5, seed=3)).read_bytes())
    return src


@pytest.mark.parametrize("parts", [1, 2, 3, 23])
def test_pack_then_unpack_gives_back_every_face_and_label_in_order(tmp_path, dataset, parts):
    files = gpu_pack.write_pack(dataset, tmp_path / "pack", parts=parts)
    assert [f.parent.name for f in files] == [f"part{k}" for k in range(1, parts + 1)] + [f"part{parts}"]
    counts = gpu_pack.unpack(tmp_path / "pack", tmp_path / "out")
    assert counts == {"train": 23, "val": 5}
    assert detect_format(tmp_path / "out") == "binary"
    before, after = load_dataset(dataset), load_dataset(tmp_path / "out")
    for split in ("train", "val"):
        np.testing.assert_array_equal(after.splits[split].images, before.splits[split].images)
        np.testing.assert_array_equal(after.splits[split].labels, before.splits[split].labels)


def test_parts_are_at_face_boundaries_and_near_equal(tmp_path, dataset):
    import lzma

    files = gpu_pack.write_pack(dataset, tmp_path / "pack", parts=3)
    sizes = [len(lzma.decompress(f.read_bytes())) for f in files[:3]]
    assert all(s % gpu_pack.RECORD == 0 for s in sizes)
    assert sum(sizes) // gpu_pack.RECORD == 23
    assert max(sizes) - min(sizes) <= gpu_pack.RECORD


def test_a_missing_part_is_named_not_silently_skipped(tmp_path, dataset):
    gpu_pack.write_pack(dataset, tmp_path / "pack", parts=3)
    (tmp_path / "pack" / "part2" / "train-2.bin.xz").unlink()
    with pytest.raises(FileNotFoundError, match=r"train parts \[1, 3\] are not 1..2"):
        gpu_pack.unpack(tmp_path / "pack", tmp_path / "out")
    (tmp_path / "pack" / "part2" / "train-x.bin.xz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"train-x.bin.xz: not a pack part"):
        gpu_pack.unpack(tmp_path / "pack", tmp_path / "out")
    (tmp_path / "pack" / "part2" / "train-x.bin.xz").unlink()
    (tmp_path / "pack" / "part3" / "val.bin.xz").unlink()
    with pytest.raises(FileNotFoundError, match="were both calls carried"):
        gpu_pack.unpack(tmp_path / "pack", tmp_path / "out")


def test_the_pack_needs_a_val_split_and_48_pixel_faces(tmp_path, write_bin, faces):
    only_train = tmp_path / "t"
    only_train.mkdir()
    (only_train / "train.bin").write_bytes(write_bin("x.bin", [0, 1], faces(2)).read_bytes())
    with pytest.raises(ValueError, match="needs a train and a val split, found train"):
        gpu_pack.write_pack(only_train, tmp_path / "pack")
    with pytest.raises(ValueError, match="48x48"):
        gpu_pack.records(np.zeros((1, 40, 40), np.uint8), np.zeros(1, int))


def test_a_binary_folder_with_two_files_for_one_split_is_refused(tmp_path, write_bin, faces):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("train.bin", "train-more.bin"):
        (folder / name).write_bytes(write_bin("x.bin", [0], faces(1)).read_bytes())
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert str(err.value) == f"{folder}: train-more.bin and train.bin are both the train split; keep one file per split"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset(empty)
    assert "binary record files (train.bin, val.bin)" in str(err.value)
    with pytest.raises(DataError) as err:  # the format forced: the folder loader says it
        load_dataset(empty, "binary")
    assert str(err.value) == f"{empty}: no binary record files (.bin, .dat) in the folder"


def test_a_binary_folder_reads_only_visible_record_files(tmp_path, write_bin, faces):
    folder = tmp_path / "fer"
    folder.mkdir()
    (folder / "val.dat").write_bytes(write_bin("x.bin", [3, 4], faces(2)).read_bytes())
    (folder / "README.md").write_text("not records")
    (folder / "._val.bin").write_bytes(b"\0" * 7)  # a macOS resource fork beside the copy
    (folder / "test.bin").mkdir()  # a folder with a record file's name
    ds = load_dataset(folder)
    assert ds.format == "binary" and list(ds.splits) == ["val"] and list(ds.splits["val"].labels) == [3, 4]


def test_a_bad_record_in_a_binary_folder_is_named_or_skipped_with_skip_bad(tmp_path, write_bin, faces):
    folder = tmp_path / "fer"
    folder.mkdir()
    (folder / "train.bin").write_bytes(write_bin("x.bin", [1, 9, 2], faces(3)).read_bytes())
    with pytest.raises(DataError, match=r"train.bin, record 1 at byte offset 2305: label byte 9"):
        load_dataset(folder)
    ds = load_dataset(folder, skip_bad=True)
    assert list(ds.splits["train"].labels) == [1, 2] and len(ds.skipped) == 1


def test_python_m_train_runs_a_command_without_the_console_script(dataset):
    proc = subprocess.run([sys.executable, "-m", "train", "data", "stats", str(dataset), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"train": {"faces": 23' in proc.stdout and '"val": {"faces": 5' in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "train", "data", "stats", str(dataset / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("python -m train data: ") and "no such file" in bad.stderr


def test_pack_from_the_command_line_names_bad_data_in_one_sentence(tmp_path, capsys):
    assert gpu_pack.main(["pack", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "p"), "--wheels", ""]) == 2
    assert capsys.readouterr().err == f"python -m train.gpu_pack pack: {tmp_path / 'nope'}: no such file or folder\n"
    assert not (tmp_path / "p").exists()


def test_unpack_from_the_command_line_says_what_is_missing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "train.gpu_pack", "unpack", str(tmp_path), str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "were both calls carried" in proc.stderr
