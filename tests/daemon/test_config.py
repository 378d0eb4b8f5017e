"""The daemon's config: YAML and TOML, CLI overrides, secrets, and bad configs exiting 2 with the key named."""

import subprocess
import textwrap
from pathlib import Path

import pytest

from edge_runtime.cli import main
from edge_runtime.daemon.config import cli_overrides, load_config

from .conftest import SAMPLE, daemon_command

GOOD_YAML = """\
camera:
  name: porch
  source: /dev/video0
  fps: 10
  watchdog: {no_frame_seconds: 5, frozen_seconds: 8}
mqtt:
  host: broker.lan
  username: fer
  password: {env: FER_TEST_MQTT_PASSWORD}
http:
  host: 0.0.0.0
  port: 8081
  token: {file: TOKEN_FILE}
jsonl:
  path: /var/lib/fer-edge/events.jsonl
  max_bytes: 1000000
"""

GOOD_TOML = """\
[camera]
name = "hall"
source = "picamera2"

[detection]
detect_every = 5

[mqtt]
host = "127.0.0.1"
port = 1884
"""


def write(tmp_path, name, text, mode=0o644):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def secret(tmp_path, name, text):
    """A secret file as an administrator makes one: readable by its owner (and group) only."""
    return write(tmp_path, name, text, mode=0o640)


def test_yaml_with_secrets_from_env_and_file(tmp_path, monkeypatch):
    token = secret(tmp_path, "token", "s3cret-t0ken-of-24-chars\n")
    path = write(tmp_path, "config.yaml", GOOD_YAML.replace("TOKEN_FILE", str(token)))
    monkeypatch.setenv("FER_TEST_MQTT_PASSWORD", "hunter2")
    config = load_config(path)
    assert config.camera.name == "porch" and config.camera.fps == 10
    assert config.camera.watchdog.frozen_seconds == 8
    assert config.mqtt.password.get_secret_value() == "hunter2"
    assert config.http.token.get_secret_value() == "s3cret-t0ken-of-24-chars"
    # Secrets never show in a printed config.
    assert "hunter2" not in repr(config) and "s3cret" not in repr(config)


def test_toml_and_cli_overrides(tmp_path):
    path = write(tmp_path, "config.toml", GOOD_TOML)
    config = load_config(path, cli_overrides(source=str(SAMPLE), loop=True, http="127.0.0.1:9000",
                                             mqtt="broker:1885", camera_name="door", jsonl="off"))
    assert (config.camera.name, config.camera.source, config.camera.loop) == ("door", str(SAMPLE), True)
    assert config.detection.detect_every == 5
    assert (config.mqtt.host, config.mqtt.port) == ("broker", 1885)
    assert (config.http.host, config.http.port) == ("127.0.0.1", 9000)
    assert config.jsonl is None
    assert load_config(None, cli_overrides(http="off")).http is None


def test_validate_config_ok(tmp_path, capsys):
    path = write(tmp_path, "config.toml", GOOD_TOML)
    assert main(["run", "--validate-config", str(path)]) == 0
    assert f"{path}: ok" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "expected"), [
    ("camera:\n  nmae: porch\n", ["config.yaml:2: camera.nmae: unknown key"]),
    ("camera:\n  fps: -1\n", ["config.yaml:2: camera.fps: Input should be greater than or equal to 0 (got -1)"]),
    ("mqtt:\n  port: 1883\n", ["config.yaml:1: mqtt.host: required key is missing"]),
    ("mqtt:\n  host: b\n  port: 70000\n  password: {env: FER_TEST_UNSET_VARIABLE}\n",
     ["config.yaml:3: mqtt.port:", "config.yaml:4: mqtt.password: environment variable FER_TEST_UNSET_VARIABLE"]),
    ("http:\n  host: 0.0.0.0\n", ["http.token: required when http.host (0.0.0.0) is not a loopback address"]),
    ("camera:\n  watchdog:\n    backoff_min: 10\n    backoff_max: 1\n",
     ["config.yaml:4: camera.watchdog.backoff_max: must be >= backoff_min"]),
    ("mqtt:\n  host: b\n  topic_prefix: a/#\n", ["mqtt.topic_prefix: String should match pattern"]),
    ("mqtt:\n  host: b\n  password: pw\n", ["config.yaml:3: mqtt.password: needs mqtt.username too"]),
    ("camera: [1, 2]\n", ["camera: Input should be a valid dictionary"]),
    ("camera:\n  name: porch\n bad indent\n", ["not valid YAML"]),
])
def test_bad_yaml_exits_2_naming_every_key(tmp_path, capsys, text, expected):
    path = write(tmp_path, "config.yaml", text)
    assert main(["run", "--validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-edge run: invalid config:")
    for part in expected:
        assert part in err
    assert "Traceback" not in err


def test_bad_toml_and_bad_overrides_exit_2(tmp_path, capsys):
    path = write(tmp_path, "config.toml", "[camera]\nsource = \n")
    assert main(["run", "--validate-config", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["run", "--validate-config", str(write(tmp_path, "c.toml", GOOD_TOML)), "--mqtt", "b:port"]) == 2
    assert "mqtt.port: Input should be a valid integer" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read config" in capsys.readouterr().err
    assert main(["run", "--config", str(write(tmp_path, "c.ini", "x"))]) == 2
    assert "unknown config format '.ini'" in capsys.readouterr().err


def test_run_with_a_bad_config_is_a_message_not_a_traceback(tmp_path):
    path = write(tmp_path, "config.yaml", "http:\n  port: web\n")
    proc = subprocess.run(daemon_command("--config", str(path)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "http.port: Input should be a valid integer" in proc.stderr and "Traceback" not in proc.stderr


def test_the_readme_config_example_is_valid(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## The camera daemon: `fer-edge run`", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    token = secret(tmp_path, "http-token", "a-token-of-some-length\n")
    monkeypatch.setenv("FER_EDGE_MQTT_PASSWORD", "pw")
    config = load_config(write(tmp_path, "config.yaml", example.replace("/etc/fer-edge/http-token", str(token))))
    assert config.camera.name == "porch" and config.http.token.get_secret_value() == "a-token-of-some-length"
