"""`fer-edge bundle`: the model(s), config, unit, installer and wheels in one self-checking .tar.gz.

Layout inside BUNDLE.tar.gz (one top folder, fer-edge-VERSION/):

    manifest.json            version, creation time, sha256 + size of every file, models, parity
    install.sh               the device-side installer (edge_runtime/release/install.sh)
    models/NAME.tflite       the int8 model and its .json metadata (and an *_edgetpu.tflite build)
    config/fer-edge.yaml     the daemon's config, detection.model pointing at the bundled model
    systemd/fer-edge.service the daemon's unit, written for /opt/fer-edge (install.sh rewrites the prefix)
    wheels/*.whl             fer-edge itself; with --with-deps every runtime dependency for --platform
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from edge_runtime import __version__
from edge_runtime.errors import FerEdgeError
from edge_runtime.metadata import read_metadata, sha256_file
from edge_runtime.release.manifest import MANIFEST, NAMESPACE, SIGNATURE, VERSION_RE, write_manifest

SOURCE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PREFIX = "/opt/fer-edge"
UNIT_NAME = "fer-edge.service"
CONFIG_NAME = "fer-edge.yaml"
WHEEL_CACHE = Path.home() / ".cache" / "fer-edge" / "wheels"
# Raspberry Pi OS Bookworm is Debian 12: glibc 2.36, so manylinux_2_17 ... manylinux_2_36 wheels run there.
GLIBC_MINOR = 36
EXTRAS = ("mqtt",)


class BundleError(FerEdgeError, RuntimeError):
    """The bundle cannot be made: a missing input, a failed wheel build, a dependency with no wheel."""


@dataclass
class BundleOptions:
    model: Path
    out: Path
    edgetpu_model: Path | None = None
    config: Path | None = None
    version: str | None = None
    platform: str | None = None
    with_deps: bool = False
    python_version: str = "3.11"
    find_links: Path | None = None
    wheel: Path | None = None
    sign_key: Path | None = None
    wheel_cache: Path = field(default_factory=lambda: WHEEL_CACHE)
    log: object = print


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    files: int
    size: int
    wheels: tuple[str, ...]
    seconds: float


def build_bundle(opts: BundleOptions) -> Bundle:
    start = time.monotonic()
    created = datetime.now(timezone.utc).replace(microsecond=0)
    version = opts.version or f"{__version__}-{created:%Y%m%dT%H%M%SZ}"
    if not VERSION_RE.fullmatch(version):
        raise BundleError(f"--version {version!r}: use letters, digits and . _ + - only")
    models = [check_model(opts.model, edgetpu=False)]
    if opts.edgetpu_model:
        models.append(check_model(opts.edgetpu_model, edgetpu=True))
    if opts.with_deps and not opts.platform:
        raise BundleError("--with-deps needs --platform (the device's, e.g. linux_aarch64)")
    if not opts.out.parent.is_dir():
        raise BundleError(f"--out {opts.out}: the folder {opts.out.parent} does not exist (make it first)")
    config_text = bundle_config(opts.config, f"../models/{opts.model.name}", opts.model)
    with tempfile.TemporaryDirectory(dir=opts.out.parent, prefix=f".{opts.out.name}.") as tmp:
        root = Path(tmp) / f"fer-edge-{version}"
        for sub in ("models", "config", "systemd", "wheels"):
            (root / sub).mkdir(parents=True)
        for model in models:
            for path in (model.path, model.path.with_suffix(".json")):
                shutil.copyfile(path, root / "models" / path.name)
        # Relative to the config file's folder, as the daemon resolves it: found from any working folder.
        (root / "config" / CONFIG_NAME).write_text(config_text)
        (root / "systemd" / UNIT_NAME).write_text(unit_text(opts.model.name))
        shutil.copyfile(resources.files("edge_runtime.release") / "install.sh", root / "install.sh")
        (root / "install.sh").chmod(0o755)
        own = opts.wheel or build_own_wheel(Path(tmp) / "own")
        shutil.copyfile(own, root / "wheels" / own.name)
        if opts.with_deps:
            for wheel in download_deps(own, opts):
                shutil.copyfile(wheel, root / "wheels" / wheel.name)
        wheels = tuple(sorted(p.name for p in (root / "wheels").iterdir()))
        source = models[0].meta.get("source_model") or {}
        manifest = write_manifest(root, {
            "name": "fer-edge", "version": version, "fer_edge": __version__,
            "created": created.isoformat().replace("+00:00", "Z"),
            "platform": opts.platform or "any", "python": opts.python_version if opts.with_deps else None,
            "models": [m.summary() for m in models],
            "source_model": {"file": source.get("file"), "sha256": source.get("sha256")},
            "parity": models[0].meta.get("parity"),
            "config": f"config/{CONFIG_NAME}", "unit": f"systemd/{UNIT_NAME}", "wheels": list(wheels),
        })
        if opts.sign_key:
            sign_manifest(root, opts.sign_key)
        partial = Path(tmp) / "bundle.tar.gz"
        write_tarball(root, partial, int(created.timestamp()))
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())  # on disk before the rename makes it visible under its name
        partial.replace(opts.out)
    return Bundle(opts.out, version, len(manifest["files"]), opts.out.stat().st_size, wheels,
                  time.monotonic() - start)


@dataclass(frozen=True)
class BundledModel:
    path: Path
    meta: dict
    sha256: str
    edgetpu: bool

    def summary(self) -> dict:
        return {"file": f"models/{self.path.name}", "sha256": self.sha256, "edgetpu": self.edgetpu,
                "precision": self.meta.get("precision"), "labels": self.meta.get("labels")}


def check_model(path: Path, *, edgetpu: bool) -> BundledModel:
    """A model the device can run: an int8 .tflite with its .json metadata, which the runtime's one loader loads
    (an Edge TPU build needs a Coral to load: its format and metadata are checked)."""
    from edge_runtime.interpreter import (
        ModelError,
        input_info,
        is_edgetpu_model,
        make_interpreter,
        read_model_bytes,
    )

    if not path.is_file():
        raise BundleError(f"{path}: model file not found")
    if path.suffix != ".tflite":
        raise BundleError(f"{path}: not a .tflite model: bundle the int8 TensorFlow Lite build of it "
                          "(`fer-edge convert --int8` writes models/NAME_int8.tflite)")
    if is_edgetpu_model(path) != edgetpu:
        raise BundleError(f"{path}: {'--edgetpu-model' if edgetpu else '--model'} must "
                          f"{'' if edgetpu else 'not '}be an *_edgetpu.tflite build")
    try:
        meta = read_metadata(path)
        read_model_bytes(path)
    except (ModelError, ValueError) as exc:
        raise BundleError(str(exc)) from exc
    digest = sha256_file(path)
    if meta.get("sha256") not in (None, digest):
        raise BundleError(f"{path}: sha256 {digest[:12]}... differs from its metadata's {meta['sha256'][:12]}...: "
                          "the model changed after its metadata was written (rerun the conversion)")
    try:
        dtype = None if edgetpu else input_info(make_interpreter(path)).dtype
    except (ModelError, ValueError) as exc:
        raise BundleError(str(exc)) from exc
    if meta.get("precision") != "int8" or dtype not in (None, "int8", "uint8"):
        raise BundleError(f"{path}: not an int8 model (its metadata says precision {meta.get('precision')!r}"
                          + (f", its input is {dtype}" if dtype else "") + "): the device runs int8 models "
                          "(`fer-edge convert --int8`)")
    return BundledModel(path, meta, digest, edgetpu)


def bundle_config(source: Path | None, model: str, model_here: Path | None = None) -> str:
    """The daemon config for the device: the given file (or the defaults), its detection.model the bundled model.

    Checked first by the daemon's own config model (with `model_here` as the model), as far as this machine can
    tell: the device's secrets and file sources are its own, so they are given stand-ins of the right type."""
    import yaml

    from edge_runtime.daemon.config import ConfigError, read_file

    try:
        data, lines = read_file(source) if source else ({}, {})
        check_config(data, lines, source, model_here)
    except ConfigError as exc:
        raise BundleError(f"--config: the daemon would refuse it: {'; '.join(exc.problems)}") from None
    detection = dict(data.get("detection") or {})
    detection["model"] = model
    data["detection"] = detection
    header = f"# fer-edge daemon config, bundled from {source.name if source else 'the defaults'}.\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def check_config(data: dict, lines: dict, source: Path | None, model: Path | None) -> None:
    """ConfigError (every problem, with its key and line) when the daemon's config model refuses `data`."""
    import copy

    from pydantic import ValidationError

    from edge_runtime.daemon.config import MIN_TOKEN_LENGTH, ConfigError, DaemonConfig, _describe
    from edge_runtime.sources import is_device_or_stream

    probe = copy.deepcopy(data)
    for section, key in (("mqtt", "password"), ("http", "token")):
        part = probe.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), dict) and set(part[key]) in ({"env"}, {"file"}):
            part[key] = "x" * MIN_TOKEN_LENGTH  # read on the device, from its environment or its file
    camera, detection = probe.get("camera"), probe.get("detection")
    if isinstance(camera, dict) and isinstance(camera.get("source"), str) and not is_device_or_stream(
            camera["source"]):
        camera["source"] = "0"  # a file on the device
    if isinstance(detection, dict):
        detection.pop("model", None)  # replaced by the bundled model
        if isinstance(detection.get("verify_model"), str) and detection["verify_model"]:
            detection["verify_model"] = None  # a file on the device
        if model is not None:
            detection["model"] = str(model)
    try:
        DaemonConfig.model_validate(probe)
    except ValidationError as exc:
        raise ConfigError([_describe(err, source, lines) for err in exc.errors()]) from None


