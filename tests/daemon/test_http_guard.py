"""edge_runtime/daemon/http_guard.py against a real aiohttp server on loopback (no daemon, no model: fast
enough for mutation testing): the Host check (DNS rebinding), the token's redaction in the access log and
in aiohttp's own messages, and the bytes a token is compared as. The daemon's probes
(tests/security/test_http_probes.py) check the same through `fer-edge`'s server."""

from __future__ import annotations

import asyncio
import http.client
import logging
import re
import socket
import threading
import time

import pytest
from aiohttp import web

from edge_runtime.daemon.config import HttpConfig
from edge_runtime.daemon.http_guard import (
    REDACTED,
    WITHHELD,
    AccessLog,
    ServerLogFilter,
    host_refusal,
    redact,
    redacted_target,
    secret_bytes,
)
from tests.support import wait_until

TOKEN = "guard-token-0123456789"
log = logging.getLogger("fer_edge.test_guard")
server_log = logging.getLogger("fer_edge.test_guard.server")


class Served:
    """An aiohttp low-level server in a thread of its own whose handler answers 421 with host_refusal's text,
    or 200 with redacted_target's; aiohttp's messages go through a ServerLogFilter, access lines to AccessLog."""

    def __init__(self, config: HttpConfig, bind: str):
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.filter = ServerLogFilter(TOKEN)
        server_log.addFilter(self.filter)
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.socket = socket.create_server((bind, 0), family=family)
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(5)

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        self.last = request
        refusal = host_refusal(request, self.config)
        return web.Response(status=421 if refusal else 200, text=refusal or redacted_target(request))

    async def _open(self) -> None:
        self.runner = web.ServerRunner(web.Server(self._handle, logger=server_log, access_log_class=AccessLog,
                                                  access_log=log))
        await self.runner.setup()
        await web.SockSite(self.runner, self.socket).start()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        server_log.removeFilter(self.filter)

    def get(self, target: str, host: str | None, address: str = "127.0.0.1") -> tuple[int, str]:
        conn = http.client.HTTPConnection(address, self.port, timeout=5)
        try:
            conn.putrequest("GET", target, skip_host=True)
            if host is not None:
                conn.putheader("Host", host)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def raw(self, data: bytes, address: str = "127.0.0.1") -> bytes:
        with socket.create_connection((address, self.port), timeout=5) as s:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out


@pytest.fixture(scope="module")
def loopback():
    served = Served(HttpConfig(port=0, allowed_hosts=["Camera.Test"]), "127.0.0.1")
    yield served
    served.close()


@pytest.fixture(scope="module")
def wildcard():
    served = Served(HttpConfig(host="0.0.0.0", port=0, token=TOKEN), "0.0.0.0")
    yield served
    served.close()


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost:{port}", "127.0.0.1", "127.0.0.1:{port}",
                                  "[::1]", "[::1]:{port}", "camera.test", "CAMERA.TEST.:{port}", " camera.test ",
                                  "[::ffff:127.0.0.1]:{port}"])
def test_loopback_names_the_address_and_allowed_hosts_are_served(loopback, host):
    assert loopback.get("/", host.format(port=loopback.port)) == (200, "/")


@pytest.mark.parametrize("host", ["rebind.attacker.example", "localhost:{port}:1", "rebind.attacker.example:{port}",
                                  "10.0.0.1:{port}",
                                  "127.0.0.2", "localhost.attacker.example", "[::2]:{port}", "camera.test.evil",
                                  "[fe80::1%eth0]:{port}"])
def test_other_hosts_are_refused_with_the_setting_to_change(loopback, host):
    header = host.format(port=loopback.port)
    assert loopback.get("/", header) == (421, f"Host {header!r} is not served here: add it to "
                                              "http.allowed_hosts\n")


def test_a_missing_host_is_refused_and_a_long_one_is_quoted_in_part(loopback):
    answer = loopback.raw(b"GET / HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 421 ") and answer.endswith(b"\r\n\r\na Host header is required\n")
    long = "x" * 300 + ".example"
    assert loopback.get("/", long) == (421, f"Host {long[:100]!r} is not served here: add it to http.allowed_hosts\n")


