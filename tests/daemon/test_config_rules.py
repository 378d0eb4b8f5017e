"""The config's rules one by one: secrets, paths relative to the file, overrides, host:port flags, loopback
and token rules, bounded reading, and the one line per problem."""

from __future__ import annotations

import os

import pytest

from edge_runtime.daemon.config import (
    MAX_SECRET_BYTES,
    ConfigError,
    cli_overrides,
    is_loopback,
    load_config,
    merge,
    resolve_relative_paths,
)


def write(tmp_path, name: str, text: str | bytes, mode: int = 0o600):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(mode)
    return path


def problems(tmp_path, text: str, name: str = "c.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, name, text, 0o644))
    return info.value.problems


@pytest.mark.parametrize(("text", "flag", "expected"), [
    ("9000", None, {"port": 9000}),
    (":9000", None, {"port": 9000}),
    ("0.0.0.0:81", None, {"host": "0.0.0.0", "port": 81}),
    ("broker.lan", None, {"host": "broker.lan"}),
    ("[::1]:8080", None, {"host": "::1", "port": 8080}),
    ("[::1]", None, {"host": "::1"}),
    ("::1", None, {"host": "::1"}),
    ("b:port", None, {"host": "b", "port": "port"}),
])
def test_host_port_flags(text, flag, expected):
    assert cli_overrides(http=text) == {"http": expected}
    assert cli_overrides(mqtt=text) == {"mqtt": expected}


def test_run_flags_as_a_config_fragment():
    assert cli_overrides() == {}
    assert cli_overrides(source="0", loop=True, camera_name="door", model="m.tflite", jsonl="e.jsonl") == {
        "camera": {"source": "0", "loop": True, "name": "door"}, "detection": {"model": "m.tflite"},
        "jsonl": {"path": "e.jsonl"}}
    assert cli_overrides(http="off", jsonl="off") == {"http": None, "jsonl": None}
    assert cli_overrides(loop=False) == {}


def test_overrides_merge_section_by_section():
    base = {"camera": {"name": "a", "watchdog": {"no_frame_seconds": 5}}, "http": {"port": 1}}
    merged = merge(base, {"camera": {"watchdog": {"frozen_seconds": 2}}, "http": None, "jsonl": {"path": "x"}})
    assert merged == {"camera": {"name": "a", "watchdog": {"no_frame_seconds": 5, "frozen_seconds": 2}},
                      "http": None, "jsonl": {"path": "x"}}
    assert base == {"camera": {"name": "a", "watchdog": {"no_frame_seconds": 5}}, "http": {"port": 1}}
    assert merge({"camera": "x"}, {"camera": {"name": "b"}}) == {"camera": {"name": "b"}}


def test_relative_paths_in_a_file_are_relative_to_its_folder(tmp_path):
    folder = tmp_path / "etc"
    data = {"camera": {"source": "clip.mp4"}, "detection": {"model": "/abs/m.tflite"},
            "jsonl": {"path": "-"}, "http": {"token": {"file": "token"}}, "mqtt": {"password": {"env": "X"}}}
    resolve_relative_paths(data, folder)
    assert data == {"camera": {"source": str(folder / "clip.mp4")}, "detection": {"model": "/abs/m.tflite"},
                    "jsonl": {"path": "-"}, "http": {"token": {"file": str(folder / "token")}},
                    "mqtt": {"password": {"env": "X"}}}
    cameras = {"camera": {"source": "0"}, "mqtt": None, "jsonl": {"path": ""}}
    assert resolve_relative_paths(cameras, folder) == {"camera": {"source": "0"}, "mqtt": None,
                                                       "jsonl": {"path": ""}}
    stream = {"camera": {"source": "rtsp://cam/1"}, "mqtt": {"password": {"file": "pw"}}}
    assert resolve_relative_paths(stream, folder) == {"camera": {"source": "rtsp://cam/1"},
                                                      "mqtt": {"password": {"file": str(folder / "pw")}}}


def test_a_config_file_finds_its_model_and_events_file_beside_it(tmp_path, monkeypatch):
    model = write(tmp_path, "m.tflite", b"x", 0o644)
    config = load_config(write(tmp_path, "c.yaml", "detection: {model: m.tflite}\njsonl: {path: events.jsonl}\n",
                               0o644))
    assert config.detection.model == model and config.jsonl.path == str(tmp_path / "events.jsonl")
    # Flags stay relative to the working folder.
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {"jsonl": {"path": "here.jsonl"}}).jsonl.path == "here.jsonl"


