"""Fixtures for the fleet tests: "devices" that are real sshd servers on loopback ports (one prefix each),
an Ansible that keeps its state in the test's folder, and real `fer-edge run` daemons with a token."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from release_tools.bundle import BundleOptions, build_bundle, build_own_wheel
from tests.support import free_port, need_tool, wait_until

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "fer_blend_int8.tflite"
SAMPLE = REPO / "edge_runtime" / "samples" / "faces.mp4"
# The devices' Python: the base interpreter under any venv, as in tests/release.
DEVICE_PYTHON = getattr(sys, "_base_executable", sys.executable)


need = need_tool  # the name this area's tests use


@pytest.fixture(scope="session")
def tools():
    """The helpers above, for the test modules (a package named tests/fleet would shadow the real `fleet`)."""
    return SimpleNamespace(need=need, free_port=free_port, wait_until=wait_until, answers_200=answers_200,
                           write_inventory=write_inventory, model=MODEL)


@dataclass(frozen=True)
class Device:
    name: str
    ssh_port: int
    prefix: Path
    http_port: int


@pytest.fixture(scope="session")
def own_wheel(tmp_path_factory) -> Path:
    return build_own_wheel(tmp_path_factory.mktemp("own-wheel"))


@pytest.fixture
def make_bundle(tmp_path, own_wheel):
    def make(version: str, config: Path | None = None, sign_key: Path | None = None) -> Path:
        opts = BundleOptions(model=MODEL, out=tmp_path / f"{version}.tar.gz", wheel=own_wheel, version=version,
                             config=config, sign_key=sign_key, wheel_cache=tmp_path / "wheel-cache",
                             log=lambda s: None)
        return build_bundle(opts).path
    return make


@pytest.fixture
def ansible_env(tmp_path, monkeypatch):
    """Ansible's state (control sockets, temp files) in the test's folder; throwaway host keys accepted."""
    need("ansible-playbook")
    home = tmp_path / "ah"
    monkeypatch.setenv("ANSIBLE_HOME", str(home))
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(home / "tmp"))
    monkeypatch.setenv("ANSIBLE_REMOTE_TMP", str(home / "remote"))
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    monkeypatch.setenv("ANSIBLE_NOCOLOR", "1")
    monkeypatch.setenv("ANSIBLE_RETRY_FILES_ENABLED", "False")
    monkeypatch.setenv("ANSIBLE_PIPELINING", "True")  # as `fleet deploy` sets it; plain runs take it too
    return home


@pytest.fixture
def devices(tmp_path):
    """devices(n) -> n Devices, each a real sshd on its own loopback port accepting one throwaway key."""
    sshd = need("sshd")
    need("ssh")
    folder = tmp_path / "sshd"
    folder.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "client_key")], check=True)
    shutil.copyfile(folder / "client_key.pub", folder / "authorized_keys")
    sftp = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server") if Path(p).exists()),
                "internal-sftp")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder, needed as root
    servers = []

    def start(n: int) -> list[Device]:
        made = []
        for i in range(1, n + 1):
            name, port = f"dev{i}", free_port()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / f"{name}_host")],
                           check=True)
            config = folder / f"{name}.conf"
            config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/{name}_host\n"
                              f"PidFile {folder}/{name}.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
                              "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                              f"PermitRootLogin prohibit-password\nSubsystem sftp {sftp}\n")
            log = open(folder / f"{name}.log", "w")  # noqa: SIM115 - open for the server's lifetime
            servers.append((subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log), log))
            made.append(Device(name, port, tmp_path / name / "opt" / "fer-edge", free_port()))
        for device, (proc, _) in zip(made, servers[-n:]):
            wait_until(lambda d=device, p=proc: _listening(d.ssh_port) or p.poll() is not None, 10, "sshd")
            assert proc.poll() is None, (folder / f"{device.name}.log").read_text()
        return made

    start.key = folder / "client_key"
    yield start
    for proc, log in servers:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def write_inventory(path: Path, devices: list[Device], key: Path, token_file: Path) -> Path:
    """An INI inventory: group fer_edge, one host per device, the test's ssh key, no systemd, no sudo."""
    hosts = [f"{d.name} ansible_port={d.ssh_port} fer_edge_prefix={d.prefix} fer_edge_http_port={d.http_port}"
             for d in devices]
    path.write_text("[fer_edge]\n" + "\n".join(hosts) + "\n\n[fer_edge:vars]\nansible_host=127.0.0.1\n"
                    f"ansible_user={getpass.getuser()}\nansible_ssh_private_key_file={key}\n"
                    "ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no'\n"
                    f"ansible_python_interpreter={DEVICE_PYTHON}\nfer_edge_python={DEVICE_PYTHON}\n"
                    "fer_edge_systemd=false\nfer_edge_become=false\nfer_edge_health_timeout=4\n"
                    f"fer_edge_token_file={token_file}\n")
    return path


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "fleet.token"
    path.write_text("s3cret-fleet-token\n")
    path.chmod(0o600)  # the daemon refuses a secret file others can read
    return path


@pytest.fixture
def daemon(tmp_path):
    """daemon(name, port, token_file, fer_edge=[python, -m, edge_runtime.cli], model=MODEL) -> Popen of
    `fer-edge run` on the looping sample video, its HTTP on 127.0.0.1:port with the token; healthy on return."""
    procs = []

    def start(name: str, port: int, token: Path, fer_edge: list[str] | None = None, model: Path = MODEL):
        config = tmp_path / f"{name}-daemon.yaml"
        config.write_text(yaml.safe_dump({
            "camera": {"name": name, "source": str(SAMPLE), "loop": True, "fps": 10},
            "detection": {"model": str(model)}, "jsonl": None,
            "http": {"host": "127.0.0.1", "port": port, "token": {"file": str(token)}}}))
        log = tmp_path / f"{name}-daemon.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([*(fer_edge or [sys.executable, "-m", "edge_runtime.cli"]), "run", "--config",
                                     str(config)], stdout=subprocess.DEVNULL, stderr=out)
        procs.append(proc)
        healthz = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: answers_200(healthz) or proc.poll() is not None, 60, f"{name} to answer /healthz")
        assert proc.poll() is None, log.read_text()
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
