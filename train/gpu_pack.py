"""FER2013 packed to travel to a lent GPU machine, and unpacked there.

The machine (when a task is lent one) has JAX but no TensorFlow, Keras or network, and each `run` call
carries at most 64 MiB: the working tree plus the ignored paths it names. FER2013's training faces are
66 MB as binary records and ~52 MB after LZMA, so beside a ~20 MB tree they need two calls: the pack
splits the records at face boundaries into parts that each fit beside the tree, and `unpack` joins them
into the binary-records folder (train.bin, val.bin) that `fer-edge train --data` reads.

    python -m train.gpu_pack pack --data ../shared/fer2013 --out .gpu   # here; also fetches the wheels
    python -m train.gpu_pack unpack .gpu /tmp/fer2013                   # there (train/gpu_run.sh does it)

docs/training_log.md ("A GPU run") gives the two calls.
"""

from __future__ import annotations

import argparse
import lzma
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge_runtime.errors import FerEdgeError
from train.data import load_dataset
from train.data.binary import RECORD

CALL_LIMIT = 64 * 2**20  # bytes a `run` call carries, working tree included
# Pure-Python except optree (built for the machine's Python 3.12); the versions Keras needs beside JAX.
WHEELS = ("keras", "optree", "namex")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary records: one label byte, then the 48x48 pixels, per face."""
    if images.shape[1:] != (48, 48):
        raise ValueError(f"binary records hold 48x48 faces, not {images.shape[1:]}")
    out = np.empty((len(images), RECORD), np.uint8)
    out[:, 0] = labels
    out[:, 1:] = images.reshape(len(images), -1)
    return out.tobytes()


def _compress(data: bytes) -> bytes:
    return lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)


def write_pack(data: str | Path, out: str | Path, parts: int = 2) -> list[Path]:
    """The train split in `parts` LZMA files at face boundaries (part1/train-1.bin.xz, ...), val beside
    the last part (partN/val.bin.xz). Returns the files written."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1 (got {parts})")
    ds = load_dataset(data)
    if "train" not in ds.splits or "val" not in ds.splits:
        raise ValueError(f"{data}: the pack needs a train and a val split, found {', '.join(ds.splits)}")
    out = Path(out)
    written = []
    train, val = ds.splits["train"], ds.splits["val"]
    bounds = np.linspace(0, len(train), parts + 1).round().astype(int)
    for k in range(parts):
        folder = out / f"part{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        sl = slice(bounds[k], bounds[k + 1])
        path = folder / f"train-{k + 1}.bin.xz"
        path.write_bytes(_compress(records(train.images[sl], train.labels[sl])))
        written.append(path)
    path = out / f"part{parts}" / "val.bin.xz"
    path.write_bytes(_compress(records(val.images, val.labels)))
    written.append(path)
    return written


# The most a pack unpacks to: FER2013's 35,887 faces are 83 MB as records; a part that inflates past this
# (an xz bomb: 610 KB can hold gigabytes) is refused while it streams, not after it filled memory or the disk.
MAX_UNPACKED = 256 * 2**20
CHUNK = 2**20


class PackError(FerEdgeError, ValueError):
    """A pack that cannot be unpacked: one sentence naming the part and what is wrong."""


def _part_file(path: Path) -> Path:
    if not path.is_file():
        raise PackError(f"{path}: not a file (a pack part is an .xz file written by `pack`)")
    return path


def _inflate(part: Path, out, room: int) -> int:
    """Stream one LZMA part into `out`, at most `room` bytes; returns the bytes written."""
    decomp = lzma.LZMADecompressor()
    written = 0
    with open(part, "rb") as f:
        while not decomp.eof:
            data = f.read(CHUNK) if decomp.needs_input else b""
            if decomp.needs_input and not data:
                raise PackError(f"{part}: truncated: the xz stream ends early (was the copy interrupted?)")
            try:
                chunk = decomp.decompress(data, max_length=CHUNK)
            except lzma.LZMAError as exc:
                raise PackError(f"{part}: not a valid xz file ({exc})") from exc
            written += len(chunk)
            if written > room:
                raise PackError(f"{part}: unpacks to more than {MAX_UNPACKED // 2**20} MiB, more than FER2013 "
                                "could fill: not a pack part")
            out.write(chunk)
    return written