def test_secret_files(tmp_path):
    good = write(tmp_path, "ok", "s3cret-t0ken-of-24-chars\r\n", 0o640)
    config = load_config(None, {"http": {"host": "0.0.0.0", "token": {"file": str(good)}}})
    assert config.http.token.get_secret_value() == "s3cret-t0ken-of-24-chars"
    cases = [
        (write(tmp_path, "world", "x" * 20, 0o644), r"is readable by every user \(mode 0644\): `chmod o-r"),
        (write(tmp_path, "big", "x" * (MAX_SECRET_BYTES + 1)), f"is larger than {MAX_SECRET_BYTES} bytes"),
        (write(tmp_path, "latin1", b"\xe9" * 20), "is not UTF-8 text"),
        (tmp_path / "missing", "cannot read secret file .*missing: No such file or directory"),
        (tmp_path, r"secret file .* is not a regular file \(a folder\)"),
        ("/dev/null", "secret file /dev/null is not a regular file"),
    ]
    for path, message in cases:
        with pytest.raises(ConfigError, match=r"http\.token: .*" + message):
            load_config(None, {"http": {"host": "0.0.0.0", "token": {"file": str(path)}}})
    exact = write(tmp_path, "exact", "y" * MAX_SECRET_BYTES)
    config = load_config(None, {"http": {"host": "0.0.0.0", "token": {"file": str(exact)}}})
    assert len(config.http.token.get_secret_value()) == MAX_SECRET_BYTES


def test_secret_forms(monkeypatch):
    monkeypatch.setenv("FER_TEST_TOKEN", "from-the-environment-1")
    config = load_config(None, {"http": {"host": "0.0.0.0", "token": {"env": "FER_TEST_TOKEN"}}})
    assert config.http.token.get_secret_value() == "from-the-environment-1"
    with pytest.raises(ConfigError, match=r"give the secret as a string, \{env: NAME\} or \{file: PATH\}"):
        load_config(None, {"http": {"host": "0.0.0.0", "token": {"env": "X", "file": "y"}}})


def test_loopback_hosts():
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("127.8.9.1")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    assert not is_loopback("localhost.example.org")


def test_http_host_and_token_rules():
    assert load_config(None, {"http": {"host": "[::1]"}}).http.host == "::1"
    assert load_config(None, {"http": {"host": "localhost"}}).http.token is None
    with pytest.raises(ConfigError, match=r"http\.token: must be at least 16 characters when http\.host \(0\.0\.0"):
        load_config(None, {"http": {"host": "0.0.0.0", "token": "a" * 15}})
    assert load_config(None, {"http": {"host": "0.0.0.0", "token": "a" * 16}}).http.token.get_secret_value() == "a" * 16
    with pytest.raises(ConfigError, match=r"http\.token: required when http\.host \(10\.0\.0\.1\)"):
        load_config(None, {"http": {"host": "10.0.0.1", "token": ""}})
    hosts = load_config(None, {"http": {"allowed_hosts": ["Cam.Example.", "[::1]"]}}).http.allowed_hosts
    assert hosts == ("cam.example", "::1")


def test_bounds_between_fields():
    config = load_config(None, {"mqtt": {"host": "b", "reconnect_min": 5, "reconnect_max": 5}})
    assert config.mqtt.reconnect_max == 5
    with pytest.raises(ConfigError, match=r"mqtt\.reconnect_max: must be >= reconnect_min \(5\.0\)"):
        load_config(None, {"mqtt": {"host": "b", "reconnect_min": 5, "reconnect_max": 4}})
    with pytest.raises(ConfigError, match=r"http\.max_connections: must be >= max_viewers \(8\)"):
        load_config(None, {"http": {"max_viewers": 8, "max_connections": 7}})
    # A bad lower field is reported once, not again as a failed comparison.
    found = [p for p in _problems(None, {"mqtt": {"host": "b", "reconnect_min": -1, "reconnect_max": 4}})]
    assert len(found) == 1 and found[0].startswith("mqtt.reconnect_min:")


def _problems(path, overrides) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value.problems


