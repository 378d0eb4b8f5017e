"""A few real training steps on a tiny generated set, and --resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edge_runtime.labels import LABELS  # noqa: E402
from train.augment import Augment  # noqa: E402
from train.data import Split  # noqa: E402
from train.history import read_history  # noqa: E402
from train.trainer import TrainConfig, train  # noqa: E402

EPOCHS = 3

pytestmark = [
    pytest.mark.slow,
    # Raised inside TensorFlow/Keras under numpy 2; not about this code.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
]


@pytest.fixture
def splits(class_coded_faces):
    images, labels = class_coded_faces(64, seed=0)
    val_images, val_labels = class_coded_faces(21, seed=1)
    return Split(images, labels), Split(val_images, val_labels)


def _config(**kwargs) -> TrainConfig:
    # Small and deterministic: no augmentation, constant learning rate, no early stop.
    defaults = dict(arch="shallow_cnn", epochs=EPOCHS, batch_size=16, learning_rate=1e-3, warmup_epochs=0,
                    schedule="constant", patience=0, augment=Augment(False, 0, 0, 0, 0, 0, 0))
    return TrainConfig(**{**defaults, **kwargs})


def test_a_few_epochs_lower_the_loss_and_write_the_model(splits, tmp_path):
    out = tmp_path / "run"
    meta = train(*splits, _config(), out, verbose=0)

    history = read_history(out / "history.csv")
    assert history["epoch"] == list(range(EPOCHS))
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    assert (out / "model.keras").exists() and not (out / "backup").exists()
    sidecar = json.loads((out / "model.json").read_text())
    assert sidecar == meta
    assert meta["labels"] == list(LABELS) and meta["input"]["shape"] == [48, 48, 1]
    assert meta["training"]["epochs_run"] == EPOCHS and meta["training"]["train_faces"] == 64
    assert meta["training"]["best_val_accuracy"] == max(history["val_accuracy"])


class Interrupted(Exception):
    """Stands in for a kill (Ctrl-C, OOM, power) in the middle of training."""


def _interrupt_at(monkeypatch, epoch: int) -> None:
    """Make train()'s CSVLogger die when `epoch` begins, i.e. after the previous epoch was backed up."""
    real = keras.callbacks.CSVLogger

    class DyingLogger(real):
        def on_epoch_begin(self, e, logs=None):
            if e == epoch:
                raise Interrupted(f"killed at the start of epoch {e}")
            super().on_epoch_begin(e, logs)

    monkeypatch.setattr(keras.callbacks, "CSVLogger", DyingLogger)


