"""Probes of a folder source fed images that promise more than they hold (issue 24, N52, N53): a small PNG
that declares 30000 x 30000 pixels (2.7 GB decoded; the camera went silent), and SIGTERM while a large
image decodes (the process aborted with SIGABRT in 3 of 6 runs). Each probe is bounded: the huge image
is read in a process limited to 1.5 GiB of address space, and every wait has a timeout."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.image_header import (
    MAX_IMAGE_PIXELS,
    ImageHeaderError,
    ImageTooLarge,
    check_image_size,
    image_size,
)

MODEL = Path(__file__).resolve().parents[2] / "models" / "fer_mobile_int8.tflite"


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A valid-looking RGB PNG whose header declares `width` x `height`, with the first rows' data only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes(1 + 3 * width) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tif", ".pgm", ".ppm"])
def test_the_header_gives_the_size_opencv_decodes(tmp_path, suffix):
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"a{suffix}"
    assert cv2.imwrite(str(path), image[..., 0] if suffix == ".pgm" else image)
    assert image_size(path) == (53, 37) == check_image_size(path)


def test_a_header_that_declares_too_many_pixels_is_refused_unread(tmp_path):
    huge = png_declaring(tmp_path / "huge.png", 30000, 30000)
    with pytest.raises(ImageTooLarge, match=r"^30000 x 30000 pixels is more than the 40 megapixels allowed"):
        check_image_size(huge)
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    assert check_image_size(png_declaring(tmp_path / "edge.png", side, side)) == (side, side)
    with pytest.raises(ImageTooLarge):
        check_image_size(png_declaring(tmp_path / "over.png", side + 1, side + 1))
    with pytest.raises(ImageTooLarge, match="declares 0 x 10 pixels"):
        check_image_size(png_declaring(tmp_path / "empty.png", 0, 10))
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00")
    with pytest.raises(ImageHeaderError, match="truncated or malformed"):
        check_image_size(tmp_path / "junk.png")
    (tmp_path / "text.jpg").write_text("not an image at all")
    with pytest.raises(ImageHeaderError, match="not a PNG, JPEG"):
        check_image_size(tmp_path / "text.jpg")


def test_a_huge_png_in_a_folder_source_is_skipped_with_a_warning_and_never_decoded(tmp_path):
    """The folder is read in a process with 1.5 GiB of address space: decoding the 30000 x 30000 PNG (2.7 GB as
    BGR) would fail there; skipped from its header, the good image after it still comes."""
    folder = tmp_path / "stills"
    folder.mkdir()
    huge = png_declaring(folder / "a_huge.png", 30000, 30000)
    cv2.imwrite(str(folder / "b_good.png"), np.full((48, 64, 3), 128, np.uint8))
    script = ("import logging, sys\nlogging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
              "from edge_runtime.sources import ImageSource\n"
              "source = ImageSource(sys.argv[1])\n"
              "print([f.path.rsplit('/', 1)[-1] for f in source])\nprint(source.unreadable)\n"
              "print([f.path.rsplit('/', 1)[-1] for f in ImageSource(sys.argv[1])])\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))

    proc = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=60,
                          preexec_fn=limit, env={**os.environ, "OPENCV_IO_MAX_IMAGE_PIXELS": str(1 << 31)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames, unreadable, again = proc.stdout.splitlines()
    assert frames == again == "['b_good.png']"
    assert unreadable == repr([f"{huge}: too large to decode (30000 x 30000 pixels is more than the 40 megapixels "
                               "allowed (2.7 GB decoded))"])
    # One warning, though the folder was read twice (a looped folder source replays it).
    assert proc.stderr.splitlines() == [f"WARNING skipped {huge}: too large to decode (30000 x 30000 pixels is more "
                                        "than the 40 megapixels allowed (2.7 GB decoded))"]


@pytest.fixture(scope="module")
def large_folder(tmp_path_factory) -> Path:
    """Three links to one 36-megapixel PNG (under the cap): about a second to decode each."""
    folder = tmp_path_factory.mktemp("large")
    x = np.arange(6000, dtype=np.uint8)[None, :]
    y = np.arange(6000, dtype=np.uint8)[:, None]
    image = np.dstack([(x * 7) ^ (y * 3), x + y, x * y])  # uint8 arithmetic wraps: a busy, compressible pattern
    cv2.imwrite(str(folder / "a.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    for name in ("b.png", "c.png"):
        (folder / name).symlink_to(folder / "a.png")
    return folder


def test_sigterm_during_a_large_decode_stops_cleanly(tmp_path, large_folder):
    """SIGTERM lands while OpenCV decodes in the capture thread: the stop path waits for the decode, so the
    process ends with status 0 and its shutdown line, never SIGABRT ("terminate called without an active
    exception": the interpreter finalised under a running decode)."""
    rng = random.Random(53)
    jsonl = tmp_path / "events.jsonl"
    for run in range(4):
        jsonl.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "edge_runtime.cli", "run", "--source", str(large_folder),
                                 "--loop", "--model", str(MODEL), "--http", "off", "--jsonl", str(jsonl)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (jsonl.exists() and '"state":"online"' in jsonl.read_text()):
                assert time.monotonic() < deadline and proc.poll() is None, "the camera never came online"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 1.2))  # into the next decode
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
        assert status == 0 and "terminate called" not in err, f"run {run}: status {status}\n{err[-3000:]}"
        assert "stopped after" in err
        last = json.loads(jsonl.read_text().splitlines()[-1])
        assert (last["type"], last["state"], last["reason"]) == ("camera", "offline", "stopped")