def test_a_missing_file_source_is_refused_but_a_camera_is_not(tmp_path):
    assert load_config(None, {"camera": {"source": "/dev/video7"}}).camera.source == "/dev/video7"
    assert load_config(None, {"camera": {"source": "rtsp://cam/1"}}).camera.source == "rtsp://cam/1"
    assert _problems(None, {"camera": {"source": str(tmp_path / "gone.mp4")}}) == [
        "camera.source: no such file or folder (a file source is not a camera that may come back) "
        f"(got {str(tmp_path / 'gone.mp4')!r})"]
    assert _problems(None, {"detection": {"model": str(tmp_path)}})[0].startswith(
        "detection.model: no such model file")


def test_detection_settings_reach_the_detector_and_pipeline():
    d = load_config(None, {"detection": {"detect_every": 7, "classify_every": 3, "smoothing": 0.5, "min_size": 40,
                                         "min_neighbors": 4, "scale_factor": 1.2, "detect_width": 0}}).detection
    haar, pipe = d.haar_options(), d.pipeline_options()
    assert (haar.min_size, haar.min_neighbors, haar.scale_factor, haar.detect_width) == (40, 4, 1.2, 0)
    assert load_config(None, {"detection": {"verify_cascade": ""}}).detection.haar_options().verify_cascade == ""
    assert (pipe.detect_every, pipe.classify_every, pipe.smoothing) == (7, 3, 0.5)


def test_detection_schedule_settings_reach_the_pipeline_within_bounds():
    d = load_config(None, {"detection": {"cut_below": -1, "motion": 0, "follow_score": 0.8,
                                         "confirm_score": 0, "verify_cascade": ""}}).detection
    pipe = d.pipeline_options()
    assert d.haar_options().verify_cascade == ""
    assert (pipe.cut_below, pipe.motion, pipe.follow_score, pipe.confirm_score) == (-1, 0, 0.8, 0)
    found = _problems(None, {"detection": {"cut_below": 1.5, "motion": -0.1, "follow_score": 1, "confirm_score": -1}})
    assert [p.split(":")[0] for p in found] == ["detection.cut_below", "detection.motion", "detection.follow_score",
                                                "detection.confirm_score"]


def test_problems_name_file_line_key_and_never_a_secret(tmp_path):
    found = problems(tmp_path, "camera:\n  fps: 1000\nmqtt:\n  host: b\n  password: hunter2\n")
    assert found[0] == f"{tmp_path / 'c.yaml'}:2: camera.fps: Input should be less than or equal to 240 (got 1000)"
    assert found[1] == f"{tmp_path / 'c.yaml'}:5: mqtt.password: needs mqtt.username too (MQTT sends no password " \
                       "without a user name)"
    assert not any("hunter2" in p for p in found)
    assert problems(tmp_path, "[camera]\nfps = 1000\n", "c.toml") == [
        f"{tmp_path / 'c.toml'}: camera.fps: Input should be less than or equal to 240 (got 1000)"]
    assert _problems(None, {"bogus": {}}) == ["bogus: unknown key (misspelt, or in the wrong section?)"]
    lines = problems(tmp_path, "mqtt:\n  port: 1\n  keepalive: 2\n")
    assert f"{tmp_path / 'c.yaml'}:1: mqtt.host: required key is missing" in lines


def test_reading_is_bounded(tmp_path):
    assert problems(tmp_path, "a: &x [1]\nb: *x\n") == [
        f"{tmp_path / 'c.yaml'}:2: b: YAML aliases (*name) are not allowed in a config"]
    deep = "a:\n" + "".join("  " * i + "  k:\n" for i in range(1, 40)) + "  " * 40 + "  1\n"
    found = problems(tmp_path, deep)
    assert len(found) == 1 and "nested deeper than 32 levels" in found[0]
    assert problems(tmp_path, "[1, 2]\n") == [
        f"{tmp_path / 'c.yaml'}: the config must be a mapping of sections, got list"]
    assert load_config(write(tmp_path, "empty.yaml", "", 0o644)).camera.name == "camera"
    big = write(tmp_path, "big.yaml", "#" * ((1 << 20) + 1), 0o644)
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 1 MiB: not a fer-edge config"):
        load_config(big)
    latin1 = write(tmp_path, "l.yaml", b"camera: {name: caf\xe9}\n", 0o644)
    with pytest.raises(ConfigError, match=r"l\.yaml: not UTF-8 text \(byte 18\)"):
        load_config(latin1)
    with pytest.raises(ConfigError, match=r"c\.yaml:3: not valid YAML: .*\(column 1\)$"):
        load_config(write(tmp_path, "c.yaml", "camera:\n  name: [porch\n", 0o644))
    assert os.path.exists(tmp_path / "c.yaml")


