"""Probes of what the workstation reads as training data (issue 24, N55-N60): image bombs, symbolic link
loops, truncated images, xz bombs and ambiguous or odd GPU-pack parts. Each ends in one sentence naming the
file and what is wrong (or, with --skip-bad, in a count), within bounded memory, and leaves no partial file."""

from __future__ import annotations

import lzma
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from train import gpu_pack
from train.data import load_dataset

REPO = Path(__file__).resolve().parents[2]


def fer_edge_bounded(*argv: str, gib: int = 2) -> subprocess.CompletedProcess:
    """`python -m edge_runtime.cli ARGV` with `gib` GiB of address space: a regression fails, it does not swap."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))

    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *argv], capture_output=True, text=True,
                          timeout=120, preexec_fn=limit, cwd=REPO)


def png_bomb(side: int = 10_000) -> bytes:
    """A real single-colour RGB PNG of side x side pixels: ~300 MB decoded, a few hundred KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + 3 * side)  # filter byte + black pixels
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory) -> Path:
    """FER2013 as image folders: one real face per split, eight 10000x10000 PNG bombs among the train faces."""
    root = tmp_path_factory.mktemp("bombs")
    bomb = png_bomb()
    for split in ("train", "val"):
        (root / split / "happy").mkdir(parents=True)
        assert cv2.imwrite(str(root / split / "happy" / "face.png"), np.full((48, 48), 90, np.uint8))
    for i in range(8):
        (root / "train" / "happy" / f"bomb{i}.png").write_bytes(bomb)
    return root


def test_png_bombs_are_refused_from_their_header_before_decoding(bomb_folder):
    proc = fer_edge_bounded("data", "stats", str(bomb_folder))
    first = bomb_folder / "train" / "happy" / "bomb0.png"
    assert proc.returncode == 1 and proc.stderr == (
        f"fer-edge data: {first}: PNG of 10000x10000 pixels: larger than 25 megapixels, not a face image "
        "(refused before decoding)\n"), proc.stderr[-2000:]


