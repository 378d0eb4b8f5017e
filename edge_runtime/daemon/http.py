"""The daemon's HTTP server: aiohttp's low-level server on an event loop in a thread of its own.

- `/`: a preview page: the live annotated stream (MJPEG `<img>`) and the current emotions per face;
- `/stream.mjpeg`: that stream; frames are encoded only while someone watches;
- `/api/state`: the current state as JSON;
- `/healthz`: 200 while frames flow, 503 otherwise (no token needed: it tells nothing private);
- `/metrics`: Prometheus text format.
GET and HEAD (headers only) on each.

Loopback by default; bound elsewhere it needs the configured token, as `Authorization: Bearer
TOKEN` or `?token=TOKEN` (what the preview page's own links carry).

One thread serves every client, so clients that hold connections cost a socket, not a thread, and
are bounded (`http.*` in the config): a connection past `max_connections` takes the place of the oldest
one not in a request, or, when every one is in a request, gets a 503 and is closed;
a connection that sends no complete request for `idle_timeout` is closed (aiohttp's keep-alive
timer, which since 3.14.4 also runs before the first request); viewers past `max_viewers` get a
503; a viewer that reads nothing for `stall_timeout` is dropped. Each viewer gets the newest frame
when it has taken the last one (backpressure: a slow viewer sees fewer frames, nobody waits).
Requests whose `Host` is not this server's (DNS rebinding) are refused with 421.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from importlib import resources
from string import Template
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge_runtime.daemon.config import HttpConfig
from edge_runtime.daemon.http_guard import AccessLog, ServerLogFilter, host_refusal, secret_bytes

log = logging.getLogger("fer_edge.http")
# aiohttp's own messages, through a ServerLogFilter: a client's bad request is a debug line, no token.
server_log = logging.getLogger("fer_edge.http.server")
PAGE = Template(resources.files("edge_runtime.daemon").joinpath("preview.html").read_text(encoding="utf-8"))
BOUNDARY = "fer-edge-frame"
TIMEOUT = 2.0  # seconds to start or stop the server's loop (a stop cancels the viewers' requests)
# A stream viewer's kernel send buffer. Left to autotuning it grows to megabytes, which hides a viewer
# that stopped reading for many seconds (and pins that memory); this is still 25 frames of 640x480.
STREAM_SEND_BUFFER = 256 * 1024
# The event loop's own errors (an accept that finds no free file descriptor, ...): one line per 10 s at most.
LOOP_ERROR_EVERY = 10.0


class HttpServer:
    """Serves a daemon's state, preview and metrics from a background thread."""

    def __init__(self, config: HttpConfig, daemon):
        self.config = config
        self.daemon = daemon
        self.token = config.token.get_secret_value() if config.token else None
        self._log_filter = ServerLogFilter(self.token)
        server_log.addFilter(self._log_filter)
        self.socket = listen(config.host, config.port)  # now, so a taken port fails the start
        self.loop = asyncio.new_event_loop()
        self.stopping = False
        self.viewers = 0
        self.loop.set_exception_handler(self._loop_error)
        self._loop_errors = 0  # since the last one logged
        self._next_loop_error = 0.0
        self._thread = threading.Thread(target=self.loop.run_forever, name="http", daemon=True)
        self._runner: web.ServerRunner | None = None
        self._new_frame: asyncio.Event | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.socket.getsockname()[:2]

    @property
    def connections(self) -> int:
        """Connections open now (refused ones are not counted), asked of the loop that keeps them."""
        async def count() -> int:
            return len(self._runner.server.connections) if self._runner and self._runner.server else 0

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(TIMEOUT)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(TIMEOUT)
        self.daemon.preview.on_frame.append(self._frame_arrived)
        log.info("preview, state, health and metrics on %s", self.url)

    def stop(self) -> None:
        self.stopping = True
        if self._frame_arrived in self.daemon.preview.on_frame:
            self.daemon.preview.on_frame.remove(self._frame_arrived)
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(TIMEOUT + 1)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()
        self.socket.close()
        server_log.removeFilter(self._log_filter)

    async def _open(self) -> None:
        self._new_frame = asyncio.Event()
        server = BoundedServer(self._handle, limit=self.config.max_connections,
                               keepalive_timeout=self.config.idle_timeout, logger=server_log,
                               access_log_class=AccessLog, access_log=log)
        self._runner = web.ServerRunner(server, shutdown_timeout=TIMEOUT)
        await self._runner.setup()
        await web.SockSite(self._runner, self.socket).start()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """asyncio's error reports (a traceback each, by default), as one line at most every LOOP_ERROR_EVERY
        seconds with the count of those left out: a client churning connections cannot flood the log."""
        self._loop_errors += 1
        now = time.monotonic()
        if now < self._next_loop_error:
            return
        more, self._loop_errors = self._loop_errors - 1, 0
        self._next_loop_error = now + LOOP_ERROR_EVERY
        exc = context.get("exception")
        log.error("http: %s%s%s", context.get("message", "event loop error"), f": {exc!r}"[:300] if exc else "",
                  f" (and {more} more in the {LOOP_ERROR_EVERY:g} s before)" if more else "")

    async def _close(self) -> None:
        if self._new_frame is not None:
            self._new_frame.set()  # viewers see `stopping` and end
        if self._runner is not None:
            await self._runner.cleanup()

    def _frame_arrived(self) -> None:
        """From the processing thread: wake the viewers."""
        with contextlib.suppress(RuntimeError):  # the loop closed while the daemon was stopping
            self.loop.call_soon_threadsafe(self._wake_viewers)

    def _wake_viewers(self) -> None:
        self._new_frame.set()
        self._new_frame.clear()  # the woken stay woken; later waiters wait for the next frame

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        refusal = host_refusal(request, self.config)
        if refusal:
            return text(421, refusal)
        route = {"/": self.page, "/index.html": self.page, "/stream.mjpeg": self.stream, "/api/state": self.api_state,
                 "/healthz": self.healthz, "/metrics": self.metrics}.get(request.path)
        if route is None:
            return text(404, f"no such page: {request.path}\n")
        if request.method not in ("GET", "HEAD"):
            return text(405, f"{request.method} is not served: GET or HEAD\n", {"Allow": "GET, HEAD"})
        if route != self.healthz and not self.authorised(request):
            return text(401, "token required (Bearer header or ?token=)\n", {"WWW-Authenticate": "Bearer"})
        return await route(request)

    def authorised(self, request: web.BaseRequest) -> bool:
        if self.token is None:
            return True
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query.get("token", "")
        return hmac.compare_digest(secret_bytes(given), secret_bytes(self.token))

    async def page(self, request: web.BaseRequest) -> web.Response:
        query = f"?token={quote(self.token, safe='')}" if self.token else ""
        html = PAGE.safe_substitute(camera=self.daemon.config.camera.name, query=query)
        return body(200, html.encode(), "text/html; charset=utf-8")

    async def api_state(self, request: web.BaseRequest) -> web.Response:
        return body(200, (json.dumps(self.daemon.state.as_dict()) + "\n").encode(), "application/json")

    async def healthz(self, request: web.BaseRequest) -> web.Response:
        state, now = self.daemon.state, time.monotonic()
        healthy = state.healthy(now, self.config.healthy_within)
        age = None if state.last_frame is None else round(now - state.last_frame, 3)
        report = {"status": "ok" if healthy else "unhealthy", "camera_state": state.camera_state,
                  "reason": state.reason, "last_frame_age": age}
        return body(200 if healthy else 503, (json.dumps(report) + "\n").encode(), "application/json")

    async def metrics(self, request: web.BaseRequest) -> web.Response:
        return body(200, generate_latest(self.daemon.metrics.registry), CONTENT_TYPE_LATEST)

    async def stream(self, request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                               "Cache-Control": "no-store", "Server": "fer-edge"})
        if request.method == "HEAD":
            await response.prepare(request)
            return response
        if self.viewers >= self.config.max_viewers:
            return text(503, f"too many stream viewers: {self.viewers} watching, http.max_viewers is "
                             f"{self.config.max_viewers}; try again later\n", {"Retry-After": "10"})
        preview, peer, sent, started = self.daemon.preview, _peer(request), 0, time.monotonic()
        self.viewers += 1
        preview.watching(+1)
        try:
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
            await response.prepare(request)
            seq = 0
            while not self.stopping:
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError
                latest, jpeg = preview.latest()
                if latest == seq or jpeg is None:
                    await self._next_frame(timeout=1.0)
                    continue
                seq = latest
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                try:
                    await asyncio.wait_for(response.write(head.encode() + jpeg + b"\r\n"), self.config.stall_timeout)
                except asyncio.TimeoutError:
                    log.info("stream viewer %s dropped: read nothing for %g s (http.stall_timeout)", peer,
                             self.config.stall_timeout)
                    request.transport.abort()
                    break
                sent += 1
        except ConnectionError:
            log.info("stream viewer %s went away after %.1f s, %d frames", peer, time.monotonic() - started, sent)
        finally:
            self.viewers -= 1
            preview.watching(-1)
        return response

    async def _next_frame(self, timeout: float) -> None:
        # No frame within `timeout` (the camera is away): the caller looks at the connection and waits again.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._new_frame.wait(), timeout)