def test_problems_are_one_per_line():
    assert str(ConfigError(["a: one", "b: two"])) == "a: one\nb: two"


def test_secret_files_keep_every_character_but_the_line_end(tmp_path):
    for name, text, kept in [("space", "0123456789abcdef \n", "0123456789abcdef "),
                             ("x", "0123456789abcdeX\r\n", "0123456789abcdeX")]:
        path = write(tmp_path, name, text, 0o640)
        config = load_config(None, {"http": {"host": "0.0.0.0", "token": {"file": str(path)}}})
        assert config.http.token.get_secret_value() == kept
    # Only the read bit for others matters: execute alone reveals nothing.
    path = write(tmp_path, "odd-mode", "0123456789abcdef", 0o641)
    assert load_config(None, {"http": {"host": "0.0.0.0", "token": {"file": str(path)}}}).http.token is not None


def test_a_secret_in_another_form_is_refused_with_the_forms_named():
    assert _problems(None, {"http": {"host": "0.0.0.0", "token": {"vault": "x"}}}) == [
        "http.token: give the secret as a string, {env: NAME} or {file: PATH}"]


def test_size_limit_and_formats(tmp_path):
    exact = write(tmp_path, "exact.yaml", "#" * (1 << 20), 0o644)
    assert load_config(exact).camera.name == "camera"  # exactly the limit is still read
    assert load_config(write(tmp_path, "c.yml", "camera: {name: yml}\n", 0o644)).camera.name == "yml"
    deep = write(tmp_path, "deep.toml", "x = " + "[" * 3000 + "]" * 3000, 0o644)
    assert _problems(deep, None) == [f"{deep}: not valid TOML: nested too deeply"]


def test_yaml_problems_name_the_key_path_and_line(tmp_path):
    assert problems(tmp_path, "camera:\n  a: &x 1\n  b: *x\n") == [
        f"{tmp_path / 'c.yaml'}:3: camera.b: YAML aliases (*name) are not allowed in a config"]
    assert problems(tmp_path, "camera:\n  name: [porch\n") == [
        f"{tmp_path / 'c.yaml'}:3: not valid YAML: expected ',' or ']', but got '<stream end>' (column 1)"]
    assert problems(tmp_path, "camera:\n  name: a\x07\n") == [
        f"{tmp_path / 'c.yaml'}: not valid YAML: unacceptable character #x0007: special characters are not "
        'allowed in "<unicode string>", position 17']
    found = problems(tmp_path, "http:\n  allowed_hosts:\n    - ok.example\n    - bad host!\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'c.yaml'}:4: http.allowed_hosts.1: String should")


def test_nesting_up_to_the_limit_is_read(tmp_path):
    def nested(levels: int) -> str:
        return "a:\n" + "".join("  " * i + "  k:\n" for i in range(1, levels)) + "  " * levels + "  1\n"

    assert not any("nested deeper" in p for p in problems(tmp_path, nested(32)))
    assert "nested deeper than 32 levels" in problems(tmp_path, nested(33))[0]


def test_the_face_verifier_settings_reach_the_detector_and_a_relative_path_is_the_files(tmp_path):
    model = tmp_path / "models" / "my_verifier.tflite"
    model.parent.mkdir()
    model.write_bytes(b"x")
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  verify_model: models/my_verifier.tflite\n  verify_threshold: 0.35\n")
    haar = load_config(path).detection.haar_options()
    assert (haar.verify_model, haar.verify_threshold) == (str(model), 0.35)
    assert load_config(None, {"detection": {"verify_model": ""}}).detection.haar_options().verify_model == ""
    assert load_config(None).detection.haar_options().verify_model is None  # the shipped verifier
    found = _problems(None, {"detection": {"verify_model": str(tmp_path / "nope.tflite"), "verify_threshold": 1.01}})
    assert [p.split(":")[0] for p in found] == ["detection.verify_model", "detection.verify_threshold"]
    assert "no such model file" in found[0]
