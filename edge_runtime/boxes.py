"""Face boxes: the plain type that detector, tracker, classifier and annotation pass around."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width w and height h; `score`: how sure the
    detector that found it is (for Haar, the cascade's last-stage weight; 0 = unknown). The score is not
    part of a box's identity: two boxes in the same place are equal."""

    x: int
    y: int
    w: int
    h: int
    score: float = field(default=0.0, compare=False, repr=False)

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def scaled(self, sx: float, sy: float | None = None) -> Box:
        """The same box in an image resized by (sx, sy)."""
        sy = sx if sy is None else sy
        return Box(round(self.x * sx), round(self.y * sy), round(self.w * sx), round(self.h * sy), self.score)

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(round(self.x + dx), round(self.y + dy), self.w, self.h, self.score)

    def grown(self, fraction: float) -> Box:
        """The box grown by `fraction` of its width/height on every side, same centre."""
        dx, dy = self.w * fraction, self.h * fraction
        return Box(round(self.x - dx), round(self.y - dy), round(self.w + 2 * dx), round(self.h + 2 * dy))

    def clipped(self, width: int, height: int) -> Box | None:
        """The part inside a width x height image, or None when nothing is inside."""
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.w, width), min(self.y + self.h, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)

    def intersection(self, other: Box) -> int:
        ix = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        iy = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return ix * iy if ix > 0 and iy > 0 else 0

    def iou(self, other: Box) -> float:
        """Intersection over union (0 when either box is empty)."""
        inter = self.intersection(other)
        return inter / float(self.area + other.area - inter) if inter else 0.0

    def overlap(self, other: Box) -> float:
        """Intersection over the smaller box's area: 1 when one box lies inside the other."""
        inter = self.intersection(other)
        return inter / float(min(self.area, other.area)) if inter else 0.0
