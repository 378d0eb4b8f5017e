"""An image's size from its header, before anything decodes it, and the one read-and-decode of a face file.

A 3 MB single-colour PNG can hold 20000x20000 pixels (1.2 GB once decoded as BGR); eight of them loaded as
faces took 5.8 GB. `image_size` reads width and height from the PNG, JPEG or BMP header (standard library
only), so `read_face_image` refuses such a file in one sentence before OpenCV allocates a pixel. Any other
content is not a face image here (OpenCV would also decode TIFF, WebP, ...: each a header of its own).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np

from edge_runtime.image_header import ImageHeaderError, header_size

# A face image is a crop: FER2013's are 48x48, a phone photo ~12 MP. 25 MP is 75 MB decoded as BGR.
MAX_PIXELS = 25_000_000

_KINDS = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"BM": "BMP"}


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header of a PNG, JPEG or BMP file's bytes (the device's header reader,
    edge_runtime/image_header.py); ImageHeaderError for anything else."""
    kind = next((k for magic, k in _KINDS.items() if data.startswith(magic)), None)
    if kind is None:
        raise ImageHeaderError("not a PNG, JPEG or BMP image")
    return (kind, *header_size(data))


def truncated(kind: str, data: bytes) -> bool:
    """Whether the file ends before its format's end marker (a copy cut short): libjpeg fills the missing
    rows with grey and says only "Premature end of JPEG file" on stderr."""
    tail = data.rstrip(b"\0")  # some writers pad the end
    if kind == "JPEG":
        return not tail.endswith(b"\xff\xd9")
    if kind == "PNG":
        return not tail.endswith(b"IEND\xaeB`\x82")
    return False


@contextlib.contextmanager
def quiet_decoder() -> Iterator[None]:
    """OpenCV's own log (`[ WARN:0@...]`) and libjpeg's native lines (`Premature end of JPEG file`) go to the
    log at DEBUG (`-v` shows them) instead of the terminal. Not thread-safe: wrap a whole thread pool."""
    import cv2

    from edge_runtime.native_stderr import captured_stderr

    logger = logging.getLogger("fer_edge.opencv")
    if not logger.isEnabledFor(logging.DEBUG):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    with captured_stderr(logger):
        yield


def read_face_image(path) -> np.ndarray | str:
    """The decoded image (as stored: grey, BGR or BGRA; 16-bit scaled to 8), or a sentence saying why not.

    Checks the header first: no pixel is decoded for a file that is not PNG/JPEG/BMP, is larger than
    MAX_PIXELS or is cut short. Call it inside `quiet_decoder()` to keep the decoder's lines off the terminal."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    head = data.tobytes()
    try:
        kind, width, height = image_size(head)
    except ImageHeaderError:
        return "not a decodable image"
    if width * height > MAX_PIXELS:
        return (f"{kind} of {width}x{height} pixels: larger than {MAX_PIXELS // 1_000_000} megapixels, "
                "not a face image (refused before decoding)")
    if truncated(kind, head):
        return f"truncated {kind}: the file ends before the image does (an interrupted copy?)"
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        return "not a decodable image"
    if image.dtype == np.uint16:
        # 16-bit PNGs span 0..65535; scale to 0..255 rather than letting the uint8 conversion saturate.
        image = np.rint(image / 257.0).astype(np.uint8)
    return image
