"""`fer-edge fleet prometheus`: what it writes passes promtool, its alert rules fire on the cases they name
(and stay quiet otherwise, promtool's rule unit tests), and a real Prometheus scrapes two real daemons with it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from edge_runtime import __version__

DASHBOARD = Path(__file__).resolve().parents[2] / "fleet" / "grafana" / "fer-edge.json"



def fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", "fleet", *args], capture_output=True,
                          text=True, timeout=120)


def inventory(path, ports: dict[str, int], token_file=None, extra: str = ""):
    lines = [f"{name} ansible_host=127.0.0.1 fer_edge_http_port={port}" for name, port in ports.items()]
    token = f"fer_edge_token_file={token_file}\n" if token_file else ""
    path.write_text("[fer_edge]\n" + "\n".join(lines) + f"\n\n[fer_edge:vars]\n{token}{extra}")
    return path


@pytest.fixture
def written(tools, tmp_path, token_file):
    tools.need("ansible-inventory")
    inv = inventory(tmp_path / "cameras.ini", {"porch": 9101, "hall": 9102, "yard": 9103}, token_file)
    result = fleet("prometheus", "-i", str(inv), "--out", str(tmp_path / "prom"), "--fps-floor", "3")
    assert result.returncode == 0, result.stderr
    return tmp_path / "prom"


def test_written_config_and_rules_pass_promtool(tools, written, token_file):
    promtool = tools.need("promtool")
    config = yaml.safe_load((written / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    # Relative to the written config, as Prometheus resolves it (and the README says).
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "../fleet.token"}
    assert job["file_sd_configs"][0]["files"] == ["fer-edge-targets.json"]
    targets = json.loads((written / "fer-edge-targets.json").read_text())
    assert [(t["targets"], t["labels"]["device"]) for t in targets] == [
        (["127.0.0.1:9101"], "porch"), (["127.0.0.1:9102"], "hall"), (["127.0.0.1:9103"], "yard")]
    check = subprocess.run([promtool, "check", "config", str(written / "prometheus.yml")], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "6 rules found" in check.stdout + check.stderr
    rules = subprocess.run([promtool, "check", "rules", str(written / "fer-edge-alerts.yml")], capture_output=True,
                           text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr




def test_alert_rules_fire_on_what_they_name_and_only_there(tools, written):
    promtool = tools.need("promtool")
    shutil.copy(Path(__file__).with_name("alert_rules_test.yml"), written)
    result = subprocess.run([promtool, "test", "rules", "alert_rules_test.yml"], cwd=written, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_inventory_mistakes_are_one_sentence(tools, tmp_path, token_file):
    tools.need("ansible-inventory")
    other = tmp_path / "other.token"
    other.write_text("x")
    inv = inventory(tmp_path / "two-tokens.ini", {"porch": 9101, "hall": 9102}, extra="\n[hallway]\nhall\n")
    inv.write_text(inv.read_text().replace("hall ansible_host", f"hall fer_edge_token_file={other} ansible_host")
                   .replace("porch ansible_host", f"porch fer_edge_token_file={token_file} ansible_host"))
    result = fleet("prometheus", "-i", str(inv), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.startswith("fer-edge fleet: the hosts name different fer_edge_token_file values")
    assert len(result.stderr.strip().splitlines()) == 1
    no_group = tmp_path / "no-group.ini"
    no_group.write_text("[cameras]\nporch\n")
    result = fleet("status", "-i", str(no_group))
    assert result.returncode == 1 and "no group [fer_edge]" in result.stderr and "Traceback" not in result.stderr
    bad_port = inventory(tmp_path / "bad-port.ini", {"porch": "http"})
    result = fleet("status", "-i", str(bad_port))
    assert "host porch: fer_edge_http_port must be a port number, got 'http'" in result.stderr


def query(prometheus: str, promql: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)["data"]["result"]


def test_a_real_prometheus_scrapes_two_daemons(tools, tmp_path, token_file, daemon):
    binary = tools.need("prometheus")
    tools.need("ansible-inventory")
    ports = {"porch": tools.free_port(), "hall": tools.free_port()}
    for name, port in ports.items():
        daemon(name, port, token_file)
    inv = inventory(tmp_path / "cameras.ini", ports, token_file)
    # fleet status with the token, and with a wrong one (a 401, said with what to check).
    status = fleet("status", "-i", str(inv), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = [json.loads(line) for line in status.stdout.splitlines()]
    assert [(r["device"], r["reachable"], r["version"], r["camera"]) for r in rows] == [
        (name, True, __version__, "online") for name in ports]
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token")
    refused = fleet("status", "-i", str(inventory(tmp_path / "wrong.ini", ports, wrong)))
    assert refused.returncode == 1
    assert f"http://127.0.0.1:{ports['porch']}/api/state answered 401 Unauthorized: check fer_edge_token_file" \
        in refused.stdout
    written = tmp_path / "prom"
    result = fleet("prometheus", "-i", str(inv), "--out", str(written), "--scrape-interval", "1s")
    assert result.returncode == 0, result.stderr
    web = tools.free_port()
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen([binary, f"--config.file={written / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
                              stdout=log, stderr=log)
    api = f"http://127.0.0.1:{web}"
    try:
        started = time.monotonic()
        tools.wait_until(lambda: tools.answers_200(f"{api}/-/ready") or server.poll() is not None, 30,
                         "Prometheus to start")
        assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
        up = tools.wait_until(lambda: _by_device(query(api, 'up{job="fer-edge"}'), lambda v: v == 1, len(ports)), 45,
                        "both daemons up in Prometheus", interval=0.5)
        fps = tools.wait_until(lambda: _by_device(query(api, 'fer_edge_processed_fps{job="fer-edge"} > 0'),
                                            lambda v: v > 0, len(ports)), 30, "fps > 0 for both", interval=0.5)
        print(f"Prometheus saw both daemons up after {time.monotonic() - started:.1f} s; fps {fps}")
        assert set(up) == set(fps) == set(ports)
        builds = query(api, 'fer_edge_build_info{job="fer-edge"}')
        sha = hashlib.sha256(tools.model.read_bytes()).hexdigest()
        assert {(b["metric"]["device"], b["metric"]["version"], b["metric"]["model"], b["metric"]["model_sha256"])
                for b in builds} == {(name, __version__, tools.model.name, sha) for name in ports}
        assert not query(api, 'ALERTS{alertstate="firing"}')
        # Every query of the Grafana dashboard runs and finds both devices' data.
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$device", ".*").replace("$__rate_interval", "15s")
                found = tools.wait_until(lambda e=expr: query(api, e), 20, f"data for panel {panel['title']!r}: {expr}")
                assert {r["metric"].get("device") for r in found} <= set(ports) | {None}, found
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _by_device(results: list[dict], good, want: int) -> dict[str, float] | None:
    """{device: value} when `want` devices answer and every value is good, else None (keep waiting)."""
    values = {r["metric"]["device"]: float(r["value"][1]) for r in results}
    return values if len(values) == want and all(good(v) for v in values.values()) else None
