"""The one base of fer-edge's user-facing errors, and the leaf errors that several modules share.

Standard library only and importing nothing of the project, so any module (the manifest verifier, which a
device runs from the bundled wheel before anything is installed, included) can import it without a circle.
"""

from __future__ import annotations


class FerEdgeError(Exception):
    """What the user did wrong (or what is wrong with their input), said in one sentence.

    Every command catches this one class and prints the message; the subclasses also keep the standard
    exception they always derived from (ValueError, RuntimeError), so `except ValueError` still catches them."""


class ModelError(FerEdgeError, ValueError):
    """The model file is missing, corrupt, or not what the runtime expects."""


class EdgeTpuError(FerEdgeError, RuntimeError):
    """The Edge TPU runtime or device is not usable."""


class DetectorError(FerEdgeError, ValueError):
    """The detector cannot be built (missing or unreadable cascade, bad options)."""
