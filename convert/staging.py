"""Write outputs into a hidden folder beside their destination, then rename them into place.

A conversion writes several files (model, metadata, Edge TPU build) and checks them before
they count; if anything fails on the way, the folder is removed and nothing half-written is
left where a user or the bundle would pick it up. Renames within one filesystem are atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class Staging:
    """with Staging(dest) as st: write st.path(name)...; st.publish(name, ...) renames into dest."""

    def __init__(self, dest: str | os.PathLike):
        self.dest = Path(dest)
        self.dir: Path | None = None

    def __enter__(self) -> Staging:
        self.dest.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(dir=self.dest, prefix=".fer-edge-staging-"))
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, *names: str) -> list[Path]:
        """Move staged files to dest (keeping only their file names); returns the final paths."""
        moved = []
        for name in names:
            final = self.dest / Path(name).name
            os.replace(self.dir / name, final)
            moved.append(final)
        return moved
