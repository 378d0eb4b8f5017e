"""Training-time augmentation on uint8 face batches (numpy + OpenCV, backend-neutral)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from train.corruptions import corrupt_some


@dataclass(frozen=True)
class Augment:
    flip: bool = True
    rotation_deg: float = 10.0
    shift: float = 0.1  # fraction of the side
    zoom: float = 0.1  # scale in [1 - zoom, 1 + zoom]
    brightness: float = 0.2  # added, fraction of 255
    contrast: float = 0.2  # multiplied around the mean, in [1 - c, 1 + c]
    erase_prob: float = 0.1  # random erasing of one rectangle (Zhong et al.)
    # Probability that a face also gets one deployment corruption (blur, sensor noise, JPEG, dim or uneven
    # light, low resolution: train/corruptions.py), the conditions the robustness report measures.
    corrupt_prob: float = 0.0

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new (N, S, S) uint8 batch; the input is not modified."""
        n, size = images.shape[0], images.shape[1]
        out = np.empty_like(images)
        angles = rng.uniform(-self.rotation_deg, self.rotation_deg, n)
        scales = rng.uniform(1 - self.zoom, 1 + self.zoom, n)
        shifts = rng.uniform(-self.shift, self.shift, (n, 2)) * size
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, bool)
        centre = (size / 2 - 0.5, size / 2 - 0.5)
        geometry = bool(self.rotation_deg or self.zoom or self.shift)
        for i in range(n):
            if not geometry:  # flips only: exact, no interpolation
                out[i] = images[i, :, ::-1] if flips[i] else images[i]
                continue
            m = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
            m[:, 2] += shifts[i]
            if flips[i]:
                m[0] = -m[0]
                m[0, 2] += size - 1
            out[i] = cv2.warpAffine(images[i], m, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT_101)
        # Drawn whether used or not, so a seed gives the same geometry at every strength.
        gain = rng.uniform(1 - self.contrast, 1 + self.contrast, (n, 1, 1))
        bias = rng.uniform(-self.brightness, self.brightness, (n, 1, 1)) * 255
        erase = np.flatnonzero(rng.random(n) < self.erase_prob)
        if self.brightness or self.contrast or len(erase):
            x = out.astype(np.float32)
            mean = x.mean(axis=(1, 2), keepdims=True)
            x = (x - mean) * gain + mean + bias
            for i in erase:
                h, w = (rng.uniform(0.1, 0.4, 2) * size).astype(int)
                y0, x0 = rng.integers(0, size - h), rng.integers(0, size - w)
                x[i, y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255)
            out = np.clip(x, 0, 255).astype(np.uint8)
        if self.corrupt_prob:
            out = corrupt_some(out, rng, self.corrupt_prob)
        return out


# Named strengths for `fer-edge train --augment`. "light" is for small networks that underfit
# (train accuracy no higher than val): geometry and flip only, no photometric change or erasing.
AUGMENTS: dict[str, Augment] = {
    "default": Augment(),
    "light": Augment(brightness=0.0, contrast=0.0, erase_prob=0.0),
    "none": Augment(False, 0, 0, 0, 0, 0, 0),
    # For deployment: wider geometry (the crop a Haar box gives, a tilted head) and, on half the faces,
    # one of the photometric corruptions the robustness report measures.
    "robust": Augment(rotation_deg=15.0, zoom=0.15, shift=0.1, brightness=0.1, contrast=0.2, erase_prob=0.1,
                      corrupt_prob=0.5),
}