def unit_text(model: str) -> str:
    """The daemon's own unit, run from DEFAULT_PREFIX/current. The model is also named on the command line,
    so the unit's ExecStart says which model the service runs."""
    from edge_runtime.daemon.service import render_unit

    current = f"{DEFAULT_PREFIX}/current"
    unit = render_unit(config=f"{current}/config/{CONFIG_NAME}", command=[f"{current}/venv/bin/fer-edge"])
    return re.sub(r"^(ExecStart=.*)$", rf"\1 --model {current}/models/{model}", unit, count=1, flags=re.MULTILINE)


def build_own_wheel(out: Path) -> Path:
    """A wheel of fer-edge from this source checkout, with the standard library only (no pip, no network)."""
    from release_tools.wheel import WheelError, build_wheel

    try:
        return build_wheel(SOURCE_ROOT, out)
    except (WheelError, KeyError, OSError) as exc:
        raise BundleError(f"cannot build the fer-edge wheel from {SOURCE_ROOT}: {exc}") from exc


def sign_manifest(root: Path, key: Path) -> None:
    """root/manifest.json.sig: `ssh-keygen -Y sign` of the manifest, which lists every other file's sha256."""
    if not key.is_file():
        raise BundleError(f"--sign {key}: no such ssh private key file")
    try:
        proc = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(root / MANIFEST)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise BundleError("--sign needs ssh-keygen (OpenSSH 8.1 or newer): install openssh-client") from None
    if proc.returncode or not (root / SIGNATURE).is_file():
        raise BundleError(f"--sign {key}: ssh-keygen -Y sign failed: {proc.stderr.strip()}")


