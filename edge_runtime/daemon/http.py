"""The daemon's HTTP server (stdlib ThreadingHTTPServer, a thread per client):

- `/`: a preview page: the live annotated stream (MJPEG `<img>`) and the current emotions per face;
- `/stream.mjpeg`: that stream; frames are encoded only while someone watches;
- `/api/state`: the current state as JSON;
- `/healthz`: 200 while frames flow, 503 otherwise (no token needed: it tells nothing private);
- `/metrics`: Prometheus text format.

Loopback by default; bound elsewhere it needs the configured token, as `Authorization: Bearer
TOKEN` or `?token=TOKEN` (what the preview page's own links carry).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from string import Template
from urllib.parse import parse_qs, quote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge_runtime.daemon.config import HttpConfig

log = logging.getLogger("fer_edge.http")
PAGE = Template(resources.files("edge_runtime.daemon").joinpath("preview.html").read_text(encoding="utf-8"))
BOUNDARY = "fer-edge-frame"


class HttpServer:
    """Serves a daemon's state, preview and metrics from a background thread."""

    def __init__(self, config: HttpConfig, daemon):
        self.config = config
        self.daemon = daemon
        self.token = config.token.get_secret_value() if config.token else None
        try:
            self.server = ThreadingHTTPServer((config.host, config.port), _handler(self))
        except OSError as exc:
            raise OSError(f"http: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
        self.server.daemon_threads = True
        self.stopping = False
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("preview, state, health and metrics on %s", self.url)

    def stop(self) -> None:
        self.stopping = True
        self.daemon.preview.close()
        self.server.shutdown()
        self.server.server_close()


def _handler(http: HttpServer) -> type[BaseHTTPRequestHandler]:
    daemon = http.daemon

    class Handler(BaseHTTPRequestHandler):
        server_version = "fer-edge"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            url = urlsplit(self.path)
            route = {"/": self.page, "/index.html": self.page, "/stream.mjpeg": self.stream,
                     "/api/state": self.api_state, "/healthz": self.healthz, "/metrics": self.metrics}.get(url.path)
            if route is None:
                return self.send_text(HTTPStatus.NOT_FOUND, f"no such page: {url.path}\n")
            if route != self.healthz and not self.authorised(url.query):
                return self.send_text(HTTPStatus.UNAUTHORIZED, "token required (Bearer header or ?token=)\n",
                                      {"WWW-Authenticate": "Bearer"})
            route()

        def authorised(self, query: str) -> bool:
            if http.token is None:
                return True
            given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            given = given or parse_qs(query).get("token", [""])[0]
            return hmac.compare_digest(given.encode(), http.token.encode())

        def send_body(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def send_text(self, status: int, text: str, headers: dict | None = None) -> None:
            self.send_body(status, text.encode(), "text/plain; charset=utf-8", headers)

        def send_json(self, status: int, obj) -> None:
            self.send_body(status, (json.dumps(obj) + "\n").encode(), "application/json")

        def page(self) -> None:
            query = f"?token={quote(http.token, safe='')}" if http.token else ""
            html = PAGE.safe_substitute(camera=daemon.config.camera.name, query=query)
            self.send_body(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")

        def api_state(self) -> None:
            self.send_json(HTTPStatus.OK, daemon.state.as_dict())

        def healthz(self) -> None:
            state, now = daemon.state, time.monotonic()
            healthy = state.healthy(now, http.config.healthy_within)
            age = None if state.last_frame is None else round(now - state.last_frame, 3)
            self.send_json(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, {
                "status": "ok" if healthy else "unhealthy", "camera_state": state.camera_state,
                "reason": state.reason, "last_frame_age": age})

        def metrics(self) -> None:
            self.send_body(HTTPStatus.OK, generate_latest(daemon.metrics.registry), CONTENT_TYPE_LATEST)

        def stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            preview, seq = daemon.preview, 0
            preview.watching(+1)
            try:
                while not http.stopping:
                    seq, jpeg = preview.next(seq, timeout=1.0)
                    if jpeg is None:
                        continue
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer went away
            finally:
                preview.watching(-1)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
