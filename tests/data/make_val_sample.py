"""Regenerates tests/data/val_sample: a stratified sample of FER2013 PublicTest (val) faces.

The shipped models are checked on it in CI as a guard against preprocessing and label
drift. Run from the repository root: python tests/data/make_val_sample.py ../shared/fer2013/val
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

PER_CLASS = 50  # disgust has only 56 val faces; 50 each keeps the sample stratified and small
SEED = 0


def main(val_root: str, out: str = "tests/data/val_sample") -> None:
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    for class_dir in sorted(p for p in Path(val_root).iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"))
        chosen = sorted(rng.choice(len(files), min(PER_CLASS, len(files)), replace=False))
        (out_dir / class_dir.name).mkdir(parents=True)
        for i in chosen:
            shutil.copy2(files[i], out_dir / class_dir.name / files[i].name)


if __name__ == "__main__":
    main(*sys.argv[1:])
