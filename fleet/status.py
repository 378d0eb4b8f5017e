"""`fer-edge fleet status`: one line per camera, read from each daemon's HTTP API (with its token), all
devices at once, each within a timeout: /api/state for the camera, /metrics for the release and model."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
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


# /api/state is a few KB and /metrics tens of KB; a device answering far more is refused, not read to its end.
MAX_REPLY = 1 << 20


class _Refused(Exception):
    """The device answered, but not what a fer-edge daemon answers: one sentence for its row."""


def _get(device: Device, path: str, token: str | None, deadline: float) -> bytes:
    """GET /path within the device's own deadline (every byte, not each read) and MAX_REPLY bytes. No redirect is
    followed: the token goes to this device only (http.client never follows one)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no complete answer in time")
    conn = http.client.HTTPConnection(device.host, device.port, timeout=remaining)
    # The per-read timeout alone lets a device that drips its answer hold the command for ever: at the deadline
    # the socket is shut, which ends any read in progress.
    timer = threading.Timer(remaining, _shut, (conn,))
    timer.start()
    try:
        conn.request("GET", "/" + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        if response.status != 200:
            hint = (": check fer_edge_token_file" if response.status == 401 else
                    " (a redirect: not followed, the token is for this device only)" if 300 <= response.status < 400
                    else "")
            raise _Refused(f"{device.url}{path} answered {response.status} {response.reason}{hint}")
        body = response.read(MAX_REPLY + 1)
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise TimeoutError("no complete answer in time") from None
        raise OSError(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__) from None
    finally:
        timer.cancel()
        conn.close()
    if time.monotonic() >= deadline:
        raise TimeoutError("no complete answer in time")
    if len(body) > MAX_REPLY:
        raise _Refused(f"{device.url}{path} answered more than {MAX_REPLY >> 10} KiB: not a fer-edge daemon's answer")
    return body


def _shut(conn: http.client.HTTPConnection) -> None:
    with contextlib.suppress(OSError, AttributeError):
        conn.sock.shutdown(socket.SHUT_RDWR)


def read_status(device: Device, timeout: float = 3.0) -> DeviceStatus:
    """The device's row; whatever it answers (or fails to), never an exception: one bad device is one bad row."""
    deadline = time.monotonic() + timeout
    try:
        token = read_token(device)
        state_bytes = _get(device, "api/state", token, deadline)
        metrics_bytes = _get(device, "metrics", token, deadline)
    except _Refused as exc:
        return DeviceStatus(device.name, False, error=str(exc))
    except TimeoutError:
        return DeviceStatus(device.name, False, error=f"{device.url}: no complete answer within {timeout:g} s")
    except (OSError, RuntimeError) as exc:
        return DeviceStatus(device.name, False, error=f"{device.url}: {exc}")
    try:
        return _parse(device, state_bytes, metrics_bytes)
    except _Refused as exc:
        return DeviceStatus(device.name, True, error=f"{device.url}{exc}")


def _parse(device: Device, state_bytes: bytes, metrics_bytes: bytes) -> DeviceStatus:
    try:
        state = json.loads(state_bytes)
    except (ValueError, RecursionError):
        raise _Refused("api/state: not JSON: not a fer-edge daemon's answer") from None
    if not isinstance(state, dict):
        raise _Refused(f"api/state: a JSON {type(state).__name__}, not an object: not a fer-edge daemon's answer")
    faces, fps, camera = state.get("faces"), state.get("processed_fps"), state.get("camera_state")
    if faces is not None and not isinstance(faces, list):
        raise _Refused(f"api/state: faces is {faces!r:.40}, not a list")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float)):
        raise _Refused(f"api/state: processed_fps is {fps!r:.40}, not a number")
    if camera is not None and not isinstance(camera, str):
        raise _Refused(f"api/state: camera_state is {camera!r:.40}, not a text")
    try:
        build = next((s.labels for f in text_string_to_metric_families(metrics_bytes.decode()) for s in f.samples
                      if s.name == "fer_edge_build_info"), {})
    except Exception:  # noqa: BLE001 - a third-party parser on what any device sends: whatever it raises
        raise _Refused("metrics: not Prometheus text") from None
    online = camera == "online"
    return DeviceStatus(device.name, True, build.get("version"), build.get("model_sha256"), camera,
                        None if fps is None else float(fps), len(faces or []),
                        "" if online else str(state.get("reason") or "")[:200])


def fleet_status(devices: list[Device], timeout: float = 3.0, workers: int = 32) -> list[DeviceStatus]:
    """Every device's status, asked in parallel; in inventory order."""
    if not devices:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(devices))) as pool:
        return list(pool.map(lambda d: _row(d, timeout), devices))


def _row(device: Device, timeout: float) -> DeviceStatus:
    try:
        return read_status(device, timeout)
    except Exception as exc:  # noqa: BLE001 - one bad device is one bad row, whatever went wrong with it
        return DeviceStatus(device.name, False, error=f"{device.url}: {type(exc).__name__}: {exc}")


def status_table(rows: list[DeviceStatus]) -> str:
    def cell(value, fmt="{}"):
        return "-" if value is None else fmt.format(value)

    return columns(["DEVICE", "REACHABLE", "RELEASE", "MODEL SHA256", "CAMERA", "FPS", "FACES", "LAST ERROR"],
                   [[r.device, "yes" if r.reachable else "no", cell(r.version), cell(r.model_sha256 and
                     r.model_sha256[:12]), cell(r.camera), cell(r.fps, "{:.1f}"), cell(r.faces), r.error or "-"]
                    for r in rows])


def status_json(rows: list[DeviceStatus]) -> str:
    return "\n".join(json.dumps(asdict(r)) for r in rows)
