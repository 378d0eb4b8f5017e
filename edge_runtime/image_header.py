"""An image's size from its header, before anything decodes it.

A small file can promise a huge picture: an 876 KB PNG of 30000 x 30000 pixels decodes to 2.7 GB. Decoders
allocate what the header says, so the only safe check is the header itself. `check_image_size` is the one check
for every reader of untrusted images: the daemon's folder sources here, and the workstation's data loaders.

Formats: PNG, JPEG, BMP, WebP, TIFF, GIF and PNM (PBM/PGM/PPM/PAM), recognised by their first bytes, not
their name (OpenCV also decodes by content). A file of any other kind, or whose header cannot be read,
has no known size: `check_image_size` refuses it too, since a decoder might still find a huge picture in it.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

from edge_runtime.errors import FerEdgeError

# 40 megapixels: a 8000 x 5000 photo, 120 MB as BGR. A Raspberry Pi has 1 to 8 GB shared with everything.
MAX_IMAGE_PIXELS = 40_000_000
_HEAD = 64 * 1024  # enough for every header here but JPEG, which is walked segment by segment


class ImageHeaderError(FerEdgeError, ValueError):
    """The header cannot be read: not an image of a known format, or truncated."""


class ImageTooLarge(ImageHeaderError):
    """The header declares more pixels than may be decoded."""


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) that the image at `path` declares; ImageHeaderError when it cannot be read
    (OSError when the file cannot be opened)."""
    with open(path, "rb") as fh:
        return _read(fh.read(_HEAD), fh)


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) that an image file's bytes (the whole file, or enough of its start) declare;
    ImageHeaderError when they cannot be read."""
    return _read(data[:_HEAD], io.BytesIO(data))


def _read(head: bytes, fh: BinaryIO) -> tuple[int, int]:
    try:
        return _size(head, fh)
    except ImageHeaderError:
        raise
    except (struct.error, IndexError, KeyError, ValueError):
        raise ImageHeaderError("truncated or malformed image header") from None


def check_image_size(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) of an image that may be decoded; ImageTooLarge (one phrase, without the path) when
    its header declares more than `max_pixels` or no pixels, ImageHeaderError when the header cannot be
    read. Call it before cv2.imread on any image that comes from outside."""
    width, height = image_size(path)
    if width <= 0 or height <= 0:
        raise ImageTooLarge(f"its header declares {width} x {height} pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width} x {height} pixels is more than the {max_pixels / 1e6:g} megapixels allowed "
                            f"({width * height * 3 / 1e9:.1f} GB decoded)")
    return width, height


def _size(head: bytes, fh: BinaryIO) -> tuple[int, int]:
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if head[12:16] != b"IHDR":
            raise ImageHeaderError("PNG without IHDR first")
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"\xff\xd8":
        return _jpeg(fh)
    if head[:2] == b"BM":
        width, height = struct.unpack("<ii", head[18:26])
        return width, abs(height)  # a negative height is a top-down bitmap
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(fh)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:1] == b"P" and head[1:2] in b"1234567" and len(head) > 2:
        return _pnm(head)
    raise ImageHeaderError("not a PNG, JPEG, BMP, WebP, TIFF, GIF or PNM image")


def _jpeg(fh: BinaryIO) -> tuple[int, int]:
    """The frame header (SOFn) after the SOI: walk the segments by their lengths."""
    fh.seek(2)
    for _ in range(10_000):
        marker = fh.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + fh.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            break
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", fh.read(2))
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">xHH", fh.read(5))
            return width, height
        if code == 0xD9 or length < 2:
            break
        fh.seek(length - 2, os.SEEK_CUR)
    raise ImageHeaderError("JPEG without a frame header")


def _webp(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise ImageHeaderError("WebP without a VP8, VP8L or VP8X chunk")


def _tiff(fh: BinaryIO) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    fh.seek(0)
    order = "<" if fh.read(2) == b"II" else ">"
    fh.seek(4)
    (offset,) = struct.unpack(order + "I", fh.read(4))
    fh.seek(offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, 4096)):
        tag, kind, _n = struct.unpack(order + "HHI", fh.read(8))
        value = fh.read(4)
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    if 256 not in found or 257 not in found:
        raise ImageHeaderError("TIFF without ImageWidth and ImageLength")
    return found[256], found[257]


def _pnm(head: bytes) -> tuple[int, int]:
    """`P<n>` then width and height as decimal text (comments from # to the line's end); PAM: WIDTH/HEIGHT."""
    if head[1:2] == b"7":
        fields = dict(line.split(None, 1) for line in head.split(b"ENDHDR")[0].splitlines()[1:]
                      if len(line.split(None, 1)) == 2)
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    words: list[bytes] = []
    for line in head[2:].split(b"\n"):
        words += line.split(b"#")[0].split()
        if len(words) >= 2:
            return int(words[0]), int(words[1])
    raise ImageHeaderError("PNM header without width and height")
