"""Fixtures for the release tests: one fer-edge wheel per session, bundles of the shipped int8 model,
fake aarch64 dependency wheels, and a real sshd on loopback as the "device"."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from release_tools.bundle import BundleOptions, build_bundle, build_own_wheel, runtime_requirements

REPO = Path(__file__).resolve().parents[2]
SHIPPED_INT8 = REPO / "models" / "fer_blend_int8.tflite"
# The interpreter the "device" makes its venv from: the base Python under any venv, which has the
# runtime dependencies here and in CI, so install.sh needs no network.
DEVICE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="session")
def own_wheel(tmp_path_factory) -> Path:
    return build_own_wheel(tmp_path_factory.mktemp("own-wheel"))


@pytest.fixture
def make_bundle(tmp_path, own_wheel):
    def make(name: str = "bundle.tar.gz", **kwargs) -> Path:
        opts = BundleOptions(model=kwargs.pop("model", SHIPPED_INT8), out=tmp_path / name, wheel=own_wheel,
                             wheel_cache=tmp_path / "wheel-cache", log=lambda s: None, **kwargs)
        return build_bundle(opts).path
    return make


@pytest.fixture(scope="session")
def shipped_int8() -> Path:
    return SHIPPED_INT8


@pytest.fixture(scope="session")
def device_python() -> str:
    return DEVICE_PYTHON


@pytest.fixture(scope="session")
def install_sh():
    def install(top: Path, prefix, *extra: str) -> subprocess.CompletedProcess:
        """The bundle's own install.sh into a throwaway prefix, no systemd, the device Python's venv."""
        return subprocess.run(["bash", str(top / "install.sh"), "--prefix", str(prefix), "--python", DEVICE_PYTHON,
                               "--no-systemd", *extra], capture_output=True, text=True, timeout=180)
    return install


@pytest.fixture(scope="session")
def unpack():
    def unpack(bundle: Path, into: Path) -> Path:
        """The bundle's top folder, unpacked under `into`."""
        with tarfile.open(bundle) as tar:
            tar.extractall(into, filter="data")
        (top,) = into.iterdir()
        return top
    return unpack


@pytest.fixture
def wheelhouse(own_wheel, tmp_path):
    """A find-links folder with a fake aarch64 wheel for every runtime requirement, at a version it allows."""
    def make(leave_out=()) -> Path:
        folder = tmp_path / "wheelhouse"
        folder.mkdir()
        for text in runtime_requirements(own_wheel, "3.11", "linux_aarch64"):
            req = Requirement(text)
            if req.name not in leave_out:
                fake_wheel(folder, req.name, next(req.specifier.filter(f"{a}.{b}" for a in range(10)
                                                                       for b in range(100))))
        return folder
    return make


def fake_wheel(folder: Path, name: str, version: str, tag: str = "cp311-cp311-manylinux_2_17_aarch64") -> Path:
    """A tiny but valid wheel (metadata only): enough for `pip download` to resolve and save it."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
                    f"Tag: {tag}\n")
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


@dataclass(frozen=True)
class Sshd:
    port: int
    key: Path
    host: str

    def deploy_args(self, known_hosts: Path) -> list[str]:
        return ["--host", self.host, "--port", str(self.port), "--identity", str(self.key),
                "--ssh-option", f"UserKnownHostsFile={known_hosts}", "--ssh-option", "StrictHostKeyChecking=no",
                "--ssh-option", "LogLevel=ERROR"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on a loopback port, its own host key, and one authorised throwaway key."""
    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if binary is None or shutil.which("ssh") is None or shutil.which("scp") is None:
        message = "openssh-server and openssh-client are needed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copyfile(folder / "client_key.pub", folder / "authorized_keys")
    sftp = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server") if Path(p).exists()),
                "internal-sftp")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\nPidFile {folder}/sshd.pid\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"Subsystem sftp {sftp}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder, needed as root
    log = open(folder / "sshd.log", "w")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.1)
    yield Sshd(port, folder / "client_key", f"{getpass.getuser()}@127.0.0.1")
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
