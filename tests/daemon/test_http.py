"""The HTTP side: Prometheus metrics that parse, state JSON, the token off loopback, and the preview
page in a real headless Chromium (a screenshot is kept as a test artifact)."""

import json
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import SAMPLE, http_get, need_binary, wait_for

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPECTED = {"fer_edge_camera_fps": "gauge", "fer_edge_processed_fps": "gauge", "fer_edge_frames_skipped": "counter",
            "fer_edge_detection_seconds": "histogram", "fer_edge_inference_seconds": "histogram",
            "fer_edge_faces": "gauge", "fer_edge_camera_reconnects": "counter", "fer_edge_camera_up": "gauge",
            "fer_edge_mqtt_connected": "gauge", "fer_edge_frames_processed": "counter"}
TOKEN = "t0ken-of-16-chars-or-more"


@pytest.fixture
def looping(start_daemon):
    """The daemon on the looping sample video, HTTP on a free loopback port, frames flowing."""
    running = start_daemon({"camera": {"name": "sample", "source": str(SAMPLE), "loop": True},
                            "jsonl": None, "http": {"port": 0}})
    wait_for(lambda: running.daemon.state.frames_processed > 20 and running.daemon.state.faces, 15, "faces")
    return running


def test_metrics_parse_with_prometheus_client(looping):
    status, body = http_get(looping.url + "metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {name: families[name].type for name in EXPECTED} == EXPECTED

    def value(name, sample=None):
        return sum(s.value for s in families[name].samples
                   if s.name == (sample or name) and s.labels.get("camera", "sample") == "sample")

    assert value("fer_edge_camera_up") == 1 and value("fer_edge_faces") >= 1
    assert value("fer_edge_frames_processed", "fer_edge_frames_processed_total") > 20
    assert value("fer_edge_detection_seconds", "fer_edge_detection_seconds_count") > 0
    assert value("fer_edge_inference_seconds", "fer_edge_inference_seconds_count") > 0
    assert value("fer_edge_camera_fps") > 5 and value("fer_edge_processed_fps") > 5
    assert value("fer_edge_mqtt_connected") == 0
    assert value("process_resident_memory_bytes") > 10e6
    assert looping.stop() == 0


def test_state_and_health(looping):
    status, body = http_get(looping.url + "api/state")
    state = json.loads(body)
    assert status == 200 and state["camera"] == "sample" and state["camera_state"] == "online"
    assert state["faces"] and {"track", "label", "score", "box", "probabilities"} <= set(state["faces"][0])
    assert state["dominant"] in {f["label"] for f in state["faces"]}
    assert http_get(looping.url + "healthz")[0] == 200
    assert http_get(looping.url + "nothing")[0] == 404
    assert looping.stop() == 0


def test_token_required_off_loopback(start_daemon):
    running = start_daemon({"camera": {"source": str(SAMPLE), "loop": True}, "jsonl": None,
                            "http": {"host": "0.0.0.0", "port": 0, "token": TOKEN}})
    port = running.daemon.http.address[1]
    base = f"http://127.0.0.1:{port}/"
    for path in ("", "api/state", "metrics", "stream.mjpeg"):
        assert http_get(base + path)[0] == 401, path
    assert http_get(base + "api/state", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert http_get(base + "api/state", {"Authorization": "Bearer wrong"})[0] == 401
    status, page = http_get(f"{base}?token={TOKEN}")
    # The page's own links carry the token, so the stream and state requests it makes are allowed.
    assert status == 200 and f'src="stream.mjpeg?token={TOKEN}"'.encode() in page
    # Health checks need no token: they tell nothing private.
    assert http_get(base + "healthz")[0] in (200, 503)
    assert running.stop() == 0


def chromium(*args: str, profile, timeout: float = 60) -> subprocess.CompletedProcess:
    binary = need_binary("chromium")
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=4000",
                           *args], capture_output=True, text=True, timeout=timeout)


def test_preview_page_in_headless_chromium(looping, tmp_path, request):
    url = looping.url
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's script writes the stream image's natural size once frames have arrived.
    assert 'id="stream-size" data-width="640" data-height="480"' in dom.stdout, dom.stdout
    assert '<span id="camera" class="online">online</span>' in dom.stdout
    assert "<td>#" in dom.stdout  # a row per face, from /api/state
    # A screenshot as an artifact of this test (pytest keeps its tmp folders of the last runs).
    shot = tmp_path / "preview.png"
    result = chromium("--window-size=800,760", f"--screenshot={shot}", url, profile=tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
    print(f"preview screenshot: {shot}")
    assert looping.stop() == 0