@pytest.mark.parametrize("host, status", [("127.0.0.1:{port}", 200), ("localhost", 200), ("0.0.0.0", 200),
                                          ("[::ffff:7f00:1]", 200), ("10.0.0.1", 421), ("127.0.0.2", 421)])
def test_a_wildcard_bind_serves_the_address_reached_and_hints_at_it(wildcard, host, status):
    header = host.format(port=wildcard.port)
    got, text = wildcard.get("/", header)
    assert got == status
    if status == 421:
        assert text == (f"Host {header!r} is not served here: add it to http.allowed_hosts (or use the device's "
                        "address)\n")


def test_the_access_log_names_the_request_without_the_token(loopback, caplog):
    caplog.set_level(logging.DEBUG, log.name)
    target = f"/a%20b?token={TOKEN}&x=1+2&Token=other&tokens=kept"
    assert loopback.get(target, "localhost") == (200, "/a%20b?token=<redacted>&x=1+2&Token=<redacted>&tokens=kept")
    # aiohttp writes the access line after the response has gone out: wait for it.
    line = wait_until(lambda: next((r.getMessage() for r in caplog.records if r.name == log.name), None), 5,
                      "the access line", 0.01)
    assert line.startswith('127.0.0.1 "GET /a%20b?token=<redacted>&x=1+2&Token=<redacted>&tokens=kept" 200 ')
    # The bytes sent (headers and the 55-byte body), then the time in ms with one decimal.
    assert re.fullmatch(r'.*" 200 (\d+) \d+\.\d ms', line) and int(line.split()[-3]) > 55, line
    assert TOKEN not in caplog.text
    caplog.clear()
    caplog.set_level(logging.INFO, log.name)
    assert loopback.get("/plain", "localhost") == (200, "/plain")
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.name == log.name], "an access line without -v"


def test_a_malformed_request_is_one_debug_line_without_the_token(loopback, caplog):
    caplog.set_level(logging.DEBUG, server_log.name)
    answer = loopback.raw(f"GET /?to%6Ben={TOKEN} HTTP/1.1 junk\r\nHost: localhost\r\n\r\n".encode())
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    records = [r for r in caplog.records if r.name == server_log.name]
    assert len(records) == 1 and records[0].levelno == logging.DEBUG and records[0].levelname == "DEBUG"
    assert not records[0].exc_info and records[0].exc_text is None and records[0].args is None
    message = records[0].getMessage()
    assert message.startswith("Error handling request from 127.0.0.1: 400, message: Bad status line: ")
    assert f"to%6Ben={REDACTED} HTTP/1.1 junk" in message and "\n" not in message and TOKEN not in caplog.text
    caplog.clear()
    caplog.set_level(logging.INFO, server_log.name)
    loopback.raw(b"GET / HTTP/1.1 junk\r\nHost: localhost\r\n\r\n")
    assert not [r for r in caplog.records if r.name == server_log.name], "a client's bad request at INFO"


def test_the_filter_redacts_other_messages_and_their_tracebacks_too():
    record = None
    try:
        raise RuntimeError(f"failed at /?token={TOKEN}")
    except RuntimeError:
        import sys

        record = logging.LogRecord(server_log.name, logging.ERROR, __file__, 1, "handler said %s", (TOKEN,),
                                   sys.exc_info())
    assert ServerLogFilter(TOKEN).filter(record) is True
    assert record.levelno == logging.ERROR and record.msg == f"handler said {REDACTED}" and record.args is None
    assert record.exc_text.startswith("Traceback") and TOKEN not in record.exc_text
    assert f"failed at /?token={REDACTED}" in record.exc_text


@pytest.mark.parametrize("text, expected", [
    ("GET /?token=abc&x=1", f"GET /?token={REDACTED}&x=1"),
    ("GET /?TOKEN=abc def", f"GET /?TOKEN={REDACTED} def"),
    ("b'GET /?to%6Ben=abc\\x01 HTTP/1.1'", f"b'GET /?to%6Ben={REDACTED} HTTP/1.1'"),
    ("/?%74%6F%6B%65%6E%3Dabc", f"/?%74%6F%6B%65%6E%3D{REDACTED}"),
    ("a token: abc", "a token: abc"),
    ('token="abc"', f'token={REDACTED}"abc"'),
    (f"quoted {TOKEN} here", f"quoted {REDACTED} here"),
    (f"/x%{ord(TOKEN[0]):02X}{TOKEN[1:]}", WITHHELD),
    (f"/x{TOKEN[:5]}+{TOKEN[5:]}".replace("+", "%2B"), f"/x{TOKEN[:5]}%2B{TOKEN[5:]}"),
    ("no secret here", "no secret here"),
])
def test_redact(text, expected):
    assert redact(text, TOKEN) == expected


