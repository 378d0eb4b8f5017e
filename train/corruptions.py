"""What real deployments do to a face, as batch transforms on (N, S, S) uint8 faces.

One set of functions serves two purposes: the robustness report (`fer-edge evaluate --robustness`)
measures accuracy under each condition, and training augmentation (`Augment.corrupt`) draws from the
photometric ones so a model learns to shrug them off. Each function takes the faces and a numpy
Generator and returns a new uint8 batch of the same shape; the strength of each condition is drawn
per face from the range given.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edge_runtime.preprocess import preprocess_face

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _per_face(faces: np.ndarray, fn) -> np.ndarray:
    out = np.empty_like(faces)
    for i in range(len(faces)):
        out[i] = fn(i, faces[i])
    return out


def haar_crop(faces: np.ndarray, rng: np.random.Generator, scale=(0.85, 1.2), shift: float = 0.10) -> np.ndarray:
    """The crop a detector box gives: a square `scale` times the face, its centre moved by up to `shift`
    of the side in x and y; what falls outside the face is border-replicated, through the runtime's
    own preprocess_face, exactly as the daemon crops a box at the frame's edge."""
    n, size = faces.shape[0], faces.shape[1]
    scales = rng.uniform(*scale, n)
    offsets = rng.uniform(-shift, shift, (n, 2)) * size

    def crop(i, face):
        side = size * scales[i]
        cx, cy = size / 2 + offsets[i, 0], size / 2 + offsets[i, 1]
        return preprocess_face(face, (cx - side / 2, cy - side / 2, side, side), size=size)

    return _per_face(faces, crop)


def rotate(faces: np.ndarray, rng: np.random.Generator, degrees=(5.0, 15.0)) -> np.ndarray:
    """In-plane rotation (a tilted head or camera) by a magnitude in `degrees`, either direction."""
    n, size = faces.shape[0], faces.shape[1]
    angles = rng.uniform(*degrees, n) * rng.choice((-1.0, 1.0), n)
    centre = (size / 2 - 0.5, size / 2 - 0.5)

    def turn(i, face):
        m = cv2.getRotationMatrix2D(centre, float(angles[i]), 1.0)
        return cv2.warpAffine(face, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return _per_face(faces, turn)


def blur(faces: np.ndarray, rng: np.random.Generator, sigma=(0.8, 1.6)) -> np.ndarray:
    """Defocus or motion softness: a Gaussian blur of sigma (in face pixels) drawn from `sigma`."""
    sigmas = rng.uniform(*sigma, len(faces))
    return _per_face(faces, lambda i, face: cv2.GaussianBlur(face, (0, 0), float(sigmas[i]),
                                                           borderType=cv2.BORDER_REPLICATE))


def noise(faces: np.ndarray, rng: np.random.Generator, sigma=(6.0, 14.0)) -> np.ndarray:
    """Sensor noise at low light: additive Gaussian noise, standard deviation in grey levels."""
    sigmas = rng.uniform(*sigma, (len(faces), 1, 1))
    noisy = faces.astype(np.float32) + rng.standard_normal(faces.shape, dtype=np.float32) * sigmas
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(faces: np.ndarray, rng: np.random.Generator, quality=(20, 40)) -> np.ndarray:
    """A stream or snapshot compressed hard: JPEG round trip at a quality drawn from `quality`."""
    qualities = rng.integers(quality[0], quality[1] + 1, len(faces))

    def squash(i, face):
        ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, int(qualities[i])])
        if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)

    return _per_face(faces, squash)


def dim(faces: np.ndarray, rng: np.random.Generator, gamma=(1.6, 2.4), gain=(0.45, 0.75)) -> np.ndarray:
    """A dim room: darker (gain) with the shadows crushed (gamma > 1)."""
    n = len(faces)
    g = rng.uniform(*gamma, (n, 1, 1))
    k = rng.uniform(*gain, (n, 1, 1))
    x = (faces.astype(np.float32) / 255.0) ** g * k * 255.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def uneven_light(faces: np.ndarray, rng: np.random.Generator, floor=(0.25, 0.5)) -> np.ndarray:
    """Light from one side (a window): brightness falls linearly across the face, in a random
    direction, from 1 to a floor drawn from `floor`."""
    n, size = faces.shape[0], faces.shape[1]
    theta = rng.uniform(0, 2 * np.pi, n)
    low = rng.uniform(*floor, n)
    coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2) / (size - 1)  # -0.5 .. 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    t = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy  # within about -0.71 .. 0.71
    t = (t - t.min(axis=(1, 2), keepdims=True)) / np.ptp(t, axis=(1, 2), keepdims=True)  # 0 .. 1
    gain = 1.0 - t * (1.0 - low[:, None, None])
    return np.clip(np.rint(faces.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def bright(faces: np.ndarray, rng: np.random.Generator, gain=(1.3, 1.7), lift=(0.0, 30.0)) -> np.ndarray:
    """Too much light (a face in the sun, a backlit camera's exposure overshooting, a lamp stepping up):
    every grey level multiplied by `gain` and raised by `lift`, the highlights clipped to white."""
    n = len(faces)
    k = rng.uniform(*gain, (n, 1, 1))
    b = rng.uniform(*lift, (n, 1, 1))
    return np.clip(np.rint(faces.astype(np.float32) * k + b), 0, 255).astype(np.uint8)


def low_resolution(faces: np.ndarray, rng: np.random.Generator, width=(20, 28)) -> np.ndarray:
    """A face far from the camera: only `width` pixels wide in the frame, upscaled to the model's size."""
    size = faces.shape[1]
    widths = rng.integers(width[0], width[1] + 1, len(faces))

    def shrink(i, face):
        w = int(widths[i])
        small = cv2.resize(face, (w, w), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)

    return _per_face(faces, shrink)


# The robustness report's conditions, in report order (issue: Haar crop, rotation up to 15 degrees, blur,
# sensor noise, JPEG quality 20-40, dim and uneven light, a face 24 px wide upscaled) and overexposure,
# last so the other conditions keep their seeds.
CONDITIONS: dict[str, Corruption] = {
    "haar_crop": haar_crop,
    "rotation": rotate,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "dim": dim,
    "uneven_light": uneven_light,
    "low_res": low_resolution,
    "bright": bright,
}

# What training augmentation draws from: the photometric and resolution conditions (geometry is
# the augmentation's own rotation, zoom and shift, so it is not applied twice).
TRAINING_CORRUPTIONS: tuple[Corruption, ...] = (blur, noise, jpeg, dim, uneven_light, low_resolution, bright)


def corrupt_some(faces: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Each face, with probability `prob`, gets one corruption drawn uniformly from TRAINING_CORRUPTIONS."""
    out = faces.copy()
    if prob <= 0:
        return out
    hit = np.flatnonzero(rng.random(len(faces)) < prob)
    which = rng.integers(0, len(TRAINING_CORRUPTIONS), len(hit))
    for k, fn in enumerate(TRAINING_CORRUPTIONS):
        idx = hit[which == k]
        if len(idx):
            out[idx] = fn(faces[idx], rng)
    return out