class BoundedServer(web.Server):
    """aiohttp's connection manager with a cap, so clients cannot run the daemon out of open files.

    At the cap, a new connection first takes the place of the oldest one that is not in a request (it
    sent nothing, half a request, or idles between requests): a flood of idle connections cannot keep
    /healthz from answering. Only when every connection is in a request does the new one get a 503 (a
    `Refusal`), and at most MAX_LINGERING refusals stay open at a time: past that, a refused connection
    is closed at once, so churn cannot pile up file descriptors outside the cap."""

    MAX_LINGERING = 16

    def __init__(self, handler, *, limit: int, **kwargs):
        super().__init__(handler, **kwargs)
        self.limit = limit
        self._opening = 0
        self.lingering = 0  # refused connections still being answered
        self.evicted = 0

    def __call__(self) -> asyncio.BaseProtocol:
        # A handler joins `connections` in its connection_made, which the loop calls next, right after
        # `_opened`: until then it counts as opening, so a burst of accepts cannot overshoot the cap.
        open_now = [h for h in self.connections if not getattr(h, "_force_close", False)]
        if len(open_now) + self._opening >= self.limit and not self._evict(open_now):
            return Refusal(self)
        self._opening += 1
        asyncio.get_running_loop().call_soon(self._opened)
        return super().__call__()

    def _evict(self, handlers: list) -> bool:
        """Close the oldest connection (`connections` keeps their order) that is not in a request."""
        for handler in handlers:
            if not getattr(handler, "_request_in_progress", True) and not getattr(handler, "_messages", True):
                handler.force_close()
                self.evicted += 1
                return True
        return False

    def _opened(self) -> None:
        self._opening -= 1


