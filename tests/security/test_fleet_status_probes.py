"""`fer-edge fleet status` against devices that misbehave (issue 24, N28-N31): real HTTP servers on loopback,
each answering one way. One bad device is one bad row with one sentence; the healthy ones are still shown; each
device has a deadline for its whole answer; what is read is capped; the token never follows a redirect."""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time

import pytest

from fleet.inventory import Device
from fleet.status import MAX_REPLY, fleet_status

STATE = b'{"camera_state": "online", "processed_fps": 9.5, "faces": [{"track": 1}], "reason": null}'
METRICS = (b'# TYPE fer_edge_build_info gauge\n'
           b'fer_edge_build_info{version="1.0.0",model="fer_cnn_int8",model_sha256="ab12"} 1.0\n')


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ", 2)[1].decode()
        self.server.seen.append((path, head.decode("latin-1")))
        with contextlib.suppress(OSError):  # the client hung up: what a capped or timed-out reader does
            self.server.answer(self.request, path)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer, self.seen, self.sent = answer, [], 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def device(self, name: str, token_file=None) -> Device:
        return Device(name, "127.0.0.1", self.server_address[1], token_file)


def reply(sock, body: bytes, status: str = "200 OK", extra: str = "") -> None:
    sock.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode()
                 + body)


def daemon_like(state: bytes = STATE, metrics: bytes = METRICS):
    return lambda sock, path: reply(sock, state if path == "/api/state" else metrics)


@pytest.fixture
def servers():
    started = []

    def start(answer) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def token(tmp_path):
    path = tmp_path / "fleet.token"
    path.write_text("s3cret-fleet-token\n")
    return path


def test_one_bad_device_is_one_bad_row_and_the_healthy_ones_are_shown(servers, token):
    healthy = servers(daemon_like())
    odd = {"list": servers(daemon_like(state=b"[]")),
           "faces": servers(daemon_like(state=b'{"camera_state": "online", "faces": 3}')),
           "fps": servers(daemon_like(state=b'{"camera_state": "online", "processed_fps": "fast"}')),
           "metrics": servers(daemon_like(metrics=b'fer_edge_build_info{version="1.0.0" 1\n\x00{{{')),
           "json": servers(daemon_like(state=b"<html>hello</html>"))}
    rows = fleet_status([healthy.device("good", token)] + [s.device(name, token) for name, s in odd.items()],
                        timeout=3)
    by = {r.device: r for r in rows}
    assert [r.device for r in rows] == ["good", *odd]
    assert by["good"].ok and (by["good"].version, by["good"].faces, by["good"].fps) == ("1.0.0", 1, 9.5)
    assert "a JSON list, not an object" in by["list"].error
    assert "faces is 3, not a list" in by["faces"].error
    assert "processed_fps is 'fast', not a number" in by["fps"].error
    assert "metrics: not Prometheus text" in by["metrics"].error
    assert "api/state: not JSON" in by["json"].error
    for name in odd:
        assert not by[name].ok and by[name].error.startswith("http://127.0.0.1:") and "\n" not in by[name].error


def test_a_redirect_is_not_followed_and_the_token_stays_with_the_device(servers, token):
    elsewhere = servers(daemon_like())
    redirecting = servers(lambda sock, path: reply(
        sock, b"", "302 Found", f"Location: http://127.0.0.1:{elsewhere.server_address[1]}{path}\r\n"))
    (row,) = fleet_status([redirecting.device("porch", token)], timeout=3)
    assert not row.ok and "answered 302 Found (a redirect: not followed" in row.error
    assert elsewhere.seen == []  # not even asked, let alone with the token
    assert "Authorization: Bearer s3cret-fleet-token" in redirecting.seen[0][1]


def test_a_device_that_drips_its_answer_gets_its_deadline_for_the_whole_answer(servers, token):
    def drip(sock, path):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(60):  # a byte every 0.3 s, each read well within any per-read timeout
            sock.sendall(b" ")
            time.sleep(0.3)

    slow, good = servers(drip), servers(daemon_like())
    rows, started = [], time.monotonic()
    worker = threading.Thread(target=lambda: rows.extend(fleet_status([slow.device("slow", token),
                                                                       good.device("good", token)], timeout=1.5)),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "fleet status still waits for the dripping device"
    assert time.monotonic() - started < 4
    assert rows[0].error == f"{slow.device('slow').url}: no complete answer within 1.5 s" and rows[1].ok


def test_a_huge_answer_is_capped_not_read(servers, token):
    def flood(sock, path):
        size = 200 << 20
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        block = b" " * (1 << 20)
        for _ in range(size >> 20):
            sock.sendall(block)
            big.sent += len(block)

    big = servers(flood)
    (row,) = fleet_status([big.device("big", token)], timeout=20)
    assert f"answered more than {MAX_REPLY >> 10} KiB: not a fer-edge daemon's answer" in row.error
    assert big.sent < 32 << 20  # what loopback buffers took before the reader hung up, not the 200 MB
