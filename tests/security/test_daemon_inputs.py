"""Probes of what the daemon reads from its config: each hostile or careless input ends in one line naming
the key (or file) and what is wrong, quickly, without echoing a secret. Every probe is bounded (small
files, no network)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime.cli import SAMPLE_VIDEO, main
from edge_runtime.daemon.config import ConfigError, cli_overrides, load_config

MODEL = Path(__file__).resolve().parents[2] / "models" / "fer_mobile_int8.tflite"
TOKEN = "a-long-enough-token-0123"


def refused(path, capsys, *extra) -> str:
    """`fer-edge run --validate-config PATH`: exit 2 and one problem line; the line, within two seconds."""
    started = time.monotonic()
    assert main(["run", "--validate-config", str(path), *extra]) == 2
    assert time.monotonic() - started < 2.0
    err = capsys.readouterr().err
    assert err.startswith("fer-edge run: invalid config:\n  ") and err.count("\n") == 2, err
    return err.splitlines()[1].strip()


def refused_within_bounds(path) -> str:
    """`refused`, in a process with 2 GiB of address space and 20 s: a regression fails, it does not swap."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--validate-config", str(path)],
                          capture_output=True, text=True, timeout=20, preexec_fn=limit)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 2, proc.stderr[-2000:]
    return proc.stderr.splitlines()[1].strip()


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ncamera:\n  name: *a9\n")
    assert refused_within_bounds(path) == f"{path}:2: a1.0: YAML aliases (*name) are not allowed in a config"


@pytest.mark.parametrize("name, text, message", [
    ("deep.yaml", "camera: " + "[" * 20_000 + "]" * 20_000 + "\n", ":1: camera.0.0.0."),
    ("deep.toml", "x = " + "[" * 20_000 + "]" * 20_000 + "\n", ": not valid TOML: nested too deeply"),
])
def test_deep_nesting_is_refused(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    line = refused(path, capsys)
    assert line.startswith(str(path)) and message in line
    if name.endswith(".yaml"):
        assert line.endswith(": nested deeper than 32 levels")


def test_a_huge_config_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 200_000)
    assert refused(path, capsys) == f"{path}: larger than 1 MiB: not a fer-edge config"


