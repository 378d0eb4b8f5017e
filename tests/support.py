"""Helpers shared by the test areas that start real services (daemons, sshd, Prometheus, brokers)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest


def need_tool(name: str) -> str:
    """An installed tool (the venv's, the PATH's, /usr/sbin); skipped without it on a developer machine,
    a failure in CI, where .ci/run installs it."""
    path = shutil.which(name) or shutil.which(name, path=f"{Path(sys.executable).parent}:/usr/sbin")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed: .ci/run installs it")
    pytest.skip(f"{name} is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """predicate()'s first true value, polled every `interval` s; AssertionError naming `what` after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
