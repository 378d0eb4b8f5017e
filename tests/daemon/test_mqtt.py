"""MQTT against a real mosquitto on loopback, seen by a paho subscriber: events, retained state and
availability, Home Assistant discovery, the last will on SIGKILL, a broker restart mid-run, and the
bounded buffer while the broker is away."""

import json
import signal
import subprocess
import sys
import time

from edge_runtime.daemon.config import MqttConfig
from edge_runtime.daemon.metrics import Metrics
from edge_runtime.daemon.sinks.mqtt import MqttSink

from .conftest import SAMPLE, Subscriber, wait_for


def mqtt_config(tmp_path, port: int, name: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"camera:\n  name: {name}\n  source: {SAMPLE}\n  loop: true\nhttp: null\njsonl: null\n"
                    f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  keepalive: 5\n  reconnect_min: 0.2\n"
                    "  reconnect_max: 0.5\n  stats_interval: 1\n")
    return path


def test_events_state_discovery_and_last_will_on_sigkill(tmp_path, mosquitto, spawn, model):
    sub = Subscriber(mosquitto.port, "fer-edge/#", "homeassistant/#")
    proc = spawn(["--config", str(mqtt_config(tmp_path, mosquitto.port, "porch")), "--model", str(model)])
    try:
        wait_for(lambda: len(sub.on("fer-edge/porch/events")) >= 3, 30, "three events")
        events = [json.loads(p) for p in sub.on("fer-edge/porch/events")]
        assert {e["type"] for e in events} >= {"new"} and all(e["camera"] == "porch" for e in events)
        assert sub.on("fer-edge/available")[-1] == "online"
        state = wait_for(lambda: [json.loads(p) for p in sub.on("fer-edge/porch/state") if json.loads(p)["faces"]],
                         10, "a state with faces")[-1]
        assert state["camera_state"] == "online" and state["dominant"] is not None
        wait_for(lambda: sub.on("fer-edge/porch/stats"), 5, "stats")
        discovery = json.loads(sub.on("homeassistant/sensor/fer_edge_porch/emotion/config")[-1])
        assert discovery["state_topic"] == "fer-edge/porch/state"
        assert discovery["availability_topic"] == "fer-edge/available"
        assert discovery["unique_id"] == "fer_edge_porch_emotion"
        assert sub.on("homeassistant/binary_sensor/fer_edge_porch/camera/config")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        wait_for(lambda: sub.on("fer-edge/available")[-1] == "offline", 10, "the last will")
    finally:
        sub.close()
    # A new subscriber gets the will as a retained message, and the last state too.
    late = Subscriber(mosquitto.port, "fer-edge/available", "fer-edge/porch/state")
    try:
        wait_for(lambda: late.on("fer-edge/available") == ["offline"], 5, "the retained will")
        assert all(retained for _, _, retained in late.messages)
        assert late.on("fer-edge/porch/state")
    finally:
        late.close()


def test_broker_restart_mid_run(tmp_path, mosquitto, spawn, model):
    proc = spawn(["--config", str(mqtt_config(tmp_path, mosquitto.port, "hall")), "--model", str(model)])
    sub = Subscriber(mosquitto.port, "fer-edge/#")
    wait_for(lambda: sub.on("fer-edge/hall/events"), 30, "events")
    sub.close()
    mosquitto.stop()
    down = time.time()
    # The sample video replays every 3 s: its faces end and begin again while the broker is away.
    time.sleep(3.5)
    up = time.time()
    mosquitto.start()
    sub = Subscriber(mosquitto.port, "fer-edge/#")
    try:
        # No persistence: only a reconnected daemon can have said "online" on the new broker.
        wait_for(lambda: "online" in sub.on("fer-edge/available"), 10, "the daemon to reconnect")
        buffered = lambda: [e for e in map(json.loads, sub.on("fer-edge/hall/events"))  # noqa: E731
                            if down < e["frame_time"] < up]
        wait_for(buffered, 10, "events from the outage, delivered from the buffer")
        wait_for(lambda: any(json.loads(e)["frame_time"] > up for e in sub.on("fer-edge/hall/events")), 10,
                 "new events after the restart")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        wait_for(lambda: sub.on("fer-edge/available")[-1] == "offline", 5, "offline on a clean stop")
    finally:
        sub.close()


def test_buffer_keeps_the_newest_and_counts_the_dropped(mosquitto):
    mosquitto.stop()
    metrics = Metrics("buf")
    # The first connection fails at once; the next try comes 1.5 s later, after the subscriber is in place.
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=mosquitto.port, buffer=3, reconnect_min=1.5,
                               reconnect_max=1.5, discovery=False), "buf", metrics)
    try:
        started = time.monotonic()
        for i in range(5):
            sink.event({"type": "new", "n": i})
        assert time.monotonic() - started < 0.1, "publishing must never wait for the broker"
        assert sink.dropped == 2
        assert metrics.registry.get_sample_value("fer_edge_mqtt_dropped_total") == 2
        mosquitto.start()
        sub = Subscriber(mosquitto.port, "fer-edge/buf/events")
        assert not sink.connected
        wait_for(lambda: len(sub.on("fer-edge/buf/events")) == 3, 10, "the buffered events")
        # The oldest two were dropped; the rest arrive in order once the broker is back.
        assert [json.loads(p)["n"] for p in sub.on("fer-edge/buf/events")] == [2, 3, 4]
        assert metrics.registry.get_sample_value("fer_edge_mqtt_connected") == 1
        sub.close()
    finally:
        sink.close()