def test_resume_continues_an_interrupted_run(splits, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_at(m, 2)
        with pytest.raises(Interrupted):
            train(*splits, _config(), out, verbose=0)
    assert (out / "backup").is_dir()
    assert read_history(out / "history.csv")["epoch"] == [0, 1]

    with pytest.raises(RuntimeError, match="interrupted run.*--resume"):
        train(*splits, _config(), out, verbose=0)
    assert read_history(out / "history.csv")["epoch"] == [0, 1]  # the refusal touched nothing

    meta = train(*splits, _config(), out, resume=True, verbose=0)

    history = read_history(out / "history.csv")
    assert history["epoch"] == list(range(EPOCHS))  # continued at 2, not restarted at 0
    # Restored weights: a restart from scratch would repeat epoch 0's loss exactly (same seed, same order).
    assert history["loss"][2] < 0.9 * history["loss"][0], history["loss"]
    assert not (out / "backup").exists()
    assert meta["training"]["epochs_run"] == EPOCHS


def test_resume_without_an_interrupted_run_is_refused(splits, tmp_path):
    with pytest.raises(RuntimeError, match="no interrupted run"):
        train(*splits, _config(), tmp_path / "fresh", resume=True, verbose=0)


def test_data_of_the_wrong_size_for_the_preset_is_refused(splits, tmp_path):
    with pytest.raises(ValueError, match="100x100"):
        train(*splits, _config(arch="valid_cnn_100"), tmp_path / "run", verbose=0)


TEACHER = Path(__file__).resolve().parents[2] / "models" / "fer_cnn.keras"


def test_distillation_targets_mix_the_labels_with_the_teacher(class_coded_faces, tmp_path, monkeypatch):
    from train import predict
    from train.trainer import distillation_targets

    images, labels = class_coded_faces(14, seed=3)
    split = Split(images, labels)
    onehot = np.eye(len(LABELS), dtype=np.float32)[labels]
    teacher = predict.predict_probs(predict.load_predictor(TEACHER), images, tta="flip")

    targets = distillation_targets(split, TEACHER, 0.3, tmp_path / "cache")
    np.testing.assert_allclose(targets, 0.7 * onehot + 0.3 * teacher, atol=1e-5)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(distillation_targets(split, TEACHER, 0.0, tmp_path / "cache"), onehot)

    # The teacher ran once: the same faces now come from the cache, other faces need the teacher again.
    assert len(list((tmp_path / "cache").glob("teacher-*.npy"))) == 1

    def no_teacher(path, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(predict, "load_predictor", no_teacher)
    np.testing.assert_allclose(distillation_targets(split, TEACHER, 1.0, tmp_path / "cache"), teacher, atol=1e-5)
    with pytest.raises(AssertionError, match="ran again"):
        distillation_targets(Split(images[:7], labels[:7]), TEACHER, 0.5, tmp_path / "cache")


def test_an_ensemble_of_teachers_is_averaged(class_coded_faces, tmp_path):
    from train import predict
    from train.trainer import distillation_targets

    second = Path(__file__).resolve().parents[2] / "models" / "fer_mobile.keras"
    images, labels = class_coded_faces(10, seed=4)
    split = Split(images, labels)
    each = [predict.predict_probs(predict.load_predictor(t), images, tta="flip") for t in (TEACHER, second)]
    assert np.abs(each[0] - each[1]).max() > 0.05  # two teachers that disagree somewhere
    targets = distillation_targets(split, [str(TEACHER), str(second)], 1.0, tmp_path / "cache")
    np.testing.assert_allclose(targets, (each[0] + each[1]) / 2, atol=1e-5)
    assert len(list((tmp_path / "cache").glob("teacher-*.npy"))) == 2
    with pytest.raises(ValueError, match="at least one teacher"):
        distillation_targets(split, [], 0.5, tmp_path / "cache")


def test_distillation_refuses_a_bad_weight_or_a_missing_teacher(class_coded_faces, tmp_path):
    from train.trainer import distillation_targets

    split = Split(*class_coded_faces(7))
    with pytest.raises(ValueError, match=r"distillation weight 1\.5"):
        distillation_targets(split, TEACHER, 1.5, tmp_path)
    with pytest.raises(ValueError, match="nope.keras: no such file"):
        distillation_targets(split, tmp_path / "nope.keras", 0.5, tmp_path)


def test_training_with_a_teacher_records_it(splits, tmp_path):
    meta = train(*splits, _config(epochs=1, teacher=str(TEACHER), distill=0.5), tmp_path / "run", verbose=0)
    assert meta["training"]["config"]["teacher"] == str(TEACHER)
    assert meta["training"]["config"]["distill"] == 0.5
    assert list((tmp_path / "run" / "teacher").glob("teacher-*.npy"))


def test_init_starts_from_a_trained_model_of_the_same_architecture(splits, tmp_path):
    first = tmp_path / "first"
    train(*splits, _config(), first, verbose=0)
    history = read_history(first / "history.csv")
    best = history["val_accuracy"].index(max(history["val_accuracy"]))

    # With a learning rate of ~0 the weights stay where --init put them: the first epoch's val loss is
    # that of the saved (best) epoch, not a random network's.
    second = tmp_path / "second"
    meta = train(*splits, _config(epochs=1, learning_rate=1e-12, init=str(first / "model.keras")), second,
                 verbose=0)
    again = read_history(second / "history.csv")["val_loss"][0]
    assert again == pytest.approx(history["val_loss"][best], rel=1e-3), (again, history["val_loss"])
    assert meta["training"]["config"]["init"] == str(first / "model.keras")


def test_init_refuses_another_architecture_or_a_missing_file(splits, tmp_path):
    first = tmp_path / "first"
    train(*splits, _config(epochs=1), first, verbose=0)
    with pytest.raises(ValueError, match="do not match the fer_mobile architecture"):
        train(*splits, _config(arch="fer_mobile", epochs=1, init=str(first / "model.keras")), tmp_path / "b",
              verbose=0)
    with pytest.raises(ValueError, match="nope.keras: no such file"):
        train(*splits, _config(epochs=1, init=str(tmp_path / "nope.keras")), tmp_path / "c", verbose=0)


def test_mixed_bfloat16_training_saves_a_float32_model_that_predicts_like_the_best_epoch(splits, tmp_path):
    out = tmp_path / "bf16"
    meta = train(*splits, _config(precision="mixed_bfloat16"), out, verbose=0)

    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whatever runs next
    saved = keras.saving.load_model(out / "model.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    assert all(w.dtype == np.float32 for w in saved.get_weights())
    best = keras.saving.load_model(out / "best.keras")  # the checkpoint, still computing in bfloat16
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in best.layers}
    x = splits[1].images[..., None].astype(np.float32)
    p_saved, p_best = saved.predict(x, verbose=0), best.predict(x, verbose=0)
    np.testing.assert_allclose(p_saved.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(p_saved - p_best).max() < 0.05  # the same weights; bfloat16 rounding only
    assert meta["training"]["config"]["precision"] == "mixed_bfloat16"


def test_an_unknown_precision_is_refused_before_training(splits, tmp_path):
    with pytest.raises(ValueError, match="precision 'float16'"):
        train(*splits, _config(precision="float16"), tmp_path / "x", verbose=0)
    assert not (tmp_path / "x").exists()
    assert keras.mixed_precision.global_policy().name == "float32"


def _smoothed_loss(model_path: Path, split: Split, smoothing: float = 0.1) -> float:
    probs = keras.saving.load_model(model_path).predict(split.images[..., None].astype(np.float32), verbose=0)
    targets = np.eye(len(LABELS))[split.labels] * (1 - smoothing) + smoothing / len(LABELS)
    return float(-(targets * np.log(np.clip(probs, 1e-7, 1.0))).sum(axis=1).mean())


def test_keep_last_saves_the_last_epoch_and_keep_best_the_best(class_coded_faces, tmp_path):
    images, labels = class_coded_faces(64, seed=0)
    val_images, val_labels = class_coded_faces(21, seed=1)
    # Val labelled one class off: the better the model learns, the worse val gets, so the last epoch is not the
    # best one on val, and the two ways of keeping an epoch save different weights.
    wrong = Split(val_images, (val_labels + 1) % len(LABELS))
    for keep in ("best", "last"):
        meta = train(Split(images, labels), wrong, _config(keep=keep), tmp_path / keep, verbose=0)
        assert meta["training"]["config"]["keep"] == keep
    history = read_history(tmp_path / "last" / "history.csv")
    assert history == read_history(tmp_path / "best" / "history.csv")  # the same seeded run
    best = history["val_accuracy"].index(max(history["val_accuracy"]))
    assert history["val_loss"][-1] > history["val_loss"][best] * 1.05
    assert _smoothed_loss(tmp_path / "last" / "model.keras", wrong) == pytest.approx(history["val_loss"][-1], rel=1e-3)
    assert _smoothed_loss(tmp_path / "best" / "model.keras", wrong) == pytest.approx(history["val_loss"][best],
                                                                                     rel=1e-3)


def test_keep_last_refuses_early_stopping_and_an_unknown_keep(splits, tmp_path):
    with pytest.raises(ValueError, match="patience 0"):
        train(*splits, _config(keep="last", patience=3), tmp_path / "a", verbose=0)
    with pytest.raises(ValueError, match="keep 'first'"):
        train(*splits, _config(keep="first"), tmp_path / "b", verbose=0)