def _join(parts: list[Path], target: Path, room: int) -> int:
    """The parts' contents, one after another, in `target`, or no `target` at all (never a partial file)."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as out:
            size = 0
            for part in parts:
                size += _inflate(part, out, room - size)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return size


def unpack(pack: str | Path, dest: str | Path) -> dict[str, int]:
    """Join the parts into dest/train.bin and dest/val.bin; returns the faces in each."""
    pack, dest = Path(pack), Path(dest)
    numbered: dict[int, Path] = {}
    for path in sorted(pack.glob("part*/train-*.bin.xz")):
        match = re.fullmatch(r"train-(\d+)\.bin\.xz", path.name)
        if not match:
            raise FileNotFoundError(f"{path}: not a pack part (expected train-N.bin.xz)")
        number = int(match.group(1))
        if number in numbered:
            raise PackError(f"{numbered[number]} and {path} are both train part {number}: keep one (pack writes "
                            "train-1, train-2, ... once each)")
        numbered[number] = _part_file(path)
    numbers = sorted(numbered)
    parts = [numbered[n] for n in numbers]
    vals = [_part_file(p) for p in pack.glob("part*/val.bin.xz")]
    if not parts or len(vals) != 1:
        raise FileNotFoundError(f"{pack}: expected part*/train-N.bin.xz and one part*/val.bin.xz "
                                f"(found {len(parts)} train parts, {len(vals)} val files): were both calls carried?")
    if numbers != list(range(1, len(parts) + 1)):
        raise FileNotFoundError(f"{pack}: train parts {numbers} are not 1..{len(parts)}: one call's part is missing")
    dest.mkdir(parents=True, exist_ok=True)
    train_size = _join(parts, dest / "train.bin", MAX_UNPACKED)
    try:
        val_size = _join(vals, dest / "val.bin", MAX_UNPACKED - train_size)
    except BaseException:
        (dest / "train.bin").unlink(missing_ok=True)  # half a dataset is no dataset
        raise
    return {"train": train_size // RECORD, "val": val_size // RECORD}


def tree_bytes(repo: Path) -> int:
    """What a `run` call copies of the working tree: tracked files and untracked ones git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           capture_output=True, check=True).stdout.split(b"\0")
    return sum((repo / n.decode()).stat().st_size for n in names if n and (repo / n.decode()).is_file())


def fetch_wheels(dest: Path) -> None:
    """Keras and what it needs beside JAX, as wheels for the machine's CPython 3.12 (no network there)."""
    import importlib.metadata as md

    pins = [f"{name}=={md.version(name)}" for name in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(dest), *pins]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.gpu_pack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="write the data parts (and fetch the wheels) here")
    pk.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "fer2013"))
    pk.add_argument("--out", type=Path, default=Path(".gpu"))
    pk.add_argument("--parts", type=int, default=2)
    pk.add_argument("--wheels", type=Path, default=Path(".whl"), help="folder for the wheels ('' = don't fetch)")
    up = sub.add_parser("unpack", help="join the parts into a binary-records folder (on the GPU machine)")
    up.add_argument("pack", type=Path)
    up.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    if args.command == "unpack":
        try:
            counts = unpack(args.pack, args.dest)
        except (OSError, PackError) as exc:
            print(f"python -m train.gpu_pack unpack: {exc}", file=sys.stderr)
            return 1
        print(f"{args.dest}: train {counts['train']:,} faces, val {counts['val']:,}")
        return 0
    from train.data import DataError

    try:
        files = write_pack(args.data, args.out, args.parts)
    except (DataError, ValueError) as exc:
        print(f"python -m train.gpu_pack pack: {exc}", file=sys.stderr)
        return 2
    if str(args.wheels):
        fetch_wheels(args.wheels)
    repo = Path(__file__).resolve().parents[1]
    tree = tree_bytes(repo)
    wheels = sum(f.stat().st_size for f in Path(args.wheels).glob("*.whl")) if str(args.wheels) else 0
    ok = True
    for k in range(1, args.parts + 1):
        carried = sum(f.stat().st_size for f in files if f.parent.name == f"part{k}")
        carried += wheels if k == args.parts else 0
        fits = tree + carried <= CALL_LIMIT
        ok &= fits
        extra = f" + {args.wheels}" if k == args.parts and wheels else ""
        print(f"call {k}: carry {args.out}/part{k}{extra}: {carried / 1e6:.1f} MB + tree {tree / 1e6:.1f} MB = "
              f"{(tree + carried) / 2**20:.1f} MiB of 64 {'ok' if fits else 'TOO BIG: use more --parts'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
