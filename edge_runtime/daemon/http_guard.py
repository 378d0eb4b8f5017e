"""What the HTTP server checks and hides: the `Host` a request names (DNS rebinding), and the token
in anything it logs."""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import unquote, unquote_plus, urlencode

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from edge_runtime.daemon.config import HttpConfig, is_loopback

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# `token=` however a client spells it: any letter (and the `=`) may be percent-encoded (`to%6Ben=`), any case.
_TOKEN_KEY = "".join(f"(?:{c}|%{ord(c):02x})" for c in "token") + "(?:=|%3d)"
TOKEN_VALUE = re.compile(rf"({_TOKEN_KEY})[^&\s'\"]*", re.IGNORECASE)
WITHHELD = "(the text of this message held the token: not logged)"
REDACTED = "<redacted>"


def host_refusal(request: BaseRequest, config: HttpConfig) -> str | None:
    """Why a request's Host is not served here, or None when it is.

    A page on an attacker's name whose DNS answer switches to this device's address (DNS rebinding)
    is same-origin with its own name, so the browser sends that name: only the address the client
    connected to (the bound one, or any local one on a wildcard bind), the loopback names on
    loopback, the bound name and `http.allowed_hosts` are served."""
    header = request.headers.get("Host")
    if not header:
        return "a Host header is required\n"
    name = _host_name(header)
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    local = _address(sockname[0]) if sockname else None
    if name in config.allowed_hosts or name == config.host.lower():
        return None
    if local is not None and (_address(name) == local or (local.is_loopback and name in LOOPBACK_NAMES)):
        return None
    hint = "" if is_loopback(config.host) else " (or use the device's address)"
    return f"Host {header[:100]!r} is not served here: add it to http.allowed_hosts{hint}\n"


def _host_name(header: str) -> str:
    """`name`, `name:port`, `[v6]` or `[v6]:port` -> the name or address, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return (header.rpartition(":")[0] if ":" in header else header).rstrip(".")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `text` is (an IPv4-mapped IPv6 address as IPv4), or None for a name."""
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def redacted_target(request: BaseRequest) -> str:
    """The request's path and query with every token value replaced, percent-encoded (one log line)."""
    query = urlencode([(key, REDACTED if key.lower() == "token" else value) for key, value in request.query.items()],
                      safe="<>")
    return request.rel_url.raw_path + (f"?{query}" if query else "")


class AccessLog(AbstractAccessLogger):
    """One debug line per request, without the token (it is a password)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.debug('%s "%s %s" %s %s %.1f ms', request.remote, request.method, redacted_target(request),
                          response.status, response.body_length, 1000 * time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


class ServerLogFilter(logging.Filter):
    """aiohttp's own messages: a client's malformed request, which it logs as an ERROR with a
    traceback, is one debug line (clients cannot flood the log); `token=` values (however encoded)
    and the token itself (a bad request line is quoted) are redacted."""

    def __init__(self, token: str | None):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            record.msg = f"{record.getMessage()}: {' '.join(str(exc).split())[:300]}"
            record.args, record.exc_info, record.exc_text = None, None, None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True

    def redact(self, text: str) -> str:
        return redact(text, self.token)


def redact(text: str, token: str | None) -> str:
    """`text` with every `token=` value replaced, however percent-encoded, and the token itself replaced as
    written, as a str's escapes show it (`\\xf6`) and as a bytes repr shows it (`\\xc3\\xb6`, how aiohttp
    quotes a bad request line); a token that percent-decoding reveals withholds the whole text."""
    text = TOKEN_VALUE.sub(rf"\1{REDACTED}", text)
    if token:
        forms = {token, token.encode("ascii", "backslashreplace").decode(), repr(token.encode())[2:-1]}
        for form in forms:
            text = text.replace(form, REDACTED)
        decoded = unquote(unquote_plus(text))
        if any(form in decoded for form in forms):
            return WITHHELD
    return text


def secret_bytes(text: str) -> bytes:
    """A header or query value as bytes, for a constant-time comparison with the token: invalid UTF-8
    arrives as surrogates (aiohttp decodes with surrogateescape), which a plain `.encode()` refuses."""
    return text.encode("utf-8", "surrogatepass")
