"""`fer-edge deploy BUNDLE --host USER@HOST`: copy, verify, install, switch, restart, check, roll back.

Everything on the device goes through the system `ssh` and `scp` (keys, agents and ~/.ssh/config work
as they do by hand) and through the bundle's own install.sh, so a deploy does what a person at the
Pi would do:

    PREFIX/incoming/VERSION/     the unpacked bundle, verified against its manifest there
    PREFIX/releases/VERSION/     installed by its install.sh (files + venv)
    PREFIX/current               switched atomically by install.sh (ln -sfn + mv -T)

A release that does not become healthy within the timeout is undone: the previous release's own
install.sh makes it current again and restarts it, and the failed release is removed.
"""

from __future__ import annotations

import inspect
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import FerEdgeError
from edge_runtime.release import manifest as manifest_module
from edge_runtime.release.manifest import VERSION_RE, verify_tarball
from release_tools.bundle import CONFIG_NAME, DEFAULT_PREFIX, UNIT_NAME

LOCK = ".deploy.lock"  # in PREFIX on the device: one deploy at a time
# Where a device keeps the keys it accepts bundles from; install.sh looks in the same places.
ALLOWED_SIGNERS = ("{prefix}/allowed_signers", "/etc/fer-edge/allowed_signers")
# The prefix goes into paths, shell scripts, the unit's ExecStart and pip's arguments (as install.sh also checks).
PREFIX_RE = re.compile(r"/[^\s%\\\"'$`;]*")
# GNU tar as root keeps the archive's owners and modes, which the signature does not cover: a bundle whose headers
# say uid 1000 or mode 0666 would leave files others can change between the check and the run. So the staging
# folder is root's alone (0700) and tar takes neither owner nor mode from the archive.
UNTAR = "tar --no-same-owner --no-same-permissions -xzf"


class DeployError(FerEdgeError, RuntimeError):
    """The deploy failed; `rolled_back` says whether the previous release is current again."""

    def __init__(self, message: str, rolled_back: bool = False):
        super().__init__(message)
        self.rolled_back = rolled_back


@dataclass
class DeployOptions:
    bundle: Path
    host: str
    port: int | None = None
    identity: Path | None = None
    prefix: str = DEFAULT_PREFIX
    keep: int = 3
    timeout: float = 60.0
    health_url: str | None = None
    health_cmd: str | None = None
    python: str = "python3"
    sudo: bool = False
    systemd: bool = True
    ssh_options: list[str] = field(default_factory=list)
    lock_timeout: float = 300.0
    allow_downgrade: bool = False
    log: Callable[[str], None] = print

    def check(self) -> None:
        """Refuse what ssh or the device would read as something else, before anything runs."""
        if not self.host or self.host.startswith("-") or any(c.isspace() for c in self.host):
            raise DeployError(f"--host {self.host!r}: not a USER@HOST or ssh alias (one that starts with '-' "
                              "would reach ssh as an option)")
        if not PREFIX_RE.fullmatch(self.prefix):
            raise DeployError(f"--prefix {self.prefix!r}: must be an absolute path without spaces, %, \\, "
                              "quotes, $, ` or ; (it goes into shell scripts, the unit's ExecStart and pip's "
                              "arguments)")


@dataclass(frozen=True)
class Deployed:
    version: str
    previous: str | None
    seconds: dict[str, float]


