"""Ctrl-C while an epoch's files are written is held until they are whole (train/trainer.py: HeldInterrupts): a
KeyboardInterrupt in the middle of Keras' in-place weights write left a resume state `--resume` could not load."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from train.trainer import HeldInterrupts


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """Python's own SIGINT handler (KeyboardInterrupt), as in `fer-edge train`, whatever an earlier test set."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_while_held_is_told_at_release_and_the_handler_is_restored():
    held = HeldInterrupts()
    held.hold()
    os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here without the hold
    time.sleep(0.2)  # time for the handler to run: it only remembers
    assert held.release() is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert held.release() is False  # released twice: nothing more to tell
    with pytest.raises(KeyboardInterrupt):  # not held any more: Ctrl-C is Python's again
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_without_a_ctrl_c_release_only_restores_the_handler():
    held = HeldInterrupts()
    held.hold()
    held.hold()  # held twice: the handler to restore is still the one before the first
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    assert held.release() is False
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_not_set_from_python_is_left_alone():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    held = HeldInterrupts()
    held.hold()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert held.release() is False and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_ctrl_c_during_an_epochs_writes_ends_training_after_them(tmp_path):
    keras = pytest.importorskip("keras")
    written = []

    class Writes(keras.callbacks.Callback):
        """Ctrl-C arrives in the middle of an epoch-end write of two parts."""

        def on_epoch_end(self, epoch, logs=None):
            (tmp_path / f"{epoch}.a").write_text("first half")
            os.kill(os.getpid(), signal.SIGINT)
            (tmp_path / f"{epoch}.b").write_text("second half")
            written.append(epoch)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 3), np.float32), np.zeros(8, np.int64)
    held = HeldInterrupts()
    hold, release = held.callbacks()
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[hold, Writes(), release])
    # Both halves written, training ended at that epoch, and the trainer is told to raise the interrupt.
    assert written == [0] and (tmp_path / "0.b").read_text() == "second half"
    assert held.interrupted and len(history.history["loss"]) == 1
    # Without the hold the same fit stops between the two halves.
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[Writes()])
    assert written == []
