"""Ctrl-C while an epoch's files are written is held until they are whole (train/trainer.py: HeldInterrupts): a
KeyboardInterrupt in the middle of Keras' in-place weights write left a resume state `--resume` could not load."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from train.trainer import HeldInterrupts


def test_a_ctrl_c_while_held_is_raised_at_release_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    held = HeldInterrupts()
    held.hold()
    os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here without the hold
    written = "whole"
    with pytest.raises(KeyboardInterrupt):
        held.release()
    assert written == "whole" and signal.getsignal(signal.SIGINT) is before
    held.release()  # released twice: nothing more to raise


def test_without_a_ctrl_c_release_only_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    held = HeldInterrupts()
    held.hold()
    held.hold()  # held twice: the handler to restore is still the one before the first
    assert signal.getsignal(signal.SIGINT) is not before
    held.release()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_ctrl_c_during_an_epochs_writes_stops_the_fit_after_them(tmp_path):
    keras = pytest.importorskip("keras")
    written = []

    class Writes(keras.callbacks.Callback):
        """Ctrl-C arrives in the middle of an epoch-end write of two parts."""

        def on_epoch_end(self, epoch, logs=None):
            (tmp_path / f"{epoch}.a").write_text("first half")
            os.kill(os.getpid(), signal.SIGINT)
            (tmp_path / f"{epoch}.b").write_text("second half")
            written.append(epoch)

    hold, release = HeldInterrupts().callbacks()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 3), np.float32), np.zeros(8, np.int64)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[hold, Writes(), release])
    assert written == [0] and (tmp_path / "0.b").read_text() == "second half"
    # Without the hold the same fit stops between the two halves.
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[Writes()])
    assert written == []
