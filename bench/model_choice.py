"""`python -m bench.model_choice`: which emotion model, or blend of models, labels real faces best.

Every model is run int8 and flip-averaged, as the device runs it, on two sets: the largest face the default face
path (`haar+blazeface`, no verifier) finds in each photo of ../shared/wild_dev, cropped as the runtime crops it,
and FER2013 val. Printed: each model's right labels on both, per half of wild_dev's people
(train/wild_data.py), macro recall on wild_dev; then blends of two models, probabilities pooled as `fer-edge
blend` pools them (softmax of weighted log-probabilities: a weighted geometric mean) at each --weight on the second,
so a blend's weight can be chosen before it is built (docs/training_log.md, "The blend").

    python -m bench.model_choice --model models/fer_cnn_int8.tflite --model models/fer_mobile_int8.tflite
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np


def wild_crops(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crops, labels, half of the person) of the photos in which the default face path finds a face."""
    import cv2

    from edge_runtime.face_path import DetectionSettings, build_detector
    from edge_runtime.preprocess import preprocess_faces
    from train.wild_data import half, photos

    detector = build_detector(DetectionSettings(verify_model=""))
    crops, labels, halves = [], [], []
    for photo in photos(root):
        gray = cv2.cvtColor(cv2.imread(str(photo.path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        boxes = detector.detect(gray)
        if boxes:
            crops.append(preprocess_faces(gray, [max(boxes, key=lambda b: b.area).as_list()])[0])
            labels.append(photo.label)
            halves.append(half(photo.person))
    return np.stack(crops), np.array(labels), np.array(halves)


def pooled(p: np.ndarray, q: np.ndarray, weight: float) -> np.ndarray:
    """The blend's pooling: softmax((1 - weight) log p + weight log q)."""
    z = (1 - weight) * np.log(np.clip(p, 1e-7, 1)) + weight * np.log(np.clip(q, 1e-7, 1))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def figures(p: np.ndarray, labels: np.ndarray, halves: np.ndarray | None = None) -> str:
    pred = p.argmax(1)
    text = f"{100 * (pred == labels).mean():.2f} %"
    if halves is not None:
        parts = " / ".join(f"{100 * (pred[m] == labels[m]).mean():.1f}" if m.any() else "none"
                           for m in (halves == 0, halves == 1))
        macro = np.mean([(pred[labels == c] == c).mean() for c in np.unique(labels)])
        text += f" (halves {parts}, macro recall {100 * macro:.1f})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_choice", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="int8 .tflite model (give two or more)")
    parser.add_argument("--wild", default="../shared/wild_dev", help="photos in one folder per class")
    parser.add_argument("--fer", default="../shared/fer2013", help="labelled FER2013 faces")
    parser.add_argument("--split", default="val", help="split of --fer (default val)")
    parser.add_argument("--weight", type=float, action="append",
                        help="weights of the second model of each pair to try (default 0.2 0.3 0.4 0.5)")
    args = parser.parse_args(argv)
    from edge_runtime.classifier import Classifier
    from train.data import load_dataset

    crops, labels, halves = wild_crops(Path(args.wild))
    val = load_dataset(args.fer).split(args.split)
    views = {}  # model -> set -> (faces, mirrored faces) probabilities: a blend is flipped after pooling
    print(f"wild_dev: {len(crops)} faces found; FER2013 {args.split}: {len(val.labels)} faces; int8, flip-averaged")
    for model in args.model:
        clf = Classifier(model, tta="none", num_threads=2)
        views[model] = {name: (clf.predict(x), clf.predict(x[:, :, ::-1])) for name, x in
                        (("wild", crops), ("val", val.images))}
        v = views[model]
        print(f"{model}: wild_dev {figures(sum(v['wild']) / 2, labels, halves)}; "
              f"val {figures(sum(v['val']) / 2, val.labels)}")
    for a, b in itertools.combinations(args.model, 2):
        for w in args.weight or (0.2, 0.3, 0.4, 0.5):
            blend = {name: sum(pooled(p, q, w) for p, q in zip(views[a][name], views[b][name])) / 2
                     for name in ("wild", "val")}
            print(f"{1 - w:.2f} {a} + {w:.2f} {b}: wild_dev {figures(blend['wild'], labels, halves)}; "
                  f"val {figures(blend['val'], val.labels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
