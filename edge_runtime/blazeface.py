"""BlazeFace: MediaPipe's face detector, a second FaceDetector beside the Haar cascade.

Haar misses faces that fill the picture (a webcam on a desk, a kiosk, a doorbell); BlazeFace short range
finds them at a few milliseconds a frame, and its full-range model looks for farther, smaller faces. Both
are float TFLite SSDs (Apache-2.0, edge_runtime/models/BLAZEFACE_LICENSE) loaded through the one interpreter
loader, which checks each file's sha256 against its metadata. Decoding follows MediaPipe's graph: the frame
letterboxed into the model's square input as RGB in [-1, 1], SSD anchors from the anchor options in the
metadata, sigmoid scores of clipped logits, offsets divided by the input size, then weighted NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.boxes import Box
from edge_runtime.detector import DetectorError, FaceDetector, check_gray, least_face, load_verifier
from edge_runtime.interpreter import ModelError, input_info, make_interpreter
from edge_runtime.metadata import MetadataError, read_metadata

MODELS = Path(__file__).resolve().parent / "models"
VARIANTS = {"short": MODELS / "blazeface_short_range.tflite", "full": MODELS / "blazeface_full_range_sparse.tflite"}
KIND = "blazeface"


@dataclass(frozen=True)
class AnchorOptions:
    """MediaPipe's SsdAnchorsCalculatorOptions, the fields BlazeFace uses."""

    input_size: int
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


def _scale(o: AnchorOptions, index: int) -> float:
    if len(o.strides) == 1:
        return (o.min_scale + o.max_scale) / 2.0
    return o.min_scale + (o.max_scale - o.min_scale) * index / (len(o.strides) - 1)


