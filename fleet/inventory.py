"""The cameras of an Ansible inventory (any format Ansible reads: INI, YAML, a script), through
`ansible-inventory --list`, with where each daemon's HTTP API answers.

Host variables (all optional):
  fer_edge_http_host   the address the daemon's HTTP API is reached at (default: ansible_host, else the name)
  fer_edge_http_port   its port (default 8080, the daemon's default)
  fer_edge_token_file  a file on this machine holding the daemon's http.token (relative: to the inventory)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import FerEdgeError
from fleet import GROUP


class FleetError(FerEdgeError, RuntimeError):
    """A fleet command cannot go on: one sentence for the user."""


@dataclass(frozen=True)
class Device:
    name: str
    host: str
    port: int
    token_file: Path | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def target(self) -> str:
        """HOST:PORT, as Prometheus scrapes it."""
        return self.url.removeprefix("http://").rstrip("/")


def ansible_tool(name: str) -> str:
    """An Ansible command from the [fleet] extra: beside this Python first (a venv not activated), then PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FleetError(f"{name} not found: install Ansible with `pip install 'fer-edge[fleet]'` (ansible-core)")
    return found


# Third-party warnings that tell the user of `fer-edge fleet` nothing (ansible-core 2.19 imports cryptography's DSA,
# which cryptography 46+ deprecates): kept out of Ansible's output, whatever else PYTHONWARNINGS says.
QUIET_WARNINGS = ("ignore:DSA is deprecated",)


def ansible_environ(extra: dict | None = None) -> dict:
    """The environment for an Ansible subprocess: this one, with `extra` and the warnings above filtered."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), *QUIET_WARNINGS]))
    return env


def load_inventory(inventory: Path, limit: str | None = None, group: str = GROUP) -> list[Device]:
    """The hosts of `group` in the inventory (with --limit applied), in inventory order."""
    if not inventory.exists():
        raise FleetError(f"{inventory}: inventory not found")
    cmd = [ansible_tool("ansible-inventory"), "-i", str(inventory), "--list"] + (["--limit", limit] if limit else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_environ())
    if proc.returncode:
        raise FleetError(f"{inventory}: ansible-inventory failed: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    if group not in data:
        raise FleetError(f"{inventory}: no group [{group}]: put the cameras in a group named {group}")
    hostvars = data.get("_meta", {}).get("hostvars", {})
    base = inventory.resolve().parent if inventory.is_file() else inventory.resolve()
    return [_device(name, hostvars.get(name, {}), base, inventory) for name in _hosts(data, group)]


def _hosts(data: dict, group: str) -> list[str]:
    found = list(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        found += [h for h in _hosts(data, child) if h not in found]
    return found


def _device(name: str, hostvars: dict, base: Path, inventory: Path) -> Device:
    port = hostvars.get("fer_edge_http_port", 8080)
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except (TypeError, ValueError):
        raise FleetError(f"{inventory}: host {name}: fer_edge_http_port must be a port number, "
                         f"got {port!r}") from None
    token = hostvars.get("fer_edge_token_file")
    token_file = (base / Path(str(token)).expanduser()) if token else None
    host = str(hostvars.get("fer_edge_http_host") or hostvars.get("ansible_host") or name)
    return Device(name, host, port, token_file)


def read_token(device: Device) -> str | None:
    if device.token_file is None:
        return None
    try:
        return device.token_file.read_text().strip()
    except OSError as exc:
        raise FleetError(f"host {device.name}: cannot read fer_edge_token_file {device.token_file}: "
                         f"{exc.strerror}") from None
