"""The security probes reuse the release tests' fixtures (bundles of the shipped model, the loopback sshd)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("release_fixtures",
                                               Path(__file__).parents[1] / "release" / "conftest.py")
_release = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _release  # dataclasses look their module up there
_spec.loader.exec_module(_release)

own_wheel, make_bundle, shipped_int8 = _release.own_wheel, _release.make_bundle, _release.shipped_int8
device_python, unpack, sshd = _release.device_python, _release.unpack, _release.sshd
install_sh = _release.install_sh
