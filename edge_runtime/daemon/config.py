"""The daemon's typed configuration: a YAML or TOML file, CLI overrides on top, checked by pydantic.

Unknown keys are refused and numbers are bounded, so a typo fails at start with the key (and,
for YAML, the line) that is wrong, instead of being ignored for weeks. Secrets (MQTT password,
HTTP token) are a string, `{env: NAME}` or `{file: PATH}` (systemd credentials are files). Relative
paths in a file are relative to the file's folder (a bundle's config finds its model from anywhere).

A config comes from an administrator but is read by a long-running service, so its reading is
bounded: a size cap, no YAML aliases (an alias bomb expands to gigabytes), a nesting limit (deep
nesting recurses), and secret files that are small, regular and not readable by everyone.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from edge_runtime.errors import FerEdgeError
from edge_runtime.face_path import DetectionSettings
from edge_runtime.sources import is_device_or_stream

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (the oldest supported): the same parser, from PyPI
    import tomli as tomllib

SECRET_KEYS = frozenset({"password", "token"})
MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; a megabyte is a mistake or an attack
MAX_DEPTH = 32  # the deepest real config is 4 levels
MAX_SECRET_BYTES = 4096
# A token anyone can try against the network port must not be guessable (ssh-keygen's shortest key is longer).
MIN_TOKEN_LENGTH = 16
# The slowest processing rate: one frame per 100 s. Lower rates are a typo (1e-300 overflows the wait).
MIN_FPS = 0.01


class ConfigError(FerEdgeError, ValueError):
    """The configuration is invalid: `problems` holds one line per error, each naming its key."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _resolve_secret(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if set(value) == {"env"}:
        secret = os.environ.get(str(value["env"]))
        if secret is None:
            raise ValueError(f"environment variable {value['env']} is not set")
        return secret
    if set(value) == {"file"}:
        return _read_secret_file(Path(str(value["file"])))
    raise ValueError("give the secret as a string, {env: NAME} or {file: PATH}")


