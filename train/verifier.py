"""The face verifier: a tiny CNN that says whether a crop the Haar cascade found is a face.

`fer-edge verifier train` (convert/verifier.py) makes it: this module trains the float model from FER2013
training faces (train.verifier_data has the crops) and measures a build on crops it did not train on and
on FER2013 val faces (people it never saw); convert builds the full-integer int8 file in between. The
runtime (edge_runtime/verifier.py) runs it once on each detection that would start a new track.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_runtime.metadata import write_json_atomic
from edge_runtime.preprocess import preprocess_face
from edge_runtime.verifier import FACE, LABELS
from train.verifier_data import VerifierData, make_verifier_data

ARCH = "face_verifier"


@dataclass(frozen=True)
class VerifierConfig:
    size: int = 32
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 3e-3
    holdout: float = 0.1
    seed: int = 0
    # The runtime's default threshold on P(face), written to the metadata; measured below it.
    threshold: float = 0.2
    # Real photographs (../shared/wild_dev, one folder per class): the training half of its people adds real
    # faces and real non-faces (train/wild_data.py); "" = FER2013 and generated backdrops only.
    wild: str = ""
    wild_faces_per_photo: int = 12
    wild_non_faces_per_photo: int = 16


def build_model(size: int = 32):
    """~0.8 M multiply-adds: four 3x3 convolutions (8-16-32-32 channels) with pooling, global average, softmax."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    for i, channels in enumerate((8, 16, 32, 32)):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if i < 3:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=ARCH)


def _split(data: VerifierData, holdout: float) -> tuple[VerifierData, VerifierData]:
    n = int(round(len(data) * holdout))
    return (VerifierData(data.crops[n:], data.labels[n:]), VerifierData(data.crops[:n], data.labels[:n]))


def rates(p_face: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Share of faces kept and of non-faces let through at P(face) >= threshold."""
    kept = p_face >= threshold
    faces, others = labels == 1, labels == 0
    return {"threshold": threshold, "faces": int(faces.sum()), "non_faces": int(others.sum()),
            "faces_kept": float(kept[faces].mean()) if faces.any() else None,
            "non_faces_passed": float(kept[others].mean()) if others.any() else None}


@dataclass(frozen=True)
class TrainedVerifier:
    """A trained float verifier (OUT/face_verifier.keras with its card) and what its int8 build needs:
    calibration crops that reach 255 (the exact input scale) and the crops and photographs held out to
    measure it on."""

    keras_path: Path
    meta: dict
    calibration_crops: np.ndarray
    held: VerifierData
    held_wild: tuple[np.ndarray, np.ndarray] | None  # (faces, non-faces) of the held-out people; None: no --wild


def train_verifier(train_faces: np.ndarray, out: Path, cfg: VerifierConfig | None = None, *, command: str = "",
                   data_path: str = "", verbose: int = 2) -> TrainedVerifier:
    """Train and save OUT/face_verifier.keras with its card; convert's build_verifier makes the int8 file."""
    import keras

    cfg = cfg or VerifierConfig()
    keras.utils.set_random_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    wild = held_wild = None
    if cfg.wild:
        from train import wild_data

        rng = np.random.default_rng(cfg.seed + 1)
        wild = wild_data.verifier_crops(wild_data.photos(cfg.wild, wild_data.TRAIN_HALF), rng,
                                        faces_per_photo=cfg.wild_faces_per_photo,
                                        non_faces_per_photo=cfg.wild_non_faces_per_photo)
        held_wild = wild_data.verifier_crops(wild_data.photos(cfg.wild, wild_data.HELD_OUT_HALF), rng,
                                             non_faces_per_photo=cfg.wild_non_faces_per_photo, jitter=False)
    data = make_verifier_data(train_faces, size=cfg.size, seed=cfg.seed, wild=wild)
    fit, held = _split(data, cfg.holdout)
    model = build_model(cfg.size)
    steps = cfg.epochs * -(-len(fit) // cfg.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(fit.crops[..., None].astype(np.float32), fit.labels, batch_size=cfg.batch_size, epochs=cfg.epochs,
              validation_data=(held.crops[..., None].astype(np.float32), held.labels), verbose=verbose)
    keras_path = out / f"{ARCH}.keras"
    model.save(keras_path)
    meta = {
        "name": ARCH, "arch": ARCH, "labels": list(LABELS),
        "preprocessing": {"size": cfg.size, "margin": 0.0, "color": "gray"},
        "threshold": cfg.threshold,
        "training": {"command": command, "data": data_path, "config": asdict(cfg),
                     "crops": len(data), "faces": int(data.labels.sum()), "non_faces": int((data.labels == 0).sum()),
                     "multiply_adds": multiply_adds(model)},
    }
    write_json_atomic(keras_path.with_suffix(".json"), meta)
    rng = np.random.default_rng(cfg.seed)
    sample = fit.crops[rng.choice(len(fit), min(600, len(fit)), replace=False)]
    sample[0] = np.clip(sample[0].astype(np.int32) * 255 // max(1, int(sample[0].max())), 0, 255)
    sample[0].flat[0] = 255  # the calibrated input range must reach 255 for the exact input scale
    return TrainedVerifier(keras_path, meta, sample, held, held_wild)


def measure(predict: Callable[[np.ndarray], np.ndarray], trained: TrainedVerifier, val_faces: np.ndarray | None,
            threshold: float) -> dict:
    """A build's figures at `threshold`: on the held-out crops, FER2013 val faces (people it never saw) and
    the held-out people's photographs. predict: crops -> probabilities (e.g. the runtime's Classifier)."""
    size = trained.meta["preprocessing"]["size"]
    face = LABELS.index(FACE)
    figures = {"holdout": rates(predict(trained.held.crops)[:, face], trained.held.labels, threshold)}
    if val_faces is not None:
        small = np.stack([preprocess_face(f, size=size) for f in val_faces])
        figures["fer_val_faces"] = rates(predict(small)[:, face], np.ones(len(small), np.uint8), threshold)
    if trained.held_wild is not None:
        faces, non_faces = trained.held_wild
        crops = np.concatenate(trained.held_wild)
        small = np.stack([preprocess_face(c, size=size) for c in crops])
        labels = np.concatenate([np.ones(len(faces), np.uint8), np.zeros(len(non_faces), np.uint8)])
        figures["wild_held_out_people"] = rates(predict(small)[:, face], labels, threshold)
    return figures


def multiply_adds(model) -> int:
    """Multiply-adds of one crop through the convolutions and the dense layer."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif kind == "Dense":
            total += layer.input.shape[-1] * layer.units
    return int(total)


