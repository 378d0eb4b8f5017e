"""The release an installed fer-edge runs from, found from the command itself.

install.sh puts fer-edge in PREFIX/venvs/KEY (shared by releases with the same wheels) and links it as
PREFIX/releases/VERSION/venv; PREFIX/current is the release in service. The package itself lies in the
venv's site-packages, where no model is, so a command with no --model asks this module for the model
of the release it was started from (PREFIX/current/venv/bin/fer-edge: current), else of PREFIX/current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_runtime.release.manifest import MANIFEST, find_manifest


def installed_release() -> Path | None:
    """The folder of the release this process runs from (its manifest.json is fer-edge's), or None."""
    started = find_manifest(Path(sys.argv[0]).absolute()) if sys.argv and sys.argv[0] else None
    if started is not None:
        return started.parent
    venv = Path(sys.prefix)
    if venv.parent.name == "venvs":
        current = venv.parent.parent / "current"
        if find_manifest(current / MANIFEST) == current / MANIFEST:
            return current
    return None


def installed_model() -> Path | None:
    """The CPU model the installed release's manifest lists first, or None outside an installed release."""
    release = installed_release()
    if release is None:
        return None
    models = json.loads((release / MANIFEST).read_text()).get("models") or []
    cpu = [m["file"] for m in models if isinstance(m, dict) and not m.get("edgetpu") and isinstance(m.get("file"), str)]
    return release / cpu[0] if cpu else None
