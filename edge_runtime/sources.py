"""Frame sources: images, folders of images, videos and cameras (OpenCV or picamera2).

Every source yields `Frame`s; the end of a file or folder is a clean end of iteration,
while a camera or stream that stops delivering is an error.
"""

from __future__ import annotations

import abc
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import FerEdgeError
from edge_runtime.image_header import ImageHeaderError, ImageTooLarge, check_image_size

log = logging.getLogger("fer_edge.sources")
_WARNED: set[str] = set()  # images already named in a warning
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
URL_PATTERN = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
PICAMERA_PATTERN = re.compile(r"^picamera2?(?::(\d+))?$")


class SourceError(FerEdgeError, RuntimeError):
    """A source cannot be opened or read; the message names it and says what is wrong."""


@dataclass(frozen=True)
class Frame:
    """One frame: `bgr` is the picture (drawn on, cropped for faces); `gray` is the image
    detection runs on: the same picture in grayscale, or a camera's low-resolution stream."""

    index: int
    timestamp: float
    bgr: np.ndarray
    gray: np.ndarray
    # The file a still image came from (None for video and camera frames).
    path: str | None = None

    @property
    def detection_scale(self) -> tuple[float, float]:
        """Factors that map `gray` coordinates to `bgr` coordinates."""
        return self.bgr.shape[1] / self.gray.shape[1], self.bgr.shape[0] / self.gray.shape[0]


def gray_frame(index: int, timestamp: float, bgr: np.ndarray, path: str | None = None) -> Frame:
    if bgr.ndim == 2:
        return Frame(index, timestamp, cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR), bgr, path)
    if bgr.shape[2] == 4:
        bgr = np.ascontiguousarray(bgr[..., :3])
    return Frame(index, timestamp, bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), path)


