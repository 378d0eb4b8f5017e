"""A stand-in that times some of an object's methods and is the object for everything else."""

from __future__ import annotations

from collections.abc import Iterable


class Timed:
    """`target` with each call of the methods in `methods` observed by `timer` (anything with a `.time()` context
    manager: a prometheus_client Histogram). Every other attribute is the target's own, so a method the target
    overrides is never replaced by a base class's default (the daemon's detector once lost its verifier so)."""

    def __init__(self, target, timer, methods: Iterable[str]):
        self._target, self._timer = target, timer
        for name in methods:
            method = getattr(target, name)  # AttributeError now, not at the first frame

            def timed(*args, _method=method, **kwargs):
                with self._timer.time():
                    return _method(*args, **kwargs)

            setattr(self, name, timed)

    @property
    def wrapped(self):
        return self._target

    def __getattr__(self, name):
        if name in ("_target", "_timer"):  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self._target, name)
