"""Per-face smoothing of class probabilities, with hysteresis on the label.

Every track has its own state: one face's expression must never leak into another's
(a window shared across faces is a known bug in other FER demos).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_runtime.classifier import Emotion


@dataclass
class _State:
    probabilities: np.ndarray
    label: int
    time: float


class EmaSmoother:
    """Exponential moving average of the probabilities per track, in time not frames.

    time_constant: seconds for an old observation's weight to fall to 1/e; frames that
        arrive late (a slow Pi, dropped frames) weigh more, so behaviour does not depend
        on the frame rate. 0 turns smoothing off.
    hysteresis: the shown label changes only when another class's smoothed probability
        beats it by this much, so a face between two expressions does not flicker.
    """

    def __init__(self, labels: Sequence[str], time_constant: float = 0.3, hysteresis: float = 0.1):
        if time_constant < 0 or not 0 <= hysteresis < 1:
            raise ValueError(f"time_constant must be >= 0 and hysteresis in [0, 1), got {time_constant}, {hysteresis}")
        self.labels = tuple(labels)
        self.time_constant = time_constant
        self.hysteresis = hysteresis
        self._states: dict[int, _State] = {}

    def update(self, track: int, probabilities: Sequence[float], time: float) -> Emotion:
        p = np.asarray(probabilities, dtype=np.float64)
        state = self._states.get(track)
        if state is None:
            state = self._states[track] = _State(p.copy(), int(np.argmax(p)), time)
        else:
            dt = max(0.0, time - state.time)
            alpha = 1.0 - math.exp(-dt / self.time_constant) if self.time_constant > 0 else 1.0
            state.probabilities += alpha * (p - state.probabilities)
            state.time = time
            top = int(np.argmax(state.probabilities))
            if state.probabilities[top] - state.probabilities[state.label] > self.hysteresis:
                state.label = top
        return self._emotion(state)

    def current(self, track: int) -> Emotion | None:
        """The smoothed emotion of `track` as it stands, without a new observation."""
        state = self._states.get(track)
        return None if state is None else self._emotion(state)

    def _emotion(self, state: _State) -> Emotion:
        sp = state.probabilities
        return Emotion(self.labels[state.label], float(sp[state.label]), tuple(float(v) for v in sp))

    def forget(self, tracks: Iterable[int]) -> None:
        for t in tracks:
            self._states.pop(t, None)

    def reset(self) -> None:
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)
