"""`fer-edge fleet status`: one line per camera, read from each daemon's HTTP API (with its token), all
devices at once, each within a timeout: /api/state for the camera, /metrics for the release and model."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from prometheus_client.parser import text_string_to_metric_families

from fleet.inventory import Device, read_token
from fleet.table import columns


@dataclass(frozen=True)
class DeviceStatus:
    device: str
    reachable: bool
    version: str | None = None
    model_sha256: str | None = None
    camera: str | None = None
    fps: float | None = None
    faces: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and self.camera == "online"


def _get(url: str, token: str | None, timeout: float) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        return response.read()


def read_status(device: Device, timeout: float = 3.0) -> DeviceStatus:
    try:
        token = read_token(device)
        state = json.loads(_get(device.url + "api/state", token, timeout))
        metrics = _get(device.url + "metrics", token, timeout).decode()
    except urllib.error.HTTPError as exc:
        hint = ": check fer_edge_token_file" if exc.code == 401 else ""
        return DeviceStatus(device.name, False, error=f"{exc.filename} answered {exc.code} {exc.reason}{hint}")
    except (OSError, ValueError, RuntimeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return DeviceStatus(device.name, False, error=f"{device.url}: {reason}")
    build = next((s.labels for f in text_string_to_metric_families(metrics) for s in f.samples
                  if s.name == "fer_edge_build_info"), {})
    online = state.get("camera_state") == "online"
    return DeviceStatus(device.name, True, build.get("version"), build.get("model_sha256"),
                        state.get("camera_state"), state.get("processed_fps"), len(state.get("faces") or []),
                        "" if online else str(state.get("reason") or ""))


def fleet_status(devices: list[Device], timeout: float = 3.0, workers: int = 32) -> list[DeviceStatus]:
    """Every device's status, asked in parallel; in inventory order."""
    if not devices:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(devices))) as pool:
        return list(pool.map(lambda d: read_status(d, timeout), devices))


def status_table(rows: list[DeviceStatus]) -> str:
    def cell(value, fmt="{}"):
        return "-" if value is None else fmt.format(value)

    return columns(["DEVICE", "REACHABLE", "RELEASE", "MODEL SHA256", "CAMERA", "FPS", "FACES", "LAST ERROR"],
                   [[r.device, "yes" if r.reachable else "no", cell(r.version), cell(r.model_sha256 and
                     r.model_sha256[:12]), cell(r.camera), cell(r.fps, "{:.1f}"), cell(r.faces), r.error or "-"]
                    for r in rows])


def status_json(rows: list[DeviceStatus]) -> str:
    return "\n".join(json.dumps(asdict(r)) for r in rows)