def test_redact_without_a_token_redacts_only_token_values():
    assert redact(f"/?token=abc {TOKEN}", None) == f"/?token={REDACTED} {TOKEN}"
    assert redact("", None) == "" and redact("plain", "") == "plain"


def test_secret_bytes_keep_invalid_utf8_distinct():
    assert secret_bytes("abc") == b"abc" and secret_bytes("é") == "é".encode()
    escaped = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert secret_bytes(escaped) != secret_bytes("\ufffd\ufffd") and len(secret_bytes(escaped)) == 6
    assert secret_bytes("\ud800") == b"\xed\xa0\x80"


@pytest.fixture(scope="module")
def named():
    """Bound on ::1, configured by a name (in mixed case) that is no loopback name."""
    served = Served(HttpConfig(host="Camera.Local", port=0, token=TOKEN), "::1")
    yield served
    served.close()


@pytest.mark.parametrize("host, status", [("camera.local", 200), ("CAMERA.LOCAL:{port}", 200), ("[::1]:{port}", 200),
                                          ("[::1%lo]:{port}", 200), ("localhost", 200), ("camera.local.evil", 421),
                                          ("[::2%lo]", 421)])
def test_the_configured_name_and_the_address_with_a_zone_are_served(named, host, status):
    header = host.format(port=named.port)
    assert named.get("/", header, address="::1")[0] == status


def test_the_access_line_gives_the_time_in_milliseconds(loopback, caplog):
    caplog.set_level(logging.DEBUG, log.name)
    loopback.get(f"/t?token={TOKEN}", "localhost")
    caplog.clear()
    AccessLog(log, "").log(loopback.last, web.Response(status=204), 0.25)
    assert caplog.records[-1].getMessage().endswith(' "GET /t?token=<redacted>" 204 0 250.0 ms')


def test_a_record_without_a_traceback_is_redacted_and_kept():
    record = logging.LogRecord(server_log.name, logging.WARNING, __file__, 1, "token %s at /?token=%s", (TOKEN, "x"),
                               None)
    assert ServerLogFilter(TOKEN).filter(record) is True
    assert (record.levelno, record.msg, record.exc_text) == (logging.WARNING, f"token {REDACTED} at /?token={REDACTED}",
                                                             None)


def test_a_malformed_request_line_is_cut_at_300_characters(loopback, caplog):
    caplog.set_level(logging.DEBUG, server_log.name)
    loopback.raw(("GET /" + "a" * 600 + " HTTP/1.1 junk\r\nHost: localhost\r\n\r\n").encode())
    message = wait_until(lambda: next((r.getMessage() for r in caplog.records if r.name == server_log.name), None), 5,
                         "the debug line", 0.01)
    prefix = "Error handling request from 127.0.0.1: "
    assert message.startswith(prefix + "400, message: Bad status line: ") and len(message) == len(prefix) + 300


def test_a_token_outside_ascii_is_withheld_however_it_is_encoded():
    token = "tökén-0123456789abcdef"
    encoded = "".join(f"%{b:02X}" for b in token.encode())
    assert redact(f"GET /x{encoded} HTTP/1.1", token) == WITHHELD
    assert redact(f"GET /{encoded[:9]}%{encoded[9:]} x", token) == f"GET /{encoded[:9]}%{encoded[9:]} x"
    # As a str's escapes and as aiohttp's bytes repr of a bad request line show it:
    assert redact(f"b'GET /x{token.encode('ascii', 'backslashreplace').decode()} x'", token) == f"b'GET /x{REDACTED} x'"
    assert redact(f"{str(f'GET /{token} x'.encode())}", token) == f"b'GET /{REDACTED} x'"
    assert redact("café: no token here", token) == "café: no token here"
