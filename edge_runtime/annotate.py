"""Drawing results on frames (box, label, confidence bar per face) and writing them out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.pipeline import Face
from edge_runtime.sources import IMAGE_SUFFIXES, Frame, ImageSource, Source

# BGR, one per FER2013 class; unknown labels are drawn white.
COLORS = {
    "angry": (40, 40, 230), "disgust": (40, 150, 60), "fear": (180, 60, 160), "happy": (40, 210, 250),
    "sad": (200, 120, 40), "surprise": (230, 200, 40), "neutral": (190, 190, 190),
}
VIDEO_CODECS = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "MJPG"}


def draw_faces(bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """Draw on `bgr` in place (and return it): box, "label score #track", and a bar as long as the score."""
    height, width = bgr.shape[:2]
    thick = max(1, round(min(height, width) / 320))
    font = 0.4 * thick
    for face in faces:
        b, e = face.box, face.emotion
        color = COLORS.get(e.label, (255, 255, 255))
        cv2.rectangle(bgr, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thick)
        text = f"{e.label} {e.score:.2f} #{face.track}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        # Above the box, or inside its top when the box touches the frame's top edge; shifted left as far as
        # needed to stay whole in the frame when the box is near its right edge.
        ty = b.y - base - 2 if b.y - th - base - 2 >= 0 else b.y + th + 2
        tx = max(0, min(b.x, width - tw - 3))
        cv2.rectangle(bgr, (tx, ty - th - 2), (tx + tw + 2, ty + base), color, -1)
        cv2.putText(bgr, text, (tx + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
        bar_h = max(3, b.h // 16)
        y0 = min(b.y + b.h + 2, height - bar_h - 1)
        cv2.rectangle(bgr, (b.x, y0), (b.x + b.w, y0 + bar_h), color, 1)
        cv2.rectangle(bgr, (b.x, y0), (b.x + round(b.w * min(1.0, max(0.0, e.score))), y0 + bar_h), color, -1)
    return bgr


class AnnotatedOutput:
    """Where annotated frames go: one image file, a folder (one image per input image), or a video."""

    def __init__(self, path: str | os.PathLike, source: Source):
        self.path = Path(path)
        self.fps = source.fps or 30.0
        self._writer = None
        suffix = self.path.suffix.lower()
        if isinstance(source, ImageSource) and source.path.is_dir():
            if self.path.exists() and not self.path.is_dir():
                raise OSError(f"{self.path}: input is a folder of images, so --out must be a folder")
            self.mode = "folder"
            self.path.mkdir(parents=True, exist_ok=True)
        elif source.still:
            if suffix not in IMAGE_SUFFIXES:
                raise OSError(f"{self.path}: input is an image, so --out must be an image file "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            self.mode = "image"
        else:
            if suffix not in VIDEO_CODECS:
                raise OSError(f"{self.path}: input is a video, so --out must be a video file "
                              f"({', '.join(sorted(VIDEO_CODECS))})")
            self.mode = "video"
        if self.mode != "folder" and not self.path.parent.is_dir():
            raise OSError(f"{self.path}: folder {self.path.parent} does not exist")

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if self.mode == "video":
            if self._writer is None:
                h, w = annotated.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
                if not self._writer.isOpened():
                    raise OSError(f"{self.path}: OpenCV cannot write this video")
            self._writer.write(annotated)
            return
        target = self.path
        if self.mode == "folder":
            target = self.path / Path(frame.path or f"frame_{frame.index:06d}.png").name
        if not cv2.imwrite(str(target), annotated):
            raise OSError(f"{target}: could not write the annotated image")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