def runtime_requirements(wheel: Path, python_version: str, platform: str) -> list[str]:
    """The wheel's base dependencies plus the EXTRAS ones, as requirement strings for the target platform."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always brings its own copy
        from pip._vendor.packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    machine = platform.split("_", 1)[1]
    env = {"python_version": python_version, "python_full_version": f"{python_version}.0",
           "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix", "platform_machine": machine,
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    wanted = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or any(req.marker.evaluate({**env, "extra": extra}) for extra in ("", *EXTRAS)):
            req.marker = None
            wanted.append(str(req))
    return wanted


def platform_tags(platform: str) -> list[str]:
    match = re.fullmatch(r"linux_(aarch64|armv7l|x86_64)", platform)
    if not match:
        raise BundleError(f"--platform {platform}: use linux_aarch64 (a 64-bit Pi), linux_armv7l or linux_x86_64")
    arch = match.group(1)
    return [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{arch}"]


def download_deps(own_wheel: Path, opts: BundleOptions) -> list[Path]:
    """`pip download` the runtime dependencies' wheels for the device into the cache; the files it resolved."""
    requirements = runtime_requirements(own_wheel, opts.python_version, opts.platform)
    cache = opts.wheel_cache / f"{opts.platform}-cp{opts.python_version.replace('.', '')}"
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
           "--implementation", "cp", "--python-version", opts.python_version, "-d", str(cache)]
    for tag in platform_tags(opts.platform):
        cmd += ["--platform", tag]
    if opts.find_links:
        cmd += ["--no-index", "--find-links", str(opts.find_links)]
    opts.log(f"bundle: pip download {len(requirements)} requirements for {opts.platform}, Python "
             f"{opts.python_version}: {', '.join(requirements)}")
    proc = subprocess.run(cmd + requirements, capture_output=True, text=True, cwd=cache)
    if proc.returncode:
        missing = re.findall(r"No matching distribution found for (\S+)", proc.stderr)
        if missing:
            raise BundleError(f"no {opts.platform} wheel for Python {opts.python_version}: "
                              f"{', '.join(missing)} (pip download --only-binary=:all: found none; "
                              "pin a version that has one, or drop the dependency)")
        raise BundleError(f"pip download failed: {proc.stderr.strip()[-2000:]}")
    found = re.findall(r"^\s*(?:Saved|File was already downloaded) (.+\.whl)\s*$", proc.stdout, re.MULTILINE)
    if requirements and not found:
        raise BundleError(f"pip download named no wheels it saved: {proc.stdout.strip()[-2000:]}")
    return sorted({(cache / path).resolve() for path in found})


def write_tarball(root: Path, out: Path, mtime: int) -> None:
    """root as one top folder, files in sorted order, owner root, the creation time on every entry."""
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = mtime
        info.mode = 0o755 if info.isdir() or info.name.endswith(".sh") else 0o644
        return info

    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(root, arcname=root.name, recursive=False, filter=normalise)
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=f"{root.name}/{path.relative_to(root).as_posix()}", recursive=False,
                    filter=normalise)