def test_png_bombs_are_skipped_and_counted_with_skip_bad(bomb_folder):
    proc = fer_edge_bounded("data", "stats", str(bomb_folder), "--skip-bad", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"skipped": 8' in proc.stdout and '"train": {"faces": 1' in proc.stdout
    assert proc.stderr.startswith(f"skipped 8 bad records in {bomb_folder}:")


def test_a_symbolic_link_loop_is_named_in_one_sentence_or_skipped(tmp_path, capsys):
    from edge_runtime.cli import main

    root = tmp_path / "fer"
    for split in ("train", "val"):
        (root / split / "happy").mkdir(parents=True)
        assert cv2.imwrite(str(root / split / "happy" / "face.png"), np.full((48, 48), 90, np.uint8))
    loop = root / "train" / "happy" / "loop.png"
    loop.symlink_to(loop.name)  # points at itself: ELOOP
    dir_loop = root / "train" / "sad"
    dir_loop.symlink_to(dir_loop.name)  # a class folder that loops
    assert main(["data", "stats", str(root)]) == 1
    assert capsys.readouterr().err == (f"fer-edge data: {dir_loop}: a symbolic link that loops back on itself: "
                                       "neither a file nor a folder\n")
    ds = load_dataset(root, skip_bad=True)
    assert [e.path for e in ds.skipped] == [str(dir_loop), str(loop)]
    assert len(ds.splits["train"]) == 1 and len(ds.splits["val"]) == 1
    assert main(["data", "stats", str(root), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "skipped: 2" in captured.out


def test_a_truncated_jpeg_is_bad_input_and_libjpeg_stays_off_the_terminal(tmp_path):
    root = tmp_path / "fer"
    face = np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8)
    ok, jpeg = cv2.imencode(".jpg", face)
    for split in ("train", "val"):
        (root / split / "happy").mkdir(parents=True)
        (root / split / "happy" / "good.jpg").write_bytes(jpeg.tobytes())
    cut = root / "train" / "happy" / "cut.jpg"
    cut.write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    proc = fer_edge_bounded("data", "stats", str(root))
    assert proc.returncode == 1 and proc.stderr == (
        f"fer-edge data: {cut}: truncated JPEG: the file ends before the image does (an interrupted copy?)\n")
    proc = fer_edge_bounded("data", "stats", str(root), "--skip-bad")
    assert proc.returncode == 0 and "Premature end" not in proc.stderr and "WARN" not in proc.stderr
    assert proc.stderr == f"skipped 1 bad records in {root}:\n  {cut}: truncated JPEG: the file ends before the " \
                          "image does (an interrupted copy?)\n"


# --- the GPU pack (python -m train.gpu_pack unpack) ---


@pytest.fixture
def pack(tmp_path):
    """A real two-part pack of 20 train faces and 3 val faces."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir()
    for name, n in (("train.bin", 20), ("val.bin", 3)):
        (src / name).write_bytes(gpu_pack.records(rng.integers(0, 256, (n, 48, 48), np.uint8), rng.integers(0, 7, n)))
    gpu_pack.write_pack(src, tmp_path / "pack", parts=2)
    return tmp_path / "pack"


def unpack_cli(pack: Path, dest: Path, capsys) -> tuple[int, str]:
    code = gpu_pack.main(["unpack", str(pack), str(dest)])
    return code, capsys.readouterr().err


def test_an_xz_bomb_is_refused_while_it_streams_and_leaves_no_file(pack, tmp_path, capsys):
    comp = lzma.LZMACompressor(preset=0)
    zeros = b"\0" * 2**20
    bomb = b"".join([comp.compress(zeros) for _ in range(300)] + [comp.flush()])  # 300 MiB in ~45 KB
    part = pack / "part1" / "train-1.bin.xz"
    part.write_bytes(bomb)
    dest = tmp_path / "out"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err = unpack_cli(pack, dest, capsys)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert code == 1 and err == (f"python -m train.gpu_pack unpack: {part}: unpacks to more than 256 MiB, more than "
                                 "FER2013 could fill: not a pack part\n")
    assert list(dest.iterdir()) == []  # no train.bin, empty or partial
    assert grown_mb < 100, grown_mb  # streamed, never held whole


def test_a_truncated_part_is_named_and_leaves_no_file(pack, tmp_path, capsys):
    part = pack / "part2" / "train-2.bin.xz"
    part.write_bytes(part.read_bytes()[:-40])
    code, err = unpack_cli(pack, tmp_path / "out", capsys)
    assert code == 1 and err.startswith(f"python -m train.gpu_pack unpack: {part}: ") and err.count("\n") == 1
    assert list((tmp_path / "out").iterdir()) == []


def test_two_parts_with_the_same_number_are_refused(pack, tmp_path, capsys):
    one = pack / "part1" / "train-1.bin.xz"
    other = pack / "part1" / "train-01.bin.xz"
    other.write_bytes(one.read_bytes())
    code, err = unpack_cli(pack, tmp_path / "out", capsys)
    assert code == 1 and err == (f"python -m train.gpu_pack unpack: {other} and {one} are both train part 1: keep "
                                 "one (pack writes train-1, train-2, ... once each)\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["part1/train-1.bin.xz", "part2/val.bin.xz"])
def test_a_folder_with_a_part_name_is_one_sentence(pack, tmp_path, capsys, name):
    path = pack / name
    path.unlink()
    path.mkdir()
    code, err = unpack_cli(pack, tmp_path / "out", capsys)
    assert code == 1 and err == (f"python -m train.gpu_pack unpack: {path}: not a file (a pack part is an .xz "
                                 "file written by `pack`)\n")


def test_a_good_pack_still_unpacks_every_face(pack, tmp_path):
    assert gpu_pack.unpack(pack, tmp_path / "out") == {"train": 20, "val": 3}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["train.bin", "val.bin"]


def test_libjpeg_warnings_on_a_decodable_face_go_to_the_log_not_the_terminal(tmp_path):
    """A JPEG with stray bytes before its end marker decodes (a usable face), but libjpeg says `Corrupt JPEG
    data: 2 extraneous bytes before marker 0xd9` straight on fd 2: only `-v` shows it, as a log line."""
    root = tmp_path / "fer"
    ok, jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8))
    data = jpeg.tobytes()
    for split in ("train", "val"):
        (root / split / "happy").mkdir(parents=True)
        (root / split / "happy" / "face.jpg").write_bytes(data[:-2] + b"\x12\x34" + data[-2:])
    env = {**os.environ, "FER_EDGE_CACHE": "off"}
    quiet = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "data", "stats", str(root)], cwd=REPO,
                           capture_output=True, text=True, timeout=120, env=env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "-v", "data", "stats", str(root)], cwd=REPO,
                             capture_output=True, text=True, timeout=120, env=env)
    assert verbose.returncode == 0 and "fer_edge.opencv: Corrupt JPEG data" in verbose.stderr, verbose.stderr


def test_a_png_bomb_in_a_calibration_folder_is_refused_before_decoding(tmp_path):
    from convert.calibration import CalibrationError, load

    folder = tmp_path / "calibration"
    folder.mkdir()
    (folder / "face.png").write_bytes(png_bomb())
    with pytest.raises(CalibrationError) as err:
        load(folder, 48)
    assert str(err.value) == (f"{folder / 'face.png'}: PNG of 10000x10000 pixels: larger than 25 megapixels, not a "
                              "face image (refused before decoding)")