class Refusal(asyncio.Protocol):
    """A connection past the cap: a 503 and a half-close. The client's request is awaited (closing with it
    unread would reset the connection and lose the answer) for LINGER at most, and the connection closes
    as soon as it comes; past MAX_LINGERING such connections, a new one is closed at once, unanswered."""

    LINGER = 0.25

    def __init__(self, server: BoundedServer):
        self.server = server
        self.limit = server.limit
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        if self.server.lingering >= self.server.MAX_LINGERING:
            transport.abort()
            return
        self.server.lingering += 1
        self._transport = transport
        message = f"too many connections (http.max_connections is {self.limit}); try again later\n".encode()
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Connection: close\r\nRetry-After: 10\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(message), message))
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(self.LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.close()  # the request came (and is dropped): the answer is on its way, close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self.server.lingering -= 1
            self._transport = None
        if self._timer is not None:
            self._timer.cancel()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (an IPv4 or IPv6 address or a name; IPv4 first)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, *_, address = min(infos, key=lambda info: info[0] != socket.AF_INET)
        return socket.create_server(address[:2], family=family, backlog=128)
    except OSError as exc:
        raise OSError(f"http: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def body(status: int, data: bytes, content_type: str, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=data,
                        headers={"Content-Type": content_type, "Cache-Control": "no-store", "Server": "fer-edge",
                                 **(headers or {})})


def text(status: int, message: str, headers: dict | None = None) -> web.Response:
    # backslashreplace: a path or header echoed back may hold invalid UTF-8 (as surrogates).
    return body(status, message.encode("utf-8", "backslashreplace"), "text/plain; charset=utf-8", headers)


def _peer(request: web.BaseRequest) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else "?"