class Source(abc.ABC):
    """Iterate to get frames; use as a context manager so cameras and files are released."""

    name: str = ""
    # Stills: every frame stands alone (no tracking or smoothing across them).
    still: bool = False
    # Cameras and network streams: frames arrive in real time; a read failure is an error.
    live: bool = False
    fps: float | None = None
    frame_count: int | None = None
    # Items skipped because they could not be decoded, one "NAME: reason" sentence each (image folders).
    unreadable: Sequence[str] = ()

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file (idempotent)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSource(Source):
    """One image file, or every image in a folder (sorted by name, not recursive). An image that cannot be
    decoded is skipped and named in `unreadable`: one bad file never hides the ones after it. So is one
    whose header declares more than MAX_IMAGE_PIXELS (edge_runtime.image_header): it is never decoded."""

    still = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(self.path)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not self.files:
                raise SourceError(f"{self.path}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise SourceError(f"{self.path}: no such file or folder")
        self.frame_count = len(self.files)
        self.unreadable: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            # The header first: a small file may promise a picture of gigabytes, which imread would allocate.
            try:
                check_image_size(file)
            except ImageTooLarge as exc:
                self.unreadable.append(f"{file}: too large to decode ({exc})")
                if str(file) not in _WARNED and len(_WARNED) < 10_000:  # once a process: a looped folder replays
                    _WARNED.add(str(file))
                    log.warning("skipped %s: too large to decode (%s)", file, exc)
                continue
            except (ImageHeaderError, OSError):
                self.unreadable.append(f"{file}: cannot read image (not an image OpenCV can decode, or corrupt)")
                continue
            # IMREAD_COLOR: 8-bit BGR whatever the file holds (gray, alpha, 16-bit).
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None or image.size == 0:
                self.unreadable.append(f"{file}: cannot read image (not an image OpenCV can decode, or corrupt)")
                continue
            yield gray_frame(index, 0.0, image, str(file))

    def close(self) -> None:
        """Nothing to release: each image is read and closed as it is reached."""


class VideoSource(Source):
    """OpenCV VideoCapture: a video file, a device (index or /dev/videoN) or a stream URL."""

    def __init__(self, target: str | int, *, size: tuple[int, int] | None = None):
        self.target = target
        self.name = str(target)
        self.live = isinstance(target, int) or str(target).startswith("/dev/") or bool(URL_PATTERN.match(str(target)))
        if not self.live and not Path(target).is_file():
            raise SourceError(f"{target}: no such file")
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            what = "camera" if self.live and not URL_PATTERN.match(str(target)) else "stream" if self.live else "video"
            hint = {"camera": "is it connected, and is it free (not used by another program)?",
                    "stream": "is the URL right and the server reachable?",
                    "video": "not a video OpenCV can decode, or corrupt"}[what]
            raise SourceError(f"{target}: cannot open {what} ({hint})")
        if size:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if self.live:
            # Keep the newest frame, not a queue of stale ones.
            self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.live else None

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while True:
            ok, image = self.capture.read()
            if not ok or image is None:
                if self.live:
                    raise SourceError(f"{self.name}: stopped delivering frames after {index}")
                if index == 0:
                    raise SourceError(f"{self.name}: no frame could be decoded (corrupt or empty video)")
                return
            if self.live:
                stamp = time.monotonic() - start
            else:
                # The container's clock where it has one; the nominal rate otherwise.
                msec = self.capture.get(cv2.CAP_PROP_POS_MSEC)
                stamp = msec / 1000.0 if msec > 0 or index == 0 else index / (self.fps or 30.0)
            yield gray_frame(index, stamp, image)
            index += 1

    def close(self) -> None:
        self.capture.release()


class PicameraSource(Source):
    """A Raspberry Pi camera through picamera2: BGR frames from the main stream, detection on
    the Y plane of the low-resolution ("lores") stream; both come from the same request."""

    live = True

    def __init__(self, camera: int = 0, *, size: tuple[int, int] = (640, 480),
                 lores: tuple[int, int] = (320, 240)):
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(
                "picamera2 is not available (it exists only on a Raspberry Pi): install it with "
                "`sudo apt install python3-picamera2` and create the venv with --system-site-packages, "
                f"or use a camera index, /dev/videoN, a video file or a URL instead ({exc})"
            ) from exc
        self.name = f"picamera2:{camera}"
        try:
            self.camera = Picamera2(camera)
        except (IndexError, RuntimeError) as exc:
            raise SourceError(f"{self.name}: no such camera (is the ribbon cable seated and the camera "
                              f"detected by `rpicam-hello --list-cameras`?): {exc}") from exc
        self.size, self.lores = tuple(size), tuple(lores)
        # RGB888 is B, G, R in memory: OpenCV's order. YUV420 lores: its first plane is the grayscale.
        config = self.camera.create_video_configuration(
            main={"size": self.size, "format": "RGB888"}, lores={"size": self.lores, "format": "YUV420"})
        self.camera.configure(config)
        self.camera.start()
        self._open = True

    def __iter__(self) -> Iterator[Frame]:
        first_ns = None
        index = 0
        w, h = self.lores
        while self._open:
            # One request for both streams: two capture_array calls would take two different frames.
            (main, lores), metadata = self.camera.capture_arrays(["main", "lores"])
            sensor_ns = (metadata or {}).get("SensorTimestamp")
            if sensor_ns is None:
                sensor_ns = time.monotonic_ns()
            first_ns = sensor_ns if first_ns is None else first_ns
            bgr = np.ascontiguousarray(main[..., :3]) if main.ndim == 3 else cv2.cvtColor(main, cv2.COLOR_GRAY2BGR)
            gray = np.ascontiguousarray(lores[:h, :w]) if lores.ndim == 2 else cv2.cvtColor(lores, cv2.COLOR_BGR2GRAY)
            yield Frame(index, (sensor_ns - first_ns) / 1e9, bgr, gray)
            index += 1

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            self.camera.stop()
            self.camera.close()


def is_device_or_stream(spec: str | int) -> bool:
    """A camera (picamera2[:N], an index, /dev/...) or a URL: something that may come back when it fails.
    Anything else is an image, a folder or a video file."""
    text = str(spec).strip()
    return bool(PICAMERA_PATTERN.match(text) or text.isdigit() or text.startswith("/dev/") or URL_PATTERN.match(text))


def open_source(spec: str | int) -> Source:
    """A source from a command-line string: `picamera2[:N]`, a camera index, /dev/videoN,
    a URL (rtsp://, http://, ...), an image, a folder of images, or a video file."""
    text = str(spec).strip()
    if m := PICAMERA_PATTERN.match(text):
        return PicameraSource(int(m.group(1) or 0))
    if text.isdigit():
        return VideoSource(int(text))
    if is_device_or_stream(text):
        return VideoSource(text)
    path = Path(text)
    if path.is_dir() or (path.suffix.lower() in IMAGE_SUFFIXES):
        return ImageSource(path)
    return VideoSource(text)
