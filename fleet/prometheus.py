"""`fer-edge fleet prometheus`: a Prometheus scrape config for the inventory's cameras (file_sd targets, the
daemons' bearer token from a file) and the fleet's alert rules.

    OUT/prometheus.yml          scrape job `fer-edge`; paths in it are relative to it, so OUT can move
    OUT/fer-edge-targets.json   file_sd: one target per camera, labelled device=<inventory name>
    OUT/fer-edge-alerts.yml     the alert rules (check them with `promtool check rules`)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from fleet.inventory import Device, FleetError

JOB = "fer-edge"
TARGETS = "fer-edge-targets.json"
ALERTS = "fer-edge-alerts.yml"


@dataclass(frozen=True)
class AlertOptions:
    fps_floor: float = 2.0  # processed frames per second below which a camera is too slow to follow faces
    memory_growth_mb_per_hour: float = 20.0  # a resident size that keeps growing this fast is a leak
    reconnects: int = 3  # camera reopenings within 30 minutes


def targets(devices: list[Device]) -> list[dict]:
    return [{"targets": [d.target], "labels": {"device": d.name}} for d in devices]


def scrape_config(devices: list[Device], token_file: Path | None, scrape_interval: str = "15s",
                  folder: Path | None = None) -> dict:
    """The scrape config; with `folder` (where it is written), the token file's path is relative to it, as
    Prometheus resolves a relative credentials_file: from the config file's folder."""
    files = {d.token_file for d in devices}
    if token_file is None and len(files) > 1:
        raise FleetError("the hosts name different fer_edge_token_file values, and a scrape job takes one bearer "
                         "token file: give one fleet-wide token with --token-file")
    token_file = token_file or next(iter(files), None)
    job: dict = {"job_name": JOB, "metrics_path": "/metrics", "scheme": "http",
                 "file_sd_configs": [{"files": [TARGETS], "refresh_interval": "1m"}]}
    if token_file is not None:
        path = os.path.relpath(Path(token_file).resolve(), folder.resolve()) if folder else str(token_file)
        job["authorization"] = {"type": "Bearer", "credentials_file": path}
    return {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [ALERTS], "scrape_configs": [job]}


def alert_rules(opts: AlertOptions = AlertOptions()) -> dict:
    job = f'job="{JOB}"'
    build = f"fer_edge_build_info{{{job}}}"
    by_model = f"count by (model_sha256) ({build})"
    rules = [
        _alert("FerEdgeDown", f"up{{{job}}} == 0", "5m",
               "{{ $labels.device }} has not answered a scrape for 5 minutes (daemon down, device off or the "
               "token wrong)"),
        _alert("FerEdgeCameraDown", f"fer_edge_camera_up{{{job}}} == 0", "5m",
               "{{ $labels.device }}: camera {{ $labels.camera }} has delivered no frame for 5 minutes"),
        _alert("FerEdgeSlow", f"fer_edge_processed_fps{{{job}}} < {opts.fps_floor} "
               f"and on (instance, camera) fer_edge_camera_up{{{job}}} == 1", "10m",
               f"{{{{ $labels.device }}}} processes {{{{ $value | humanize }}}} frames/s, below the floor of "
               f"{opts.fps_floor} for 10 minutes"),
        _alert("FerEdgeReconnects", f"increase(fer_edge_camera_reconnects_total{{{job}}}[30m]) > {opts.reconnects}",
               "0m", "{{ $labels.device }}: the camera was reopened {{ $value | humanize }} times in 30 minutes"),
        # The minority model(s): devices whose model sha256 fewer devices run than the most common one.
        _alert("FerEdgeModelDiffers", f"{build} and on (model_sha256) "
               f"({by_model} < on () group_left () max({by_model}))", "15m",
               "{{ $labels.device }} runs model {{ $labels.model }} ({{ $labels.model_sha256 }}), "
               "not the one most of the fleet runs"),
        _alert("FerEdgeMemoryGrowing", f"deriv(process_resident_memory_bytes{{{job}}}[1h]) * 3600 > "
               f"{opts.memory_growth_mb_per_hour * 1e6:.0f}", "1h",
               "{{ $labels.device }}: resident memory grows by {{ $value | humanize1024 }}B per hour"),
    ]
    return {"groups": [{"name": "fer-edge", "rules": rules}]}


def _alert(name: str, expr: str, duration: str, summary: str) -> dict:
    return {"alert": name, "expr": expr, "for": duration, "labels": {"severity": "warning"},
            "annotations": {"summary": summary}}


def write_prometheus(devices: list[Device], out: Path, token_file: Path | None = None,
                     scrape_interval: str = "15s", alerts: AlertOptions = AlertOptions()) -> list[Path]:
    if not devices:
        raise FleetError("no cameras in the inventory: nothing to scrape")
    config = scrape_config(devices, token_file, scrape_interval, out)  # a bad inventory writes nothing
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "prometheus.yml", out / TARGETS, out / ALERTS]
    written[0].write_text(yaml.safe_dump(config, sort_keys=False))
    written[1].write_text(json.dumps(targets(devices), indent=1) + "\n")
    written[2].write_text(yaml.safe_dump(alert_rules(alerts), sort_keys=False, width=1000))
    return written