def _read_secret_file(path: Path) -> str:
    """A secret from a small regular file that not every user can read (as ssh treats private keys)."""
    try:
        data, mode = read_regular_file(path, MAX_SECRET_BYTES + 1, what="secret file")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if mode & 0o004:
        raise ValueError(f"secret file {path} is readable by every user (mode {stat.S_IMODE(mode):04o}): "
                         f"`chmod o-r {path}`, as ssh insists for private keys")
    if len(data) > MAX_SECRET_BYTES:
        raise ValueError(f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes: not a secret")
    try:
        return data.decode().rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError(f"secret file {path} is not UTF-8 text") from None


def read_regular_file(path: Path, limit: int, what: str) -> tuple[bytes, int]:
    """Up to `limit` bytes of `path` and its mode; ValueError naming `what` when it is not a regular file.

    Opened non-blocking and checked before any read: opening a FIFO for reading blocks until a writer
    comes, and reading a FIFO, a device or a socket may never end (a `--validate-config` that hangs)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{what} {path} is not a regular file (a {_kind(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit), mode
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]
TopicPart = Annotated[str, Field(pattern=r"^[^#+/\s][^#+\s]*$", min_length=1, max_length=128)]
# A DNS name or an IP address as an HTTP Host header names it (no port), compared in lower case.
HostName = Annotated[str, Field(pattern=r"^([A-Za-z0-9_.-]+|\[?[0-9A-Fa-f:.]+\]?)$", max_length=253),
                     AfterValidator(lambda name: name.lower().strip("[]").rstrip("."))]


def _not_below(other: str):
    """A field validator: the field must be >= the (earlier) field `other`."""

    def check(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get(other)
        if low is not None and value < low:
            raise ValueError(f"must be >= {other} ({low})")
        return value

    return check


class Section(BaseModel):
    # validate_default: cross-field checks (a token off loopback) run on defaults too.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class WatchdogConfig(Section):
    no_frame_seconds: float = Field(10.0, gt=0, le=3600, description="reopen the camera after this long with no frame")
    frozen_seconds: float = Field(10.0, ge=0, le=3600,
                                  description="reopen a live camera after identical frames for this long (0 = off)")
    backoff_min: float = Field(1.0, gt=0, le=600, description="first wait before reopening, doubled per failure")
    backoff_max: float = Field(30.0, gt=0, le=3600, description="longest wait between reopen attempts")
    healthy_seconds: float = Field(30.0, gt=0, le=3600, description="frames for this long after a reopen make the "
                                   "camera healthy again: the next fault waits backoff_min, not a doubled wait")

    _max_not_below_min = field_validator("backoff_max")(_not_below("backoff_min"))


def _index_as_text(value: Any) -> Any:
    """A camera index given as a number (`source: 0`) is the index as text; anything else is left as it is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else value


class CameraConfig(Section):
    name: str = Field("camera", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="used in topics, metrics and events")
    # A camera index may be written as a YAML or TOML number (`source: 0`).
    source: Annotated[str, BeforeValidator(_index_as_text)] = Field(
        "0", min_length=1, description="picamera2[:N], a camera index, /dev/videoN, a URL or a file")
    loop: bool = Field(False, description="replay a file source forever (otherwise its end ends the run)")
    fps: float = Field(0.0, ge=0, le=240, description="process at most this many frames per second "
                       f"(0 = all; else at least {MIN_FPS:g}, one frame per {1 / MIN_FPS:g} s)")
    realtime: bool = Field(True, description="read a file source at its own frame rate, like a camera (false: "
                           "every frame, as fast as the pipeline takes them, none skipped)")
    watchdog: WatchdogConfig = WatchdogConfig()

    @field_validator("fps")
    @classmethod
    def _fps_zero_or_reachable(cls, value: float) -> float:
        if 0 < value < MIN_FPS:
            raise ValueError(f"must be 0 (every frame) or at least {MIN_FPS:g} (one frame per {1 / MIN_FPS:g} s)")
        return value

    @field_validator("source")
    @classmethod
    def _file_exists(cls, value: str) -> str:
        # A camera or stream may come back and is retried; a missing file never will.
        if not is_device_or_stream(value) and not Path(value).exists():
            raise ValueError("no such file or folder (a file source is not a camera that may come back)")
        return value


# The detection settings are the `detect` command's flags too: declared once, in edge_runtime/face_path.py.
DetectionConfig = DetectionSettings


class JsonlConfig(Section):
    path: str = Field("-", min_length=1, description="a file, or - for stdout")
    max_bytes: int = Field(10_000_000, ge=0, description="rotate the file past this size (0 = never)")
    backups: int = Field(3, ge=0, le=100, description="rotated files kept: PATH.1 ... PATH.N")
    faces: bool = Field(False, description="also a line per face per processed frame (type face: frame, time, "
                        "track, box, label, score, probabilities, as `fer-edge detect --json` writes them)")


class MqttConfig(Section):
    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = Field(None, max_length=128)
    topic_prefix: TopicPart = "fer-edge"
    qos: Literal[0, 1, 2] = 1
    keepalive: int = Field(30, ge=5, le=3600)
    buffer: int = Field(1000, ge=0, le=1_000_000, description="messages kept while the broker is away")
    reconnect_min: float = Field(1.0, gt=0, le=600)
    reconnect_max: float = Field(60.0, gt=0, le=3600)
    stats_interval: float = Field(60.0, ge=0, le=86400, description="seconds between stats messages (0 = off)")
    discovery: bool = Field(True, description="announce sensors by Home Assistant MQTT discovery")
    discovery_prefix: TopicPart = "homeassistant"

    _max_not_below_min = field_validator("reconnect_max")(_not_below("reconnect_min"))

    @field_validator("password")
    @classmethod
    def _password_needs_username(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not info.data.get("username"):
            raise ValueError("needs mqtt.username too (MQTT sends no password without a user name)")
        return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpConfig(Section):
    host: str = Field("127.0.0.1", min_length=1, description="loopback by default; elsewhere needs a token")
    port: int = Field(8080, ge=0, le=65535, description="0 = any free port (logged)")
    token: Secret | None = Field(None, description="required (Bearer header or ?token=) when host is not loopback")
    stream_fps: float = Field(10.0, gt=0, le=60, description="preview stream frame rate")
    jpeg_quality: int = Field(75, ge=10, le=100)
    healthy_within: float = Field(5.0, gt=0, le=3600, description="/healthz is 503 when no frame came for this long")
    # Bounds against clients that hold connections (systemd gives a service 1024 open files: half for HTTP).
    max_viewers: int = Field(4, ge=1, le=64, description="concurrent /stream.mjpeg viewers; more get 503")
    max_connections: int = Field(512, ge=1, le=4096, description="open connections; more get 503 and are closed")
    idle_timeout: float = Field(10.0, gt=0, le=3600,
                                description="close a connection that sends no (complete) request for this long")
    stall_timeout: float = Field(10.0, gt=0, le=3600, description="drop a stream viewer that reads nothing this long")
    allowed_hosts: tuple[HostName, ...] = Field(
        (), description="Host names served besides the bound address (and localhost on loopback): DNS-rebinding check")

    _connections_not_below_viewers = field_validator("max_connections")(_not_below("max_viewers"))

    @field_validator("host")
    @classmethod
    def _unbracket(cls, value: str) -> str:
        """`[::1]` as written in a URL is the address ::1."""
        return value[1:-1] if value.startswith("[") and value.endswith("]") else value

    @field_validator("token")
    @classmethod
    def _token_off_loopback(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        host = info.data.get("host")
        if host is None or is_loopback(host):
            return value
        if not (value and value.get_secret_value()):
            raise ValueError(f"required when http.host ({host}) is not a loopback address")
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters when http.host ({host}) is not a "
                             "loopback address: a short token can be guessed over the network")
        return value


class DaemonConfig(Section):
    camera: CameraConfig = CameraConfig()
    detection: DetectionConfig = DetectionConfig()
    jsonl: JsonlConfig | None = JsonlConfig()
    mqtt: MqttConfig | None = None
    http: HttpConfig | None = HttpConfig()


def read_file(path: Path) -> tuple[dict, dict[tuple, int]]:
    """The raw mapping in a YAML or TOML file, and the line of each key path (YAML only)."""
    try:
        raw, _ = read_regular_file(path, MAX_CONFIG_BYTES + 1, what="config")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from None
    except ValueError:
        kind = _kind(os.stat(path).st_mode)
        raise ConfigError([f"{path}: cannot read config: not a regular file (a {kind})"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB: not a fer-edge config"])
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            return tomllib.loads(text), {}
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
        except RecursionError:
            raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None
    if suffix in (".yaml", ".yml"):
        data, node = _load_yaml(text, path)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: the config must be a mapping of sections, got {type(data).__name__}"])
        return data, _yaml_lines(node)
    raise ConfigError([f"{path}: unknown config format {suffix!r} (use .yaml, .yml or .toml)"])


class _Refused(Exception):
    def __init__(self, message: str, mark, keys: list):
        super().__init__(message)
        self.line = mark.line + 1
        self.key = ".".join(str(k) for k in keys if k is not None)


class _ConfigLoader(yaml.SafeLoader):
    """yaml.safe_load without aliases (an alias bomb expands to gigabytes and no config needs one) and with
    a nesting bound (the composer recurses once per level: 20,000 levels end in RecursionError)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.keys: list = []  # the key path being composed, for the message

    def compose_node(self, parent, index):
        if parent is not None:  # index: the key node of a mapping value, a sequence item's number, None for a key
            self.keys.append(index.value if isinstance(index, yaml.Node) else index)
        try:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise _Refused("YAML aliases (*name) are not allowed in a config", event.start_mark, self.keys)
            if len(self.keys) > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark, self.keys)
            return super().compose_node(parent, index)
        finally:
            if parent is not None:
                self.keys.pop()


def _load_yaml(text: str, path: Path):
    """(data, node tree) of a YAML config; every problem is one line that never quotes the file's text,
    so a syntax error on a secret's line does not print the secret."""
    loader = None
    try:
        loader = _ConfigLoader(text)  # its reader refuses control characters here, before any parsing
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    except _Refused as exc:
        raise ConfigError([f"{path}:{exc.line}: {exc.key or '(top level)'}: {exc}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{where}: not valid YAML: {exc.problem or exc.context}{column}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_lines(root) -> dict[tuple, int]:
    lines: dict[tuple, int] = {}

    def walk(node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                lines[path + (i,)] = value.start_mark.line + 1
                walk(value, path + (i,))

    walk(root, ())
    return lines


# Keys whose value is a path: in a file, a relative one is relative to the file's folder.
PATH_KEYS = (("camera", "source"), ("detection", "model"), ("detection", "verify_model"), ("jsonl", "path"),
             ("http", "token", "file"),
             ("mqtt", "password", "file"))


def resolve_relative_paths(data: dict, folder: Path) -> dict:
    """`data` (a parsed config file) with its relative paths joined to `folder`, in place."""
    for keys in PATH_KEYS:
        parent = data
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        value = parent.get(keys[-1]) if isinstance(parent, dict) else None
        if isinstance(value, str) and value not in ("", "-") and not is_device_or_stream(value) \
                and not Path(value).is_absolute():
            parent[keys[-1]] = str(folder / value)
    return data


def merge(base: dict, overrides: dict) -> dict:
    """`overrides` on top of `base`, section by section; a None override switches a section off."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | os.PathLike | None = None, overrides: dict | None = None) -> DaemonConfig:
    """The file at `path` (if any) with `overrides` on top, validated; ConfigError lists every problem."""
    data, lines = read_file(Path(path)) if path is not None else ({}, {})
    if path is not None:
        # Flags (the overrides) stay relative to the working folder, like any command's arguments.
        resolve_relative_paths(data, Path(os.path.abspath(path)).parent)
    data = merge(data, overrides or {})
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(err, path, lines) for err in exc.errors()]) from None


def _describe(err: dict, path, lines: dict[tuple, int]) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or in the wrong section?)"
    elif err["type"] == "missing":
        message = "required key is missing"
    elif not SECRET_KEYS & {str(p) for p in loc} and not isinstance(err.get("input"), dict | list):
        message += f" (got {err['input']!r})"
    where = ""
    if path is not None:
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        where = f"{path}:{line}: " if line else f"{path}: "
    return f"{where}{key}: {message}"


def _host_port(text: str) -> dict:
    """HOST:PORT, HOST, :PORT, PORT or [IPv6]:PORT -> {"host", "port"}; a port that is not a number is
    passed on as given, so validation names the key."""
    if text.isdigit():
        host, port = "", text
    elif text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    out: dict[str, Any] = {"host": host} if host else {}
    if port:
        out["port"] = int(port) if port.isdigit() else port
    return out


def cli_overrides(*, source: str | None = None, model: str | None = None, loop: bool = False,
                  http: str | None = None, jsonl: str | None = None, mqtt: str | None = None,
                  camera_name: str | None = None) -> dict:
    """The `fer-edge run` flags as a config fragment; `off` switches the http or jsonl output off."""
    camera: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if source is not None:
        camera["source"] = source
    if loop:
        camera["loop"] = True
    if camera_name is not None:
        camera["name"] = camera_name
    if camera:
        out["camera"] = camera
    if model is not None:
        out["detection"] = {"model": model}
    if http is not None:
        out["http"] = None if http == "off" else _host_port(http)
    if jsonl is not None:
        out["jsonl"] = None if jsonl == "off" else {"path": jsonl}
    if mqtt is not None:
        out["mqtt"] = _host_port(mqtt)
    return out
