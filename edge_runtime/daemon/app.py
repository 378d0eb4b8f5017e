"""The daemon: capture thread -> processing loop (the edge_runtime Pipeline) -> events -> sinks,
with the HTTP server, metrics and systemd notifications around it.

The loop wakes at least four times a second, frames or not (and between frames at any `camera.fps`),
so the camera watchdog, the systemd watchdog ping, the stats and a stop request are never held up by a
silent camera or a slow processing rate; a loop stuck in a frame stops the pings.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from functools import partial

import cv2

from edge_runtime.annotate import draw_faces
from edge_runtime.daemon.capture import Capture, Captured
from edge_runtime.daemon.config import DaemonConfig
from edge_runtime.daemon.events import EventTracker
from edge_runtime.daemon.metrics import Metrics, RateMeter, build_labels
from edge_runtime.daemon.sinks import Sink
from edge_runtime.daemon.state import FaceState, Preview, State
from edge_runtime.daemon.systemd import Notifier
from edge_runtime.face_path import build_pipeline
from edge_runtime.sources import Source, open_source

log = logging.getLogger("fer_edge.daemon")
TICK = 0.25


class Daemon:
    def __init__(self, config: DaemonConfig, *, source_factory: Callable[[], Source] | None = None,
                 notifier: Notifier | None = None):
        self.config = config
        camera = config.camera
        self.metrics = Metrics(camera.name)
        self.pipeline = build_pipeline(config.detection, detector_timer=self.metrics.detection_seconds,
                                       classifier_timer=self.metrics.inference_seconds)
        classifier = self.pipeline.classifier
        self.metrics.build.info(build_labels(classifier.path))  # after the classifier's checks of the model file
        self.events = EventTracker(camera.name, classifier.labels)
        self.capture = Capture(source_factory or partial(open_source, camera.source), camera)
        self.notifier = notifier or Notifier()
        self.preview = Preview()
        self.state = State(camera.name)
        self.stop_requested = threading.Event()
        self._processed = RateMeter()
        self._captured = RateMeter()
        self._stream = 0
        self._next_preview = 0.0
        self.sinks: list[Sink] = []
        self.http = None
        try:
            self._open_outputs()
        except BaseException:
            self._close_outputs()
            raise
        # Per-frame face records cost a dict per face per frame: made only for a sink that asked for them.
        self._per_frame = any(getattr(s, "wants_faces", False) for s in self.sinks)

    def _open_outputs(self) -> None:
        if self.config.jsonl is not None:
            from edge_runtime.daemon.sinks.jsonl import JsonlSink

            self.sinks.append(JsonlSink(self.config.jsonl))
        if self.config.mqtt is not None:
            from edge_runtime.daemon.sinks.mqtt import MqttSink

            self.sinks.append(MqttSink(self.config.mqtt, self.config.camera.name, self.metrics))
        if self.config.http is not None:
            from edge_runtime.daemon.http import HttpServer

            self.http = HttpServer(self.config.http, self)

    def request_stop(self, *_args) -> None:
        """Safe from a signal handler: the loop finishes its frame and shuts down."""
        self.stop_requested.set()

    def run(self) -> int:
        """Until a stop request (or the end of a file source without loop): 0."""
        self.capture.start()
        if self.http is not None:
            self.http.start()
        self.notifier.ready(f"camera {self.config.camera.name}: {self.config.camera.source}")
        mqtt = self.config.mqtt
        stats_every = mqtt.stats_interval if mqtt is not None else 0
        next_stats = time.monotonic() + stats_every
        next_ping = time.monotonic()
        next_frame = 0.0  # with camera.fps: when the next frame may be taken
        try:
            while not self.stop_requested.is_set():
                started = time.monotonic()
                throttled = started < next_frame
                if throttled:
                    # A processing rate below the camera's: frames arriving meanwhile replace each other
                    # (skipped). Waited in ticks, so the watchdog ping and the stats keep their pace at any fps.
                    self.stop_requested.wait(min(TICK, next_frame - started))
                    item = None
                else:
                    item = self.capture.get(TICK)
                self.capture.poll()
                if item is not None:
                    # A change that came before this frame first: "online" precedes the faces of its first frame.
                    self._camera_changes(before=item.frame.index)
                    self._process(item)
                    if self.config.camera.fps:
                        next_frame = started + 1.0 / self.config.camera.fps
                elif not throttled:
                    # Only with no frame waiting: a file's end ("offline") must not reset the pipeline before
                    # the frames read ahead of it are processed.
                    self._camera_changes()
                now = time.monotonic()
                if self.notifier.watchdog_interval and now >= next_ping:
                    self.notifier.watchdog()
                    next_ping = now + self.notifier.watchdog_interval
                if stats_every and now >= next_stats:
                    self._emit("stats", self.stats())
                    next_stats = now + stats_every
                if item is None and not throttled and self.capture.finished:
                    log.info("end of %s", self.config.camera.source)
                    break
        finally:
            self.shutdown()
        return 0

    def _process(self, item: Captured) -> None:
        wall = time.time()
        if item.stream != self._stream:
            # A reopened camera or a replayed file: its faces are new faces.
            self._end_events(wall)
            self.pipeline.reset()
            self._stream = item.stream
        result = self.pipeline.process(item.frame)
        alive = [t.id for t in self.pipeline.tracker.tracks]
        for record in self.events.update(result.faces, alive, wall):
            self._emit("event", record)
        if result.faces and self._per_frame:
            camera = self.config.camera.name
            self._emit("faces", [{"type": "face", "camera": camera, **r}
                                 for r in result.json_records(self.pipeline.labels)])
        self._processed.count()
        m = self.metrics
        m.frames_processed.inc()
        m.faces.set(len(result.faces))
        for face in result.faces:
            m.emotions.labels(self.config.camera.name, face.emotion.label).inc()
        labels = self.pipeline.labels
        faces = tuple(FaceState(f.track, f.emotion.label, round(f.emotion.score, 4), f.box.as_list(),
                                f.emotion.as_dict(labels)) for f in result.faces)
        self._set_state(faces=faces, last_frame=time.monotonic(), time=wall)
        if self.preview.viewers and self.http is not None and time.monotonic() >= self._next_preview:
            self._next_preview = time.monotonic() + 1.0 / self.config.http.stream_fps
            annotated = draw_faces(item.frame.bgr.copy(), result.faces)
            ok, jpeg = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, self.config.http.jpeg_quality])
            if ok:
                self.preview.put(jpeg.tobytes())

    def _camera_changes(self, before: int | None = None) -> None:
        """Counters and rates from the capture thread, and its online/offline transitions (only those that came
        before frame number `before`, when given)."""
        capture, m = self.capture, self.metrics
        m.set_total(m.frames_captured, capture.captured)
        m.set_total(m.frames_skipped, capture.skipped)
        m.set_total(m.frames_unreadable, capture.unreadable)
        m.set_total(m.reconnects, capture.reconnects)
        self._captured.count(capture.captured)
        camera_fps, processed_fps = self._captured.rate(), self._processed.rate()
        m.camera_up.set(1 if capture.online else 0)
        m.camera_fps.set(camera_fps)
        m.processed_fps.set(processed_fps)
        self._set_state(camera_fps=camera_fps, processed_fps=processed_fps)
        while capture.changes and (before is None or capture.changes[0][3] <= before):
            self._camera_change(*capture.changes.popleft()[:3])

    def _camera_change(self, online: bool, reason: str, reconnects: int) -> None:
        """The camera went online or offline: publish it; faces end when the camera goes away."""
        wall = time.time()
        if not online:
            self._end_events(wall)
            self.pipeline.reset()
        state = "online" if online else "offline"
        self._set_state(camera_state=state, reason=reason, **({} if online else {"faces": ()}))
        self._emit("camera", {"type": "camera", "camera": self.config.camera.name, "state": state,
                              "reason": reason, "reconnects": reconnects, "time": round(wall, 3)})

    def _set_state(self, **changes) -> None:
        """Replace the shared snapshot; the sinks hear of it when what they publish changed."""
        c = self.capture
        new = dataclasses.replace(self.state, frames_skipped=c.skipped, reconnects=c.reconnects,
                                  frames_processed=self._processed.total, **changes)
        old = self.state
        changed = old.summary() | {"time": 0} != new.summary() | {"time": 0}
        if changed and "time" not in changes:
            # A change without a frame (the camera online or offline): stamped now, never with the frame
            # time of an earlier state (or 0.0, before the first frame).
            new = dataclasses.replace(new, time=time.time())
        self.state = new
        if changed:
            self._emit("state", new)

    def _end_events(self, wall: float) -> None:
        for record in self.events.end(None, wall):
            self._emit("event", record)

    def _emit(self, kind: str, payload) -> None:
        if kind == "event":
            self.metrics.events.labels(self.config.camera.name, payload["type"]).inc()
        for sink in self.sinks:
            try:
                getattr(sink, kind)(payload)
            except Exception:  # noqa: BLE001 - one failing output must not stop the camera or the others
                log.exception("%s output failed", type(sink).__name__)

    def stats(self) -> dict:
        s = self.state
        return {"camera": s.camera, "camera_state": s.camera_state, "camera_fps": round(s.camera_fps, 2),
                "processed_fps": round(s.processed_fps, 2), "frames_processed": s.frames_processed,
                "frames_skipped": s.frames_skipped, "reconnects": s.reconnects, "faces": len(s.faces)}

    def shutdown(self) -> None:
        """End open events, publish the camera offline, flush and close every output."""
        self.notifier.stopping()
        self.capture.stop()
        if self.state.camera_state == "online":
            self._camera_change(False, "stopped", self.capture.reconnects)
        self._end_events(time.time())
        self._close_outputs()
        log.info("stopped after %d frames (%d skipped, %d reconnects)", self._processed.total,
                 self.capture.skipped, self.capture.reconnects)

    def _close_outputs(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - close the others anyway
                log.exception("closing %s failed", type(sink).__name__)
        self.sinks = []
