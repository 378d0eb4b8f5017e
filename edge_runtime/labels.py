"""The one label table: FER2013 classes in the Kaggle order."""

from __future__ import annotations

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)

# Folder and file names seen in public FER2013 mirrors and other FER sets.
SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}


def label_index(name: str) -> int:
    """Index of a class name or synonym (case-insensitive); ValueError names the unknown name."""
    key = name.strip().lower()
    key = SYNONYMS.get(key, key)
    try:
        return LABELS.index(key)
    except ValueError:
        known = ", ".join(LABELS)
        raise ValueError(f"unknown emotion class {name!r}; expected one of {known} or a synonym") from None