def test_without_paho_the_error_says_what_to_install(model):
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'paho':\n"
        "            raise ImportError('No module named paho')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from edge_runtime.cli import main\n"
        f"sys.exit(main(['run', '--source', {str(SAMPLE)!r}, '--model', {str(model)!r}, '--mqtt', '127.0.0.1',"
        " '--http', 'off', '--jsonl', 'off']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "MQTT output needs paho-mqtt: pip install 'fer-edge[mqtt]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_camera_online_and_offline_reach_the_broker(mosquitto, start_daemon, sample_frames, caplog):
    """The sink's `camera` call (every online/offline change) publishes, instead of failing on the camera
    name: the camera goes offline on a read error, comes back, and each change arrives on the broker."""
    from .conftest import Script

    sub = Subscriber(mosquitto.port, "fer-edge/door/camera")
    script = Script(sample_frames, [{"then": "fail", "frames": 5}, {"then": "play"}])
    running = start_daemon({"camera": {"name": "door", "watchdog": {"backoff_min": 0.05, "backoff_max": 0.1}},
                            "jsonl": None, "http": None,
                            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "discovery": False}}, script)
    try:
        states = lambda: [json.loads(p)["state"] for p in sub.on("fer-edge/door/camera")]  # noqa: E731
        wait_for(lambda: states()[-2:] == ["offline", "online"], 15, "offline then online again")
        first = json.loads(sub.on("fer-edge/door/camera")[0])
        assert first["camera"] == "door" and first["state"] == "online"
        offline = next(json.loads(p) for p in sub.on("fer-edge/door/camera") if json.loads(p)["state"] == "offline")
        assert "device unplugged" in offline["reason"]
        assert running.stop() == 0
        wait_for(lambda: states()[-1] == "offline", 5, "offline on a clean stop")
        assert json.loads(sub.on("fer-edge/door/camera")[-1])["reason"] == "stopped"
    finally:
        sub.close()
    assert not [r for r in caplog.records if "output failed" in r.getMessage()]


def home_assistant_reads(config: dict, payload: str) -> str | None:
    """What a Home Assistant MQTT sensor shows for `payload` on its state topic: its value_template rendered
    by Jinja2 with `value_json` (as HA does), and the rendered text "None" shown as unknown (None here)."""
    import jinja2

    rendered = jinja2.Environment().from_string(config["value_template"]).render(value_json=json.loads(payload))
    return None if rendered == "None" else rendered


def test_home_assistant_follows_the_state_and_shows_no_face_as_unknown(tmp_path, mosquitto, spawn, model):
    """What a real Home Assistant showed (issue 24): it accepted the three discovery configs and followed the
    state, but with no face showed the word "none" (only the rendered `None` is unknown), and the first state
    after connecting carried "time": 0.0. Every state now carries the wall-clock time it describes."""
    sub = Subscriber(mosquitto.port, "fer-edge/#", "homeassistant/#")
    started = time.time()
    proc = spawn(["--config", str(mqtt_config(tmp_path, mosquitto.port, "den")), "--model", str(model)])
    try:
        wait_for(lambda: any(json.loads(p)["faces"] for p in sub.on("fer-edge/den/state")), 30, "a state with faces")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        wait_for(lambda: json.loads(sub.on("fer-edge/den/state")[-1])["camera_state"] == "offline", 5, "offline")
    finally:
        sub.close()
    configs = {topic: json.loads(payload) for topic, payload, _ in sub.messages if topic.startswith("homeassistant/")}
    emotion = configs["homeassistant/sensor/fer_edge_den/emotion/config"]
    faces = configs["homeassistant/sensor/fer_edge_den/faces/config"]
    camera = configs["homeassistant/binary_sensor/fer_edge_den/camera/config"]
    assert len(configs) == 3
    for config in configs.values():
        assert config["state_topic"] == "fer-edge/den/state" and config["availability_topic"] == "fer-edge/available"
        assert config["unique_id"].startswith("fer_edge_den_") and config["device"]["identifiers"] == ["fer_edge_den"]
    states = sub.on("fer-edge/den/state")
    first = json.loads(states[0])
    assert first["faces"] == 0 and started <= first["time"] <= time.time(), first
    times = [json.loads(p)["time"] for p in states]
    assert times == sorted(times) and min(times) >= started
    labels = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    for payload in states:
        state = json.loads(payload)
        shown = home_assistant_reads(emotion, payload)
        assert (shown in labels) if state["faces"] else (shown is None), (payload, shown)
        assert home_assistant_reads(faces, payload) == str(state["faces"])
        assert home_assistant_reads(camera, payload) == ("ON" if state["camera_state"] == "online" else "OFF")
    assert home_assistant_reads(emotion, states[-1]) is None and home_assistant_reads(camera, states[-1]) == "OFF"
