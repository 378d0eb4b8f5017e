"""Prometheus metrics (prometheus_client, a registry per daemon) and the timing of the pipeline's stages."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

from edge_runtime import __version__
from edge_runtime.release.manifest import file_entry, find_manifest, load_manifest

# Haar on a 320-px frame takes milliseconds to tens of them; one int8 face about 3 ms on a Pi 4 core.
SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class Metrics:
    def __init__(self, camera: str):
        self.registry = CollectorRegistry()
        r, c = self.registry, ["camera"]

        def labelled(metric):
            return metric.labels(camera)

        self.camera_fps = labelled(Gauge("fer_edge_camera_fps", "Frames per second delivered by the camera", c,
                                         registry=r))
        self.processed_fps = labelled(Gauge("fer_edge_processed_fps", "Frames per second processed", c, registry=r))
        self.frames_captured = labelled(Counter("fer_edge_frames_captured", "Frames read from the camera", c,
                                                registry=r))
        self.frames_processed = labelled(Counter("fer_edge_frames_processed", "Frames processed", c, registry=r))
        self.frames_skipped = labelled(Counter("fer_edge_frames_skipped",
                                               "Frames replaced by a newer one before processing", c, registry=r))
        self.frames_unreadable = labelled(Counter("fer_edge_frames_unreadable",
                                                  "Images that could not be decoded and were skipped", c, registry=r))
        self.detection_seconds = labelled(Histogram("fer_edge_detection_seconds", "Face detector time per call", c,
                                                    buckets=SECONDS_BUCKETS, registry=r))
        self.inference_seconds = labelled(Histogram("fer_edge_inference_seconds",
                                                    "Expression classifier time per call (a batch of faces)", c,
                                                    buckets=SECONDS_BUCKETS, registry=r))
        self.faces = labelled(Gauge("fer_edge_faces", "Faces in the last processed frame", c, registry=r))
        # Its rate by emotion is the emotion mix over time (the Grafana dashboard's); seven labels, bounded.
        self.emotions = Counter("fer_edge_emotions", "Faces classified, by their (smoothed) emotion, per frame",
                                ["camera", "emotion"], registry=r)
        self.reconnects = labelled(Counter("fer_edge_camera_reconnects", "Camera reopened after a fault", c,
                                           registry=r))
        self.camera_up = labelled(Gauge("fer_edge_camera_up", "1 while the camera delivers frames", c, registry=r))
        self.events = Counter("fer_edge_events", "Face events by type", ["camera", "type"], registry=r)
        self.mqtt_connected = Gauge("fer_edge_mqtt_connected", "1 while connected to the MQTT broker", registry=r)
        self.mqtt_dropped = Counter("fer_edge_mqtt_dropped", "MQTT messages dropped while the broker was away",
                                    registry=r)
        # fer_edge_build_info{version, model, model_sha256} 1: which release and model run where (build_labels).
        self.build = Info("fer_edge_build", "The running release and model", registry=r)
        # process_resident_memory_bytes, process_cpu_seconds_total, open file descriptors, ...
        ProcessCollector(registry=r)
        self.camera = camera
        self._totals: dict[int, int] = {}

    def set_total(self, counter, total: int) -> None:
        """Bring a counter up to a total counted elsewhere (the capture thread counts without locks)."""
        delta = total - self._totals.get(id(counter), 0)
        if delta > 0:
            counter.inc(delta)
            self._totals[id(counter)] = total


def build_labels(model: Path) -> dict[str, str]:
    """The release's version when the model lies in an installed bundle (its manifest's), else fer-edge's;
    the model's file name and sha256."""
    manifest = find_manifest(model)
    version = load_manifest(manifest.read_bytes(), str(manifest))["version"] if manifest else __version__
    return {"version": str(version), "model": Path(model).name, "model_sha256": file_entry(Path(model))["sha256"]}


class RateMeter:
    """A running total and its rate per second over the last `window` seconds."""

    def __init__(self, window: float = 5.0, clock=time.monotonic):
        self.window, self.clock = window, clock
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque()

    def count(self, total: int | None = None) -> None:
        """One more (or the total counted elsewhere, now)."""
        self.total = self.total + 1 if total is None else total
        self._samples.append((self.clock(), self.total))

    def rate(self) -> float:
        now = self.clock()
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / max(1e-6, t1 - t0)