def ssd_anchors(o: AnchorOptions) -> np.ndarray:
    """(N, 4) anchors (x_center, y_center, w, h) in [0, 1], in the model's output order: layers that share a
    stride share one feature map; per cell, every aspect ratio of each such layer, then its interpolated scale."""
    anchors = []
    layer = 0
    while layer < len(o.strides):
        sizes = []
        last = layer
        while last < len(o.strides) and o.strides[last] == o.strides[layer]:
            scale = _scale(o, last)
            sizes += [(scale * math.sqrt(r), scale / math.sqrt(r)) for r in o.aspect_ratios]
            if o.interpolated_scale_aspect_ratio > 0:
                following = 1.0 if last == len(o.strides) - 1 else _scale(o, last + 1)
                r = o.interpolated_scale_aspect_ratio
                between = math.sqrt(scale * following)
                sizes.append((between * math.sqrt(r), between / math.sqrt(r)))
            last += 1
        cells = math.ceil(o.input_size / o.strides[layer])
        for y in range(cells):
            for x in range(cells):
                for w, h in sizes:
                    size = (1.0, 1.0) if o.fixed_anchor_size else (w, h)
                    anchors.append(((x + o.anchor_offset) / cells, (y + o.anchor_offset) / cells, *size))
        layer = last
    return np.asarray(anchors, np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           score_threshold: float, clip: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detections scoring at least `score_threshold`: boxes (x0, y0, x1, y1), scores and (K, 2) keypoints,
    in the input's [0, 1] coordinates. raw_boxes (N, 4 + 2K): centre and size offsets (x before y), then the
    keypoints, in input pixels relative to each anchor; raw_scores (N,) logits, clipped against overflow."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -clip, clip)))
    keep = scores >= score_threshold
    a, r = anchors[keep], raw_boxes[keep].astype(np.float32) / input_size
    cx, cy = r[:, 0] * a[:, 2] + a[:, 0], r[:, 1] * a[:, 3] + a[:, 1]
    w, h = r[:, 2] * a[:, 2], r[:, 3] * a[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = r[:, 4:].reshape(len(r), (r.shape[1] - 4) // 2, 2) * a[:, None, 2:] + a[:, None, :2]
    return boxes, scores[keep], keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of `boxes`."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: the best remaining detection absorbs every one overlapping it by more than
    `threshold` IoU, and the merged box is their score-weighted mean (the score stays the best one's). A face
    lights up many neighbouring anchors; averaging them steadies the box from frame to frame, where plain NMS
    would jump between anchors."""
    order = np.argsort(-scores, kind="stable")
    merged, kept = [], []
    while order.size:
        overlaps = iou(boxes[order[0]], boxes[order])
        group = order[overlaps > threshold]
        weights = scores[group]
        merged.append((boxes[group] * weights[:, None]).sum(axis=0) / weights.sum())
        kept.append(scores[order[0]])
        order = order[overlaps <= threshold]
    return np.reshape(merged, (-1, 4)).astype(np.float32), np.asarray(kept, np.float32)


@dataclass(frozen=True)
class Framing:
    """How a BlazeFace box becomes the framing the emotion model was trained on (FER2013 crops look like Haar's
    boxes): width and height scaled, centre moved by a fraction of the box's width and height."""

    scale_w: float = 1.0
    scale_h: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 + self.dx * w, (boxes[:, 1] + boxes[:, 3]) / 2 + self.dy * h
        w, h = w * self.scale_w, h * self.scale_h
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@dataclass(frozen=True)
class BlazeFaceOptions:
    """BlazeFace settings; sizes are in pixels of the frame given to `detect`."""

    model: str = "short"  # "short" (faces near the camera, 128x128 input) or "full" (farther faces, 192x192)
    model_path: str | None = None  # None = the file shipped for `model` in edge_runtime/models
    score_threshold: float = 0.5  # MediaPipe's default min_detection_confidence
    nms_threshold: float = 0.3  # MediaPipe's min_suppression_threshold (IoU)
    min_size: int = 48
    # Also look at square tiles of this fraction of the frame's shorter side (half a tile apart), so that
    # short range sees small faces larger; 0 = the whole frame only.
    tile: float = 0.0
    # The least score of a face found in a tile: a tile enlarges texture, which short range then takes for faces
    # up to about 0.55 (0.15 false faces a frame at 0.5 on bench.detectors' faceless frames, none at 0.6).
    tile_score_threshold: float = 0.6
    # Move and scale each box to the framing of FER2013 crops (the fit in the model's metadata); False = the
    # model's own box.
    fer_framing: bool = True
    num_threads: int = 1
    # The face verifier that vets each detection that would start a track ("" = none, None = the shipped one):
    # BlazeFace's own score passes some texture at 0.5 (0.007 false faces a frame on the portrait scenes).
    verify_model: str | None = ""
    verify_threshold: float = 0.2
    # A picture too small to hold a min_size face with room around it (a face photo cropped tight, a thumbnail:
    # under twice min_size on its shorter side) where no face is found is looked at again with a replicated border
    # of this share of its longer side on each side: like the cascade, BlazeFace needs some room around a face.
    # wild_dev: 23 of the 25 photos where the default face path found no face were such thumbnails; the second look
    # finds 12 of them. 0 = never. A camera frame is never so small.
    thumbnail_border: float = 0.25

    def check(self) -> None:
        problems = []
        if self.model not in VARIANTS:
            problems.append(f"model must be one of {sorted(VARIANTS)} (got {self.model!r})")
        if not 0.0 < self.score_threshold < 1.0:
            problems.append(f"score_threshold must be between 0 and 1 (got {self.score_threshold})")
        if not 0.0 < self.nms_threshold < 1.0:
            problems.append(f"nms_threshold must be between 0 and 1 (got {self.nms_threshold})")
        if self.min_size < 1:
            problems.append(f"min_size must be >= 1 pixel (got {self.min_size})")
        if not (self.tile == 0.0 or 0.1 <= self.tile < 1.0):
            problems.append(f"tile must be 0 or between 0.1 and 1 (got {self.tile})")
        if not 0.0 < self.tile_score_threshold < 1.0:
            problems.append(f"tile_score_threshold must be between 0 and 1 (got {self.tile_score_threshold})")
        if self.num_threads < 1:
            problems.append(f"num_threads must be >= 1 (got {self.num_threads})")
        if not 0.0 <= self.thumbnail_border <= 1.0:
            problems.append(f"thumbnail_border must be between 0 and 1 (got {self.thumbnail_border})")
        if problems:
            raise DetectorError("bad BlazeFace options: " + "; ".join(problems))


class BlazeFaceDetector(FaceDetector):
    """MediaPipe's BlazeFace on a grayscale frame (replicated into the three colour channels it expects)."""

    def __init__(self, options: BlazeFaceOptions | None = None):
        self.options = options or BlazeFaceOptions()
        self.options.check()
        self.path = Path(self.options.model_path or VARIANTS[self.options.model])
        try:
            self.interpreter = make_interpreter(self.path, num_threads=self.options.num_threads)
            meta = read_metadata(self.path)
        except (ModelError, MetadataError) as exc:
            raise DetectorError(str(exc)) from exc
        spec = meta.get(KIND)
        if "sha256" not in meta or not isinstance(spec, dict):
            raise DetectorError(f"{self.path}: not a BlazeFace model (its metadata has no sha256 or no "
                                f"{KIND!r} section)")
        try:
            anchor_options = AnchorOptions(**{k: tuple(v) if isinstance(v, list) else v
                                              for k, v in spec["anchors"].items()})
            self.anchors = ssd_anchors(anchor_options)
            self.framing = Framing(**spec.get("fer_framing", {}))
            self.clip = float(spec.get("score_clipping", 100.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise DetectorError(f"{self.path}: unreadable BlazeFace settings in its metadata ({exc})") from exc
        self.size = anchor_options.input_size
        self._check_io()
        self.verifier = load_verifier(self.options.verify_model, self.options.verify_threshold)
        self._tensor = np.zeros((1, self.size, self.size, 3), np.float32)

    def _check_io(self) -> None:
        inp = input_info(self.interpreter)
        outputs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()
                   if tuple(d["shape"][:2]) == (1, len(self.anchors))}
        if inp.shape != (1, self.size, self.size, 3) or inp.dtype != np.float32 or sorted(outputs) != [1, 16]:
            raise DetectorError(f"{self.path}: not a BlazeFace model (input {list(inp.shape)} {inp.dtype.name}, "
                                f"expected a float32 [1, {self.size}, {self.size}, 3] image in and "
                                f"{len(self.anchors)} boxes and scores out)")
        self.input_index, self.boxes_index, self.scores_index = inp.index, outputs[16], outputs[1]

    def verify(self, gray: np.ndarray, box: Box) -> bool:
        """Whether the face verifier (when there is one) takes the crop at `box` for a face."""
        return self.verifier is None or self.verifier.is_face(gray, box.as_list())

    def detect(self, gray: np.ndarray) -> list[Box]:
        return self._detect(check_gray(gray))

    def detect_part(self, part: np.ndarray) -> list[Box]:
        """As `detect`, without a thumbnail's second look: a piece of a frame (a region look of the pipeline) has
        the frame around it, and its edge is not the picture's."""
        return self._look(check_gray(part), 0)

    def detect_bgr(self, bgr: np.ndarray) -> list[Box]:
        """As `detect`, on a colour (BGR uint8) frame: what the model was trained on, for comparison."""
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"detect_bgr needs an HxWx3 uint8 image, got {bgr.dtype} of shape {bgr.shape}")
        return self._detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def border(self, shape: tuple[int, ...]) -> int:
        """The replicated border, in pixels on each side, of the second look at a picture of `shape` when the first
        finds no face: thumbnail_border of its longer side for a thumbnail (a shorter side under twice min_size),
        else none."""
        if min(shape[:2]) >= 2 * self.options.min_size:
            return 0
        return round(self.options.thumbnail_border * max(shape[:2]))

    def _detect(self, image: np.ndarray) -> list[Box]:
        """The faces of the picture; a thumbnail in which none is found is looked at again with a border (on
        wild_dev's thumbnails the border finds 12 faces the plain look misses, and misses 9 it finds)."""
        found = self._look(image, 0)
        border = self.border(image.shape)
        return found if found or not border else self._look(image, border)

    def _look(self, image: np.ndarray, border: int) -> list[Box]:
        """The faces found in `image` seen with a replicated border of `border` px on each side, in `image`'s
        coordinates (clipped to it)."""
        height, width = image.shape[:2]
        o = self.options
        least = least_face(o.min_size, image.shape)
        if border:
            image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
        tile_threshold = max(o.score_threshold, o.tile_score_threshold)
        found = [self._run(image, window, o.score_threshold if i == 0 else tile_threshold)
                 for i, window in enumerate(self.windows(image.shape[1], image.shape[0]))]
        boxes, scores = np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found])
        if not len(boxes):
            return []
        boxes, scores = weighted_nms(boxes, scores, o.nms_threshold)
        if o.fer_framing:
            boxes = self.framing.apply(boxes)
        result = []
        for (x0, y0, x1, y1), score in zip(boxes - border, scores):
            box = Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0), float(score)).clipped(width, height)
            if box is not None and max(box.w, box.h) >= least:
                result.append(Box(box.x, box.y, box.w, box.h, float(score)))
        return result

    def windows(self, width: int, height: int) -> list[Box]:
        """The parts of a width x height frame the model looks at: the whole frame, then the tiles."""
        whole = Box(0, 0, width, height)
        side = round(self.options.tile * min(width, height))
        if not self.options.tile or side < 1:
            return [whole]
        step = max(1, side // 2)
        xs = sorted({*range(0, max(1, width - side), step), max(0, width - side)})
        ys = sorted({*range(0, max(1, height - side), step), max(0, height - side)})
        return [whole, *(Box(x, y, min(side, width), min(side, height)) for y in ys for x in xs)]

    def _run(self, image: np.ndarray, window: Box, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Detections of the model scoring at least `threshold` in `window` of `image`, as frame-pixel boxes
        (x0, y0, x1, y1) and scores.
        The window is letterboxed into the model's input (kept aspect, centred, black bars) as MediaPipe does."""
        crop = image[window.y : window.y + window.h, window.x : window.x + window.w]
        scale = self.size / max(window.w, window.h)
        w, h = max(1, round(window.w * scale)), max(1, round(window.h * scale))
        small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        px, py = (self.size - w) // 2, (self.size - h) // 2
        tensor = self._tensor
        tensor.fill(-1.0)
        # A gray crop broadcasts into all three channels.
        tensor[0, py : py + h, px : px + w] = (small.astype(np.float32) * (2.0 / 255.0) - 1.0).reshape(h, w, -1)
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.boxes_index)[0]
        raw_scores = self.interpreter.get_tensor(self.scores_index)[0, :, 0]
        boxes, scores, _ = decode(raw_boxes, raw_scores, self.anchors, self.size, threshold, self.clip)
        boxes = (boxes * self.size - [px, py, px, py]) / scale + [window.x, window.y, window.x, window.y]
        return boxes.astype(np.float32), scores
