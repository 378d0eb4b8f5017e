"""MQTT output (paho-mqtt, the `[mqtt]` extra), laid out like Frigate's:

- `<prefix>/available`: `online` / `offline`, retained, with `offline` as the last will;
- `<prefix>/<camera>/events`: JSON face events (new / update / end);
- `<prefix>/<camera>/state`: retained JSON (camera state, faces present, dominant emotion or null without
  a face, and `time`: the wall-clock time of the frame, or of the change, it describes);
- `<prefix>/<camera>/camera`: retained JSON, the camera's last online/offline change and its reason;
- `<prefix>/<camera>/stats`: JSON statistics on an interval;
- Home Assistant discovery under `<discovery_prefix>/...`, so sensors appear without configuration.

paho's network thread connects and reconnects with backoff; publishing never blocks the camera
loop. While the broker is away, events wait in a bounded buffer (the oldest dropped and counted)
and only the newest retained state is kept.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import deque

from edge_runtime import __version__
from edge_runtime.daemon.config import MqttConfig
from edge_runtime.daemon.sinks import Sink
from edge_runtime.daemon.state import State

log = logging.getLogger("fer_edge.mqtt")


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise ImportError(f"MQTT output needs paho-mqtt: pip install 'fer-edge[mqtt]' ({exc})") from exc
    return mqtt


class MqttSink(Sink):
    def __init__(self, config: MqttConfig, camera: str, metrics):
        mqtt = _paho()
        # `camera_name`, not `camera`: that name is the Sink.camera call the daemon makes on every change.
        self.config, self.camera_name, self.metrics = config, camera, metrics
        prefix = config.topic_prefix
        self.available = f"{prefix}/available"
        self.topics = {name: f"{prefix}/{camera}/{name}" for name in ("events", "state", "stats", "camera")}
        self._lock = threading.Lock()
        self._buffer: deque[tuple[str, str]] = deque(maxlen=config.buffer)
        self._retained: dict[str, str] = {}
        self.connected = False
        self.dropped = 0
        client_id = config.client_id or f"fer-edge-{socket.gethostname()}-{camera}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.will_set(self.available, "offline", qos=1, retain=True)
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            self.client.username_pw_set(config.username, password)
        self.client.reconnect_delay_set(config.reconnect_min, config.reconnect_max)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._success = mqtt.MQTT_ERR_SUCCESS
        # connect_async + loop_start: the first connection, and every reconnection, happen in paho's thread.
        self.client.connect_async(config.host, config.port, config.keepalive)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%s refused the connection: %s", self.config.host, self.config.port,
                        reason_code)
            return
        log.info("MQTT connected to %s:%s", self.config.host, self.config.port)
        with self._lock:
            self.connected = True
            self.metrics.mqtt_connected.set(1)
            client.publish(self.available, "online", qos=1, retain=True)
            if self.config.discovery:
                for topic, payload in self._discovery().items():
                    client.publish(topic, json.dumps(payload), qos=1, retain=True)
            for topic, payload in self._retained.items():
                client.publish(topic, payload, qos=self.config.qos, retain=True)
            while self._buffer:
                topic, payload = self._buffer.popleft()
                client.publish(topic, payload, qos=self.config.qos)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            if self.connected:
                log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.config.host, self.config.port,
                            reason_code)
            self.connected = False
            self.metrics.mqtt_connected.set(0)

    def _send(self, topic: str, payload: dict, retain: bool = False) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        with self._lock:
            if retain:
                self._retained[topic] = text
            if self.connected:
                info = self.client.publish(topic, text, qos=self.config.qos, retain=retain)
                if info.rc == self._success:
                    return
            if retain:
                return  # the newest retained value goes out on connect; older ones do not matter
            if len(self._buffer) == self._buffer.maxlen:
                # A full deque drops its oldest on append (with buffer 0, the new message itself).
                self.dropped += 1
                self.metrics.mqtt_dropped.inc()
            self._buffer.append((topic, text))

    def event(self, record: dict) -> None:
        self._send(self.topics["events"], record)

    def state(self, state: State) -> None:
        self._send(self.topics["state"], state.summary(), retain=True)

    def camera(self, record: dict) -> None:
        self._send(self.topics["camera"], record, retain=True)

    def stats(self, stats: dict) -> None:
        self._send(self.topics["stats"], stats)

    def close(self, timeout: float = 1.0) -> None:
        """Publish offline (retained), give it `timeout` seconds to leave, then disconnect."""
        with self._lock:
            info = self.client.publish(self.available, "offline", qos=1, retain=True) if self.connected else None
        if info is not None:
            try:
                info.wait_for_publish(timeout)
            except RuntimeError as exc:
                log.warning("MQTT: offline not published: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
        self.metrics.mqtt_connected.set(0)

    def _discovery(self) -> dict[str, dict]:
        """Home Assistant MQTT discovery configs (retained): dominant emotion, face count, camera connectivity."""
        node = f"fer_edge_{self.camera_name}"
        state = self.topics["state"]
        common = {"state_topic": state, "availability_topic": self.available, "device": {
            "identifiers": [node], "name": f"fer-edge {self.camera_name}", "manufacturer": "fer-edge",
            "model": "fer-edge camera daemon", "sw_version": __version__}}
        prefix = self.config.discovery_prefix
        return {
            f"{prefix}/sensor/{node}/emotion/config": {
                **common, "name": "Emotion", "unique_id": f"{node}_emotion", "icon": "mdi:emoticon-outline",
                # No face: `dominant` is null, which renders as "None": what Home Assistant shows as unknown.
                "value_template": "{{ value_json.dominant }}", "json_attributes_topic": state},
            f"{prefix}/sensor/{node}/faces/config": {
                **common, "name": "Faces", "unique_id": f"{node}_faces", "icon": "mdi:face-recognition",
                "value_template": "{{ value_json.faces }}", "state_class": "measurement"},
            f"{prefix}/binary_sensor/{node}/camera/config": {
                **common, "name": "Camera", "unique_id": f"{node}_camera", "device_class": "connectivity",
                "value_template": "{{ 'ON' if value_json.camera_state == 'online' else 'OFF' }}"},
        }
