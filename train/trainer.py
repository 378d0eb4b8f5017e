"""Keras 3 training, backend-neutral (TensorFlow on CPU; the same code on JAX), fed from numpy."""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.labels import LABELS, NUM_CLASSES
from edge_runtime.metadata import write_json_atomic
from edge_runtime.preprocess import Preprocessing
from train.augment import Augment
from train.data import Split
from train.history import best_so_far, epochs_in


@dataclass
class TrainConfig:
    arch: str = "fer_vgg"
    epochs: int = 60
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | sgd | adam
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 2.0
    schedule: str = "cosine"  # cosine | onecycle | constant
    label_smoothing: float = 0.1
    class_weight: str = "none"  # none | balanced | sqrt
    patience: int = 15  # early stopping on val accuracy; 0 = off
    seed: int = 1234
    augment: Augment = field(default_factory=Augment)
    max_steps_per_epoch: int | None = None  # for smoke runs
    # Knowledge distillation: the targets mix the labels with a trained teacher's probabilities
    # on each (unaugmented, flip-averaged) training face: (1 - distill) * one-hot + distill * teacher.
    # A list of teachers is an ensemble whose probabilities are averaged.
    teacher: str | list[str] | None = None
    distill: float = 0.5
    # Start from this trained model's weights (same architecture) instead of a random init:
    # a second cosine cycle for a run that ended still underfitting.
    init: str | None = None
    # "mixed_bfloat16" computes in bfloat16 with float32 weights (~1.25x faster on CPUs with AVX512_BF16);
    # the saved model is always rebuilt in float32, so conversion and inference never see bfloat16.
    precision: str = "float32"
    # Which epoch becomes model.keras: "best" on val accuracy, or "last" (a final cycle on train + val, with the
    # epoch count chosen by an earlier run: val then measures faces the model trained on and selects nothing).
    keep: str = "best"

    def to_dict(self) -> dict:
        return asdict(self)


PRECISIONS = ("float32", "mixed_bfloat16")
KEEP = ("best", "last")


class FaceBatches:
    """Shuffled, augmented (N, S, S, 1) float32 batches in uint8 range, one-hot labels."""

    def __init__(self, split: Split, batch_size: int, augment: Augment | None, seed: int,
                 max_steps: int | None = None, sample_weights: np.ndarray | None = None,
                 targets: np.ndarray | None = None):
        self.split, self.batch_size, self.augment = split, batch_size, augment
        self.targets = targets if targets is not None else np.eye(NUM_CLASSES, dtype=np.float32)[split.labels]
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(split))
        self.max_steps = max_steps
        self.sample_weights = sample_weights
        if augment is not None:
            self.rng.shuffle(self.order)

    def as_keras(self):
        import keras

        outer = self

        class _Seq(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=1, use_multiprocessing=False)

            def __len__(self):
                steps = math.ceil(len(outer.split) / outer.batch_size)
                return min(steps, outer.max_steps) if outer.max_steps else steps

            def __getitem__(self, idx):
                return outer.batch(idx)

            def on_epoch_end(self):
                if outer.augment is not None:
                    outer.rng.shuffle(outer.order)

        return _Seq()

    def batch(self, idx: int):
        sel = self.order[idx * self.batch_size : (idx + 1) * self.batch_size]
        images = self.split.images[sel]
        if self.augment is not None:
            images = self.augment(images, self.rng)
        x = images[..., None].astype(np.float32)
        y = self.targets[sel]
        if self.sample_weights is not None:
            return x, y, self.sample_weights[self.split.labels[sel]]
        return x, y


def class_weights(labels: np.ndarray, mode: str) -> np.ndarray | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    w = counts.sum() / (NUM_CLASSES * np.maximum(counts, 1))
    if mode == "sqrt":
        w = np.sqrt(w)
    elif mode != "balanced":
        raise ValueError(f"class weight mode {mode!r}: expected none, balanced or sqrt")
    return (w / (w * counts).sum() * counts.sum()).astype(np.float32)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int):
    import keras

    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        lr = cfg.learning_rate
    elif cfg.schedule in ("cosine", "onecycle"):
        # onecycle: a long warm-up (30 %) then cosine down, as in Smith's one-cycle policy.
        if cfg.schedule == "onecycle":
            warmup = int(0.3 * total)
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=cfg.learning_rate / 25 if warmup else cfg.learning_rate,
            decay_steps=max(1, total - warmup),
            alpha=0.0,
            warmup_target=cfg.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    else:
        raise ValueError(f"schedule {cfg.schedule!r}: expected cosine, onecycle or constant")
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer {cfg.optimizer!r}: expected adamw, adam or sgd")


