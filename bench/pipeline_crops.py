"""Labelled faces as the daemon sees them: each face placed in a frame of its own, found there by the
runtime's Haar detector and cropped by the runtime's preprocess_face from the box it gives.

The robustness conditions change a face and keep FER2013's framing; a camera gives neither that framing
nor a clean face. Here each 48x48 face is upscaled to 110-170 px (INTER_CUBIC, as bench/scenes.py draws
faces), feathered into a textured backdrop at a random place, given sensor noise and a JPEG round trip
(quality 70, a camera stream), and handed to the detector on the grey frame. Faces the detector does not
find (profile, occluded or low-contrast faces) are left out, the same ones for every model, so the
accuracy is over what a daemon would classify, in the crop it would classify.
"""

from __future__ import annotations

import cv2
import numpy as np

from bench.scenes import background, feather_mask
from edge_runtime.boxes import Box

SIDES = (110, 170)
MIN_IOU = 0.3
JPEG_QUALITY = 70
NOISE = 3.0


def placed(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """(BGR frame, the box the face was drawn in) for one 2-D uint8 face."""
    side = int(rng.integers(SIDES[0], SIDES[1] + 1))
    margin = 60
    frame = background(side + 2 * margin, side + 2 * margin, rng).astype(np.float32)
    x0, y0 = (int(v) for v in rng.integers(10, 2 * margin - 10, 2))
    up = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)[..., None]
    mask = feather_mask(side)[..., None]
    roi = frame[y0 : y0 + side, x0 : x0 + side]
    roi[:] = roi * (1.0 - mask) + up * mask
    frame += rng.normal(0.0, NOISE, frame.shape).astype(np.float32)
    ok, buf = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), Box(x0, y0, side, side)


def pipeline_crops(faces: np.ndarray, labels: np.ndarray, *, seed: int = 0, detector=None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crops, their labels, indices into faces) for the faces the detector finds where they were drawn
    (IoU >= MIN_IOU with the drawn square; the best-overlapping box when it finds several)."""
    from edge_runtime.detector import HaarDetector, HaarOptions
    from edge_runtime.preprocess import preprocess_face

    # Every frame is searched whole (detect_width 0); a box must pass the face verifier, as in the daemon.
    detector = detector or HaarDetector(HaarOptions(detect_width=0))
    rng = np.random.default_rng(seed)
    crops, kept = [], []
    for i, face in enumerate(faces):
        frame, drawn = placed(face, rng)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        boxes = [b for b in detector.detect(gray) if detector.verify(gray, b)]
        best = max(boxes, key=drawn.iou, default=None)
        if best is None or best.iou(drawn) < MIN_IOU:
            continue
        crops.append(preprocess_face(frame, best.as_list(), size=faces.shape[1]))
        kept.append(i)
    index = np.asarray(kept, dtype=np.int64)
    crops_arr = np.stack(crops) if crops else np.empty((0, *faces.shape[1:]), np.uint8)
    return crops_arr, np.asarray(labels)[index], index