class Device:
    """Shell scripts run on USER@HOST over the system ssh, files copied with scp, all through one
    connection (an ssh control master) so each step costs no new handshake."""

    def __init__(self, opts: DeployOptions):
        self.opts = opts
        self.control = Path(tempfile.mkdtemp(prefix="fer-ssh-"))
        self.common = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", f"ControlPath={self.control}/%C"]
        if opts.identity:
            self.common += ["-i", str(opts.identity), "-o", "IdentitiesOnly=yes"]
        for option in opts.ssh_options:
            self.common += ["-o", option]

    def __enter__(self) -> Device:
        # -f: into the background once logged in; its output goes to a file, so no pipe is held open.
        with open(self.control / "master.log", "w+") as err:
            master = subprocess.run(["ssh", *self._port("-p"), *self.common, "-M", "-N", "-f", "--", self.opts.host],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            err.seek(0)
            if master.returncode:
                shutil.rmtree(self.control, ignore_errors=True)
                raise DeployError(f"ssh {self.opts.host} failed: {err.read().strip()}")
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["ssh", *self._port("-p"), *self.common, "-O", "exit", "--", self.opts.host],
                       capture_output=True)
        shutil.rmtree(self.control, ignore_errors=True)

    def _port(self, flag: str) -> list[str]:
        return [flag, str(self.opts.port)] if self.opts.port else []

    def run(self, script: str, *, capture: bool = True) -> subprocess.CompletedProcess:
        """Run a POSIX shell script there (sent on stdin, so nothing needs quoting twice)."""
        shell = "sudo -n sh -s" if self.opts.sudo else "sh -s"
        # capture=False: stderr joins stdout, so install.sh's story reads in order.
        return subprocess.run(["ssh", *self._port("-p"), *self.common, "--", self.opts.host, shell],
                              input="set -eu\n" + script, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE if capture else subprocess.STDOUT)

    def copy(self, local: Path, remote: str) -> subprocess.CompletedProcess:
        return subprocess.run(["scp", "-q", *self._port("-P"), *self.common, "--", str(local),
                               f"{self.opts.host}:{remote}"], capture_output=True, text=True)

    def lock(self, prefix: str) -> subprocess.Popen:
        """Hold PREFIX/.deploy.lock on the device (flock) until the returned ssh session's stdin is closed,
        or it dies with this process: a second deploy waits up to lock_timeout seconds, then refuses."""
        q, path = shlex.quote, f"{prefix}/{LOCK}"
        wait = f"flock -w {self.opts.lock_timeout:.0f} 9 || {{ echo timeout; exit 1; }}"
        script = (f"mkdir -p {q(prefix)} && exec 9>>{q(path)} || exit 3\n"
                  f"flock -n 9 || {{ echo busy; {wait}; }}\necho locked\nexec cat >/dev/null\n")
        shell = "sudo -n sh -c" if self.opts.sudo else "sh -c"
        holder = subprocess.Popen(["ssh", *self._port("-p"), *self.common, "--", self.opts.host,
                                   f"{shell} {q(script)}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = holder.stdout.readline().strip()
        if line == "busy":
            self.opts.log(f"      another deploy holds {path}: waiting up to {self.opts.lock_timeout:.0f} s")
            line = holder.stdout.readline().strip()
        if line != "locked":
            holder.stdin.close()
            err = holder.stderr.read().strip()
            holder.wait(timeout=10)
            if line == "timeout":
                raise DeployError(f"another deploy to {self.opts.host} still holds {path} after "
                                  f"{self.opts.lock_timeout:.0f} s: try again when it has finished")
            raise DeployError(f"could not lock {path} on {self.opts.host} (flock from util-linux is needed): "
                              f"{err or 'exit ' + str(holder.returncode)}")
        return holder


def bundle_http(bundle: Path, top: str) -> tuple[str, int] | None:
    """(host, port) of the bundled config's HTTP server, or None when it is off or on a random port."""
    import yaml

    with tarfile.open(bundle, "r:gz") as tar:
        data = yaml.safe_load(tar.extractfile(f"{top}/config/{CONFIG_NAME}").read()) or {}
    if "http" in data and data["http"] is None:
        return None
    http = data.get("http") or {}
    host, port = str(http.get("host", "127.0.0.1")), int(http.get("port", 8080))
    return None if port == 0 else ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)


def deploy(opts: DeployOptions) -> Deployed:
    opts.check()
    step_log = opts.log
    step_log(f"[1/7] check: verify {opts.bundle} here")
    manifest = verify_tarball(opts.bundle)
    step_log(f"      ok: release {manifest['version']}, {len(manifest['files'])} files")
    with Device(opts) as device:
        holder = device.lock(opts.prefix.rstrip("/") or "/")
        try:
            return _deploy(device, opts, manifest)
        finally:
            holder.stdin.close()  # the device's `cat` ends, and with it the lock
            holder.wait(timeout=30)


def _deploy(device: Device, opts: DeployOptions, manifest: dict) -> Deployed:
    log, q = opts.log, shlex.quote
    timings: dict[str, float] = {}
    steps = iter(range(2, 8))

    def step(name: str, what: str):
        log(f"[{next(steps)}/7] {name}: {what}")
        timings[name] = time.monotonic()

    def done(name: str, note: str = "") -> None:
        timings[name] = time.monotonic() - timings[name]
        log(f"      ok ({timings[name]:.1f} s){': ' + note if note else ''}")

    prefix = opts.prefix.rstrip("/") or "/"
    version, top = manifest["version"], manifest["top"]
    stage = f"{prefix}/incoming/{version}"
    install_args = f"--prefix {q(prefix)} --python {q(opts.python)}" + ("" if opts.systemd else " --no-systemd")
    # Not for the rollback: an older release's install.sh may not know the flag, and needs none run from its release.
    new_args = install_args + (" --allow-downgrade" if opts.allow_downgrade else "")

    step("copy", f"{opts.bundle.name} ({opts.bundle.stat().st_size / 1e6:.1f} MB) to {opts.host}:{stage}.tar.gz")
    probe = device.run(f"mkdir -p {q(prefix)}/incoming\nreadlink {q(prefix)}/current || true\n"
                       "[ -d /run/systemd/system ] && echo systemd || true\n"
                       f"[ -e {q(prefix)}/releases/{q(version)} ] && echo existed || true\n")
    if probe.returncode:
        raise DeployError(f"ssh {opts.host} failed: {probe.stderr.strip()}")
    lines = probe.stdout.split()
    previous = lines[0].removeprefix("releases/") if lines and lines[0].startswith("releases/") else None
    if previous is not None and not VERSION_RE.fullmatch(previous):
        log(f"      {prefix}/current points at {lines[0]!r}, not a release: nothing to roll back to")
        previous = None
    systemd = opts.systemd and "systemd" in lines
    # A release of this version kept from before is not this deploy's to remove if the new bundle is refused.
    keep = "existed" in lines
    copied = device.copy(opts.bundle, f"{stage}.tar.gz")
    if copied.returncode:
        raise DeployError(f"scp to {opts.host} failed: {copied.stderr.strip()}")
    done("copy", f"current release there: {previous or 'none'}")

    step("verify", "unpack there and check every file against the manifest (and its signature, where the device "
         "has an allowed-signers file)")
    remote_verify = device.run(f"rm -rf {q(stage)}\nmkdir -m 0700 {q(stage)}\n{UNTAR} {q(stage)}.tar.gz -C {q(stage)}\n"
                               + _verify_script(prefix, f"{stage}/{top}", opts.python))
    if remote_verify.returncode:
        raise DeployError(f"the bundle does not verify on {opts.host}: "
                          f"{(remote_verify.stderr or remote_verify.stdout).strip()}")
    done("verify", remote_verify.stdout.strip().splitlines()[-1])

    step("install", f"{stage}/{top}/install.sh {new_args}")
    installed = device.run(f"bash {q(stage)}/{q(top)}/install.sh {new_args}\n", capture=False)
    _echo(log, installed.stdout)
    if installed.returncode:
        rolled = _roll_back(device, opts, prefix, version, previous, install_args, log, keep)
        device.run(f"rm -rf {q(stage)} {q(stage)}.tar.gz\n")
        said = next((line.split("error: ", 1)[1] for line in reversed((installed.stdout or "").splitlines())
                     if line.startswith("install.sh: error: ")), "")
        raise DeployError(f"install.sh failed on {opts.host} (exit {installed.returncode})"
                          + (f": {said}" if said else ""), rolled)
    done("install", f"current -> releases/{version}")

    step("health", _health_what(opts, systemd, bundle_http(opts.bundle, top)))
    problem = _wait_healthy(device, opts, prefix, systemd, bundle_http(opts.bundle, top))
    if problem:
        log(f"      unhealthy: {problem}")
        step("rollback", f"back to {previous or 'nothing (first deploy)'}")
        rolled = _roll_back(device, opts, prefix, version, previous, install_args, log, keep)
        device.run(f"rm -rf {q(stage)} {q(stage)}.tar.gz\n")
        done("rollback")
        raise DeployError(f"release {version} is not healthy ({problem}); "
                          + (f"rolled back: {previous} is current again" if rolled else "nothing to roll back to"),
                          rolled)
    done("health")

    step("prune", f"keep the newest {opts.keep} releases in {prefix}/releases")
    pruned = device.run(_prune_script(prefix, opts.keep))
    done("prune", pruned.stdout.strip().replace("\n", ", ") or "nothing removed")
    step("clean", f"remove {stage}")
    device.run(f"rm -rf {q(stage)} {q(stage)}.tar.gz\n")
    done("clean")
    log(f"deployed {version} to {opts.host}:{prefix} (previous: {previous or 'none'})")
    return Deployed(version, previous, timings)


def _verify_script(prefix: str, folder: str, python: str) -> str:
    """Check the unpacked bundle with this workstation's own verifier (sent in the script, not the bundle's
    install.sh or wheel, which are what is being checked), requiring a signature where the device lists keys."""
    q = shlex.quote
    source = inspect.getsource(manifest_module)
    if "\nFER_EDGE_VERIFIER\n" in source:
        raise DeployError("the verifier's source contains its own here-document marker")
    places = " ".join(q(p.format(prefix=prefix)) for p in ALLOWED_SIGNERS)
    return (f"set -- verify {q(folder)}\n"
            f"for allowed in {places}; do\n"
            "  if [ -f \"$allowed\" ]; then set -- \"$@\" --allowed-signers \"$allowed\"; break; fi\ndone\n"
            f"{q(python)} - \"$@\" <<'FER_EDGE_VERIFIER'\n{source}\nFER_EDGE_VERIFIER\n")


def _echo(log, text: str | None) -> None:
    for line in (text or "").rstrip().splitlines():
        log(f"      {line}")


def _health_what(opts: DeployOptions, systemd: bool, http) -> str:
    checks = [f"config/{CONFIG_NAME} validates"]
    if systemd:
        checks.append(f"{UNIT_NAME} active")
        url = opts.health_url or (f"http://{http[0]}:{http[1]}/healthz" if http else None)
        if url:
            checks.append(f"{url} answers 200")
    if opts.health_cmd:
        checks.append(f"`{opts.health_cmd}` exits 0")
    return f"wait up to {opts.timeout:.0f} s for " + ", ".join(checks)


def _wait_healthy(device: Device, opts: DeployOptions, prefix: str, systemd: bool, http) -> str | None:
    """None once every check passes, else what still failed when the time ran out."""
    q = shlex.quote
    # The release's own fer-edge must accept the release's config: a deterministic check, made once.
    validate = device.run(f"cd {q(prefix)}/current\n"
                          f"venv/bin/fer-edge run --validate-config config/{CONFIG_NAME} 2>&1\n")
    if validate.returncode:
        return f"the config does not validate: {validate.stdout.strip()}"
    checks = []
    if systemd:
        checks.append(f"systemctl is-active --quiet {UNIT_NAME} || {{ echo '{UNIT_NAME} is not active'; exit 1; }}")
        url = opts.health_url or (f"http://{http[0]}:{http[1]}/healthz" if http else None)
        if url:
            # The release's own Python fetches it: a Pi may have no curl.
            checks.append(f"{q(prefix)}/current/venv/bin/python -c 'import sys, urllib.request; "
                          f"urllib.request.urlopen(sys.argv[1], timeout=3)' {q(url)} 2>/dev/null "
                          f"|| {{ echo {q(url + ' does not answer 200')}; exit 1; }}")
    if opts.health_cmd:
        checks.append(f"(cd {q(prefix)}/current && {opts.health_cmd}) >/dev/null 2>&1 "
                      f"|| {{ echo {q('health command failed: ' + opts.health_cmd)}; exit 1; }}")
    if not checks:
        return None
    deadline = time.monotonic() + opts.timeout
    while True:
        result = device.run("\n".join(checks) + "\n")
        if result.returncode == 0:
            return None
        if time.monotonic() >= deadline:
            return (result.stdout or result.stderr).strip() or f"exit {result.returncode}"
        time.sleep(1.0)


def _roll_back(device: Device, opts: DeployOptions, prefix: str, version: str, previous: str | None,
               install_args: str, log, keep: bool = False) -> bool:
    """Make the previous release current again through its own install.sh; remove the failed one (unless `keep`:
    it was on the device before this deploy)."""
    q = shlex.quote
    remove = "" if keep else f"rm -rf {q(prefix)}/releases/{q(version)}\n"
    if previous == version:
        log("      the failed release was already current before: nothing to go back to")
        return False
    if previous is None:
        stop = f"systemctl stop {UNIT_NAME} || true\n" if opts.systemd else ""
        device.run(f"{stop}rm -f {q(prefix)}/current\n{remove}")
        log("      no previous release: service stopped, the failed release removed")
        return False
    back = device.run(f"bash {q(prefix)}/releases/{q(previous)}/install.sh {install_args}\n{remove}",
                      capture=False)
    _echo(log, back.stdout)
    if back.returncode:
        raise DeployError(f"rollback to {previous} failed too (exit {back.returncode}): look at {opts.host} by hand")
    return True


def _prune_script(prefix: str, keep: int) -> str:
    """Remove all but the `keep` newest releases, never the current one; then the venvs no release uses."""
    q = shlex.quote
    return (f"cd {q(prefix)}/releases\ncurrent=$(readlink ../current | sed 's#^releases/##')\n"
            f"ls -1t | grep -v -x -F \"$current\" | tail -n +{max(keep, 1)} | while read -r old; do\n"
            "  rm -rf -- \"$old\" && echo \"removed $old\"\ndone\n"
            "cd ../venvs 2>/dev/null || exit 0\n"
            "for venv in *; do\n"
            "  [ -d \"$venv\" ] || continue\n"
            "  used=no\n"
            "  for link in ../releases/*/venv; do\n"
            "    if [ \"$(readlink \"$link\" || true)\" = \"../../venvs/$venv\" ]; then used=yes; fi\n"
            "  done\n"
            "  if [ \"$used\" = no ]; then rm -rf -- \"$venv\" && echo \"removed venv $venv\"; fi\n"
            "done\n")