def distribution_scope():
    """Data parallelism over every accelerator through the backend's own engine:
    keras.distribution.DataParallel on JAX, tf.distribute.MirroredStrategy on TensorFlow."""
    import contextlib

    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if len(jax.devices()) > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel())
    elif backend == "tensorflow":
        import tensorflow as tf

        if len(tf.config.list_logical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def distillation_targets(split: Split, teacher: str | Path | list, weight: float, cache_dir: Path) -> np.ndarray:
    """(1 - weight) * one-hot + weight * the teacher's flip-averaged probabilities, per training face.
    Several teachers (a list) are an ensemble: their probabilities are averaged. Each teacher's
    probabilities are cached in cache_dir, keyed on the teacher file and the faces."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight {weight}: expected a value in [0, 1]")
    teachers = [Path(t) for t in (teacher if isinstance(teacher, (list, tuple)) else [teacher])]
    if not teachers:
        raise ValueError("distillation needs at least one teacher model")
    for t in teachers:
        if not t.exists():
            raise ValueError(f"teacher model {t}: no such file")
    probs = np.mean([_teacher_probs(split, t, cache_dir) for t in teachers], axis=0)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[split.labels]
    return (1.0 - weight) * onehot + weight * probs


def _teacher_probs(split: Split, teacher: Path, cache_dir: Path) -> np.ndarray:
    import hashlib

    from edge_runtime.metadata import sha256_file
    from train.predict import load_predictor, predict_probs

    key = hashlib.sha256(sha256_file(teacher).encode() + split.images.tobytes()).hexdigest()[:16]
    cache = cache_dir / f"teacher-{key}.npy"
    if cache.exists():
        return np.load(cache)
    predictor = load_predictor(teacher)
    if list(predictor.labels) != list(LABELS):
        raise ValueError(f"teacher {teacher}: labels {predictor.labels} are not fer-edge's {list(LABELS)}")
    probs = predict_probs(predictor, split.images, tta="flip").astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, probs)
    return probs


def _load_initial_weights(model, path: Path) -> dict | None:
    """Start from a trained model: the same architecture's weights as they are, or a wider model of the same
    layout pruned to its most important channels (train/prune.py; returns what each pruned layer kept)."""
    import keras

    if not path.exists():
        raise ValueError(f"--init {path}: no such file")
    try:
        source = keras.saving.load_model(path)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(f"--init {path}: not a loadable Keras model: {exc}") from exc
    theirs, ours = [w.shape for w in source.get_weights()], [w.shape for w in model.get_weights()]
    if theirs == ours:
        model.set_weights(source.get_weights())
        return None
    if len(theirs) == len(ours):  # the same layout, narrower: keep the source's most important channels
        from train.prune import prune_into

        try:
            return prune_into(source, model)
        except ValueError as exc:
            raise ValueError(f"--init {path}: {exc}") from exc
    raise ValueError(f"--init {path}: its layers ({source.name}, {len(theirs)} weight tensors) do not match "
                     f"the {model.name} architecture ({len(ours)} weight tensors)")


def train(train_split: Split, val_split: Split, cfg: TrainConfig, out: Path, *, resume: bool = False,
          command: str = "", data_path: str = "", verbose: int = 1) -> dict:
    """Train, keep the best epoch on val accuracy, and write model.keras + model.json into `out`."""
    import keras

    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision {cfg.precision!r}: expected one of {', '.join(PRECISIONS)}")
    if cfg.keep not in KEEP:
        raise ValueError(f"keep {cfg.keep!r}: expected one of {', '.join(KEEP)}")
    if cfg.keep == "last" and cfg.patience:
        raise ValueError("keeping the last epoch needs early stopping off (patience 0): val selects nothing")
    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        return _train(train_split, val_split, cfg, out, resume=resume, command=command, data_path=data_path,
                      verbose=verbose)
    finally:
        keras.mixed_precision.set_global_policy("float32")


class HeldInterrupts:
    """Ctrl-C held while an epoch's files are written: the resume state (BackupAndRestore's weights), the best
    model and the history row. Keras writes them in place, so a KeyboardInterrupt in the middle left a weights file
    without its layers, and `--resume` failed on it ("Layer 'dense' expected 2 variables, but received 0"): the run
    was lost. `hold` installs a SIGINT handler that only remembers; `release` restores the previous one and says
    whether a Ctrl-C came meanwhile. Then the Release callback stops training at that epoch's end, and the trainer
    raises the KeyboardInterrupt once `fit` has returned (`interrupted`): out of the data pipeline's way, with the
    resume state whole and kept. Both run in the main thread (Keras calls its callbacks there); elsewhere, or with a
    SIGINT handler not set from Python, nothing is held."""

    def __init__(self):
        self.holding = False
        self.previous = None
        self.came = False
        self.interrupted = False  # a held Ctrl-C stopped training

    def hold(self) -> None:
        import signal
        import threading

        if self.holding or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # ignored, the OS default, or a handler not set from Python: leave it be
            return
        self.came, self.previous, self.holding = False, previous, True
        signal.signal(signal.SIGINT, self._remember)

    def _remember(self, signum, frame) -> None:
        self.came = True

    def release(self) -> bool:
        """Stop holding; True when a Ctrl-C came while held."""
        import signal

        if not self.holding:
            return False
        signal.signal(signal.SIGINT, self.previous)
        self.holding, self.previous = False, None
        came, self.came = self.came, False
        return came

    def callbacks(self) -> tuple:
        """(first, last): put `first` before the callbacks that write at an epoch's end and `last` after them."""
        import keras

        held = self

        class Hold(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                held.hold()

        class Release(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if held.release():
                    held.interrupted = True
                    self.model.stop_training = True

            def on_train_end(self, logs=None):
                held.interrupted |= held.release()

        return Hold(), Release()


def _train(train_split: Split, val_split: Split, cfg: TrainConfig, out: Path, *, resume: bool, command: str,
           data_path: str, verbose: int) -> dict:
    import keras

    from train.architectures import build_model, count_macs, get_arch

    out = Path(out)
    backup = out / "backup"
    if backup.exists() and not resume:
        raise RuntimeError(f"{out} holds an interrupted run; pass --resume to continue it or choose another --out")
    if resume and not backup.exists():
        raise RuntimeError(f"--resume: no interrupted run to continue in {out} (no {backup})")
    out.mkdir(parents=True, exist_ok=True)
    arch = get_arch(cfg.arch)
    if train_split.images.shape[1] != arch.input_size:
        raise ValueError(f"{cfg.arch} takes {arch.input_size}x{arch.input_size} faces, "
                         f"the data are {train_split.images.shape[1]}x{train_split.images.shape[2]}")
    keras.utils.set_random_seed(cfg.seed)
    weights = class_weights(train_split.labels, cfg.class_weight)
    targets = (distillation_targets(train_split, cfg.teacher, cfg.distill, out / "teacher")
               if cfg.teacher else None)
    batches = FaceBatches(train_split, cfg.batch_size, cfg.augment, cfg.seed, cfg.max_steps_per_epoch, weights,
                          targets)
    seq = batches.as_keras()
    val = FaceBatches(val_split, 256, None, cfg.seed).as_keras()
    with distribution_scope():
        model = build_model(cfg.arch)
        pruned = _load_initial_weights(model, Path(cfg.init)) if cfg.init else None
        if arch.optimizer and cfg.optimizer == "adamw" and cfg.learning_rate == TrainConfig.learning_rate:
            cfg.optimizer, cfg.learning_rate, cfg.schedule = arch.optimizer, arch.learning_rate, "constant"
        model.compile(
            optimizer=make_optimizer(cfg, len(seq)),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
        )
    history_csv = out / "history.csv"
    if not resume:
        history_csv.unlink(missing_ok=True)
    held = HeldInterrupts()
    hold, release = held.callbacks()
    callbacks = [
        hold,
        # Kept when training ends: a held Ctrl-C ends it too, and then the run must stay resumable (removed below
        # when it ended by itself).
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", mode="max",
                                        save_best_only=True, initial_value_threshold=best_so_far(history_csv)),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
    ]
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=cfg.patience))
    callbacks.append(release)
    started = time.time()
    model.fit(seq, validation_data=val, epochs=cfg.epochs, callbacks=callbacks, verbose=verbose)
    if held.interrupted:
        raise KeyboardInterrupt
    shutil.rmtree(backup, ignore_errors=True)  # finished: nothing left to resume
    best = model if cfg.keep == "last" else keras.saving.load_model(out / "best.keras")
    if cfg.precision != "float32":
        keras.mixed_precision.set_global_policy("float32")
        float_model = build_model(cfg.arch)
        float_model.set_weights(best.get_weights())
        best = float_model
    model_path = out / "model.keras"
    best.save(model_path)
    meta = {
        "name": model_path.stem,
        "format": "keras",
        "labels": list(LABELS),
        "input": {"shape": [arch.input_size, arch.input_size, 1], "dtype": "float32", "range": [0, 255]},
        "preprocessing": Preprocessing(size=arch.input_size).to_dict(),
        "arch": cfg.arch,
        "parameters": int(best.count_params()),
        "multiply_adds": count_macs(best),
        "training": {
            "config": cfg.to_dict(),
            "data": data_path,
            "train_faces": len(train_split),
            "val_faces": len(val_split),
            "command": command or " ".join(sys.argv),
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
            "seconds": round(time.time() - started, 1),
            "best_val_accuracy": best_so_far(history_csv),
            # Channels kept of each pruned layer's (the init model's), when --init was pruned into this network.
            **({"pruned_from_init": {k: [len(v), source_width] for k, (v, source_width) in pruned.items()}}
               if pruned else {}),
            "epochs_run": epochs_in(history_csv),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json_atomic(out / "model.json", meta)
    return meta