def test_a_secret_file_that_never_ends_is_refused(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("http:\n  token: {file: /dev/zero}\n")
    assert refused_within_bounds(path) == (f"{path}:2: http.token: secret file /dev/zero is not a regular file "
                                           "(a character device)")
    big = tmp_path / "big-secret"
    big.write_bytes(b"x" * 100_000)
    big.chmod(0o600)
    path.write_text(f"mqtt:\n  host: b\n  username: u\n  password: {{file: {big}}}\n")
    assert refused(path, capsys) == (f"{path}:4: mqtt.password: secret file {big} is larger than 4096 bytes: "
                                     "not a secret")


def test_a_secret_file_everyone_can_read_is_refused_like_an_ssh_key(tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o644)
    path = tmp_path / "config.yaml"
    path.write_text(f"http:\n  host: 0.0.0.0\n  token: {{file: {token}}}\n")
    assert refused(path, capsys) == (f"{path}:3: http.token: secret file {token} is readable by every user (mode "
                                     f"0644): `chmod o-r {token}`, as ssh insists for private keys")
    token.chmod(0o640)
    assert load_config(path).http.token.get_secret_value() == TOKEN


def test_a_short_token_is_refused_off_loopback_only(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("http:\n  host: 0.0.0.0\n  token: fifteen-chars-x\n")
    assert refused(path, capsys) == (f"{path}:3: http.token: must be at least 16 characters when http.host "
                                     "(0.0.0.0) is not a loopback address: a short token can be guessed over the "
                                     "network")
    path.write_text("http:\n  host: 0.0.0.0\n  token: sixteen-chars-xx\n")
    assert load_config(path).http.token.get_secret_value() == "sixteen-chars-xx"
    path.write_text("http:\n  host: 127.0.0.1\n  token: short\n")
    assert load_config(path).http.token.get_secret_value() == "short"


def test_a_syntax_error_on_a_secret_line_does_not_echo_the_secret(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("mqtt:\n  host: b\n  username: u\n  password: hunter2-is-my: password\n")
    line = refused(path, capsys)
    assert line == f"{path}:4: not valid YAML: mapping values are not allowed here (column 26)"
    assert "hunter2" not in line


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch, capsys):
    site = tmp_path / "release"
    (site / "models").mkdir(parents=True)
    (site / "config").mkdir()
    for path in (MODEL, MODEL.with_suffix(".json")):
        shutil.copyfile(path, site / "models" / path.name)
    shutil.copyfile(SAMPLE_VIDEO, site / "clip.mp4")
    (site / "config" / "token").write_text(TOKEN)
    (site / "config" / "token").chmod(0o600)
    config = site / "config" / "fer-edge.yaml"
    config.write_text("camera:\n  source: ../clip.mp4\ndetection:\n  model: ../models/fer_mobile_int8.tflite\n"
                      "jsonl:\n  path: events.jsonl\nhttp:\n  host: 0.0.0.0\n  token: {file: token}\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_config("release/config/fer-edge.yaml")
    assert Path(loaded.camera.source) == site / "config" / ".." / "clip.mp4"
    assert loaded.detection.model.resolve() == (site / "models" / "fer_mobile_int8.tflite").resolve()
    assert Path(loaded.jsonl.path) == site / "config" / "events.jsonl"
    assert loaded.http.token.get_secret_value() == TOKEN
    # Flags stay relative to the working folder, and a camera or stream is no path at all.
    flags = load_config(config, cli_overrides(source="release/clip.mp4", jsonl="out.jsonl"))
    assert (flags.camera.source, flags.jsonl.path) == ("release/clip.mp4", "out.jsonl")
    for camera in ("0", "/dev/video7", "rtsp://cam.lan/stream", "picamera2:1"):
        assert load_config(config, cli_overrides(source=camera)).camera.source == camera
    # --validate-config checks what run will open: a model missing from the config's folder is named.
    config.write_text("detection:\n  model: models/fer_mobile_int8.tflite\n")
    line = refused(config, capsys)
    assert line.startswith(f"{config}:2: detection.model: no such model file (got '{site / 'config' / 'models'}")


def test_the_daemon_runs_from_anywhere_with_a_config_of_relative_paths(tmp_path):
    site = tmp_path / "release"
    (site / "models").mkdir(parents=True)
    for path in (MODEL, MODEL.with_suffix(".json")):
        shutil.copyfile(path, site / "models" / path.name)
    config = site / "fer-edge.yaml"
    config.write_text(f"camera:\n  source: {SAMPLE_VIDEO}\ndetection:\n"
                      "  model: models/fer_mobile_int8.tflite\njsonl:\n  path: events.jsonl\nhttp: null\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--config", str(config)], cwd=elsewhere,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"type":"new"' in (site / "events.jsonl").read_text()


def test_a_missing_file_source_is_an_error_at_start(tmp_path):
    """A file is not a camera that may come back: exit 2 at once, instead of reopening it forever."""
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--source", str(tmp_path / "gone.mp4"),
                           "--model", str(MODEL), "--http", "off"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr == (f"fer-edge run: invalid config:\n  camera.source: no such file or folder (a file source "
                           f"is not a camera that may come back) (got '{tmp_path / 'gone.mp4'}')\n")


def test_config_errors_are_config_errors_in_the_library_too(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("a: &x [1]\nb: *x\n")
    with pytest.raises(ConfigError, match="aliases"):
        load_config(path)


@pytest.mark.parametrize("where", ["secret", "config"])
def test_a_fifo_as_a_secret_or_config_file_is_refused_without_waiting_for_a_writer(tmp_path, where):
    """Issue 24, N33: opening a FIFO blocks until a writer comes, so `--validate-config` (and `run`) hung."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    if where == "secret":
        path = tmp_path / "config.yaml"
        path.write_text(f"http:\n  token: {{file: {fifo}}}\n")
        expected = f"{path}:2: http.token: secret file {fifo} is not a regular file (a FIFO)"
    else:
        path = fifo.rename(tmp_path / "config.yaml")
        expected = f"{path}: cannot read config: not a regular file (a FIFO)"
    for command in ("--validate-config", "--config"):
        try:
            proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", command, str(path)],
                                  capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`fer-edge run {command}` waits for a writer to the FIFO")
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.splitlines()[1:] == [f"  {expected}"], proc.stderr[-2000:]


@pytest.mark.parametrize("fps", ["1.0e-300", "0.001", "-1"])
def test_an_fps_too_low_to_wait_for_is_refused(tmp_path, capsys, fps):
    """Issue 24, N36: 1e-300 validated, then the first frame's wait overflowed (OverflowError)."""
    path = tmp_path / "config.yaml"
    path.write_text(f"camera:\n  fps: {fps}\n")
    line = refused(path, capsys)
    assert line.startswith(f"{path}:2: camera.fps: ") and ("at least 0.01" in line or "greater than or equal" in line)
    path.write_text("camera:\n  fps: 0.01\n")
    assert load_config(path).camera.fps == 0.01


def test_a_camera_index_may_be_a_yaml_number(tmp_path, capsys):
    """The README's `source: picamera2  # or 0`: an unquoted 0 is the camera index 0, as the text "0" is."""
    path = tmp_path / "config.yaml"
    path.write_text("camera:\n  source: 0\n")
    assert load_config(path).camera.source == "0"
    path.write_text("camera:\n  source: 2\n")
    assert load_config(path).camera.source == "2"
    toml = tmp_path / "config.toml"
    toml.write_text("[camera]\nsource = 1\n")
    assert load_config(toml).camera.source == "1"
    path.write_text("camera:\n  source: true\n")
    assert refused(path, capsys).startswith(f"{path}:2: camera.source: Input should be a valid string")


def shipped_copy(tmp_path, **preprocessing) -> Path:
    """The shipped int8 model beside a copy of its metadata, with `preprocessing` changed."""
    model = tmp_path / "model.tflite"
    shutil.copyfile(MODEL, model)
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    meta["preprocessing"].update(preprocessing)
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model


@pytest.mark.parametrize("margin", [float("nan"), 200, -0.5, "wide"])
def test_model_metadata_out_of_bounds_is_refused_when_the_model_loads(tmp_path, margin):
    """Issue 24, N43: `margin: NaN` was a traceback at the first face; `margin: 200` a 3.6 GB crop per face.
    The loader names the file and the field, before any frame."""
    from edge_runtime.classifier import Classifier
    from edge_runtime.metadata import MetadataError

    model = shipped_copy(tmp_path, margin=margin)
    with pytest.raises(MetadataError) as error:
        Classifier(model)
    message = str(error.value)
    assert message.startswith(f"{model.with_suffix('.json')}: 'preprocessing.margin' must be a number from 0 to 1")
    assert "\n" not in message


@pytest.mark.parametrize("changes, field", [
    ({"preprocessing": {"size": 100000}}, "'preprocessing.size'"),
    ({"preprocessing": {"size": 48, "color": "rgb"}}, "'preprocessing.color'"),
    ({"quantization": {"output": {"dtype": "int8", "scale": float("inf"), "zero_point": -128}}},
     "'quantization.output'.scale"),
    ({"quantization": {"input": {"dtype": "int8", "scale": 1.0, "zero_point": 4096}}},
     "'quantization.input'.zero_point"),
    ({"labels": ["a", "a", "b", "c", "d", "e", "f"]}, "'labels'"),
    ({"sha256": 12}, "'sha256'"),
])
def test_every_field_the_runtime_reads_is_bounded(tmp_path, changes, field):
    from edge_runtime.classifier import Classifier
    from edge_runtime.metadata import MetadataError

    model = shipped_copy(tmp_path)
    meta = {**json.loads(model.with_suffix(".json").read_text()), **changes}
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(MetadataError, match=f"^{re.escape(str(model.with_suffix('.json')))}: {re.escape(field)}"):
        Classifier(model)


def test_the_daemon_refuses_a_nan_margin_in_one_line(tmp_path):
    model = shipped_copy(tmp_path, margin=float("nan"))
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--source", str(SAMPLE_VIDEO),
                           "--model", str(model), "--http", "off", "--jsonl", "off"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fer-edge run: {model.with_suffix('.json')}: 'preprocessing.margin' must be a number from 0 to 1 "
        "(a fraction of the face's side), got nan")
