"""Regenerates convert/val_sample: a stratified sample of FER2013 PublicTest (val) faces
(each class in its val proportion).

The shipped models are checked on it in CI as a guard against preprocessing and label
drift. Run from the repository root: python tests/data/make_val_sample.py ../shared/fer2013/val
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

TOTAL = 350  # stratified: each class in its val proportion, so accuracy here tracks val accuracy
MIN_PER_CLASS = 6  # disgust is 1.6 % of val; keep enough of it to notice a broken label
SEED = 0


def main(val_root: str, out: str = "convert/val_sample") -> None:
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    classes = {d: sorted(d.glob("*.jpg")) for d in sorted(p for p in Path(val_root).iterdir() if p.is_dir())}
    total = sum(len(files) for files in classes.values())
    for class_dir, files in classes.items():
        n = min(len(files), max(MIN_PER_CLASS, round(TOTAL * len(files) / total)))
        chosen = sorted(rng.choice(len(files), n, replace=False))
        (out_dir / class_dir.name).mkdir(parents=True)
        for i in chosen:
            shutil.copy2(files[i], out_dir / class_dir.name / files[i].name)


if __name__ == "__main__":
    main(*sys.argv[1:])
