"""What a first-time user of `fer-edge bundle`, `bundle verify` and `fleet` trips over (issue 24, item 11): a
bundle that installs but cannot run is refused when it is made, with one sentence; help and messages say what they
mean once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from edge_runtime.cli import main

REPO = Path(__file__).resolve().parents[2]


def one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def bundle(*args: str) -> int:
    return main(["bundle", *args])


def test_a_keras_model_is_refused_when_the_bundle_is_made(tmp_path, capsys, own_wheel):
    out = tmp_path / "b.tar.gz"
    assert bundle("--model", str(REPO / "models" / "fer_cnn.keras"), "--out", str(out), "--wheel",
                  str(own_wheel)) == 1
    assert "fer_cnn.keras: not a .tflite model: bundle the int8 TensorFlow Lite build" in one_sentence(capsys)
    assert not out.exists()


def test_a_file_that_is_no_tflite_model_is_refused(tmp_path, capsys, own_wheel):
    model = tmp_path / "fake_int8.tflite"
    model.write_bytes(b"not a flatbuffer at all" * 10)
    meta = json.loads((REPO / "models" / "fer_blend_int8.json").read_text())
    meta.pop("sha256", None)
    (tmp_path / "fake_int8.json").write_text(json.dumps(meta))
    assert bundle("--model", str(model), "--out", str(tmp_path / "b.tar.gz"), "--wheel", str(own_wheel)) == 1
    assert "fake_int8.tflite: not a TFLite model" in one_sentence(capsys)


def test_a_model_whose_metadata_is_not_int8_is_refused(tmp_path, capsys, own_wheel):
    model = tmp_path / "fer_float.tflite"
    shutil.copyfile(REPO / "models" / "fer_blend_int8.tflite", model)
    meta = json.loads((REPO / "models" / "fer_blend_int8.json").read_text())
    meta["precision"] = "float32"
    (tmp_path / "fer_float.json").write_text(json.dumps(meta))
    assert bundle("--model", str(model), "--out", str(tmp_path / "b.tar.gz"), "--wheel", str(own_wheel)) == 1
    assert "fer_float.tflite: not an int8 model (its metadata says precision 'float32'" in one_sentence(capsys)


@pytest.mark.parametrize("config, said", [
    # (`source: 0`, a camera index as a YAML number, is a valid config since the daemon accepts it.)
    ("camera:\n  fps: 0.001\n", "site.yaml:2: camera.fps: must be 0 (every frame) or at least 0.01"),
    ("detection:\n  threads: 2\n  frames_per_minute: 3\n", "site.yaml:3: detection.frames_per_minute: unknown key"),
    ("http:\n  host: 0.0.0.0\n", "http.token: required when http.host (0.0.0.0) is not a loopback address"),
])
def test_a_config_the_daemon_would_refuse_is_refused_when_the_bundle_is_made(tmp_path, capsys, own_wheel, config,
                                                                             said):
    site = tmp_path / "site.yaml"
    site.write_text(config)
    out = tmp_path / "b.tar.gz"
    assert bundle("--model", str(REPO / "models" / "fer_blend_int8.tflite"), "--config", str(site), "--out", str(out),
                  "--wheel", str(own_wheel)) == 1
    err = one_sentence(capsys)
    assert err.startswith("fer-edge bundle: --config: the daemon would refuse it: ") and said in err, err
    assert not out.exists()


def test_what_only_the_device_has_is_not_held_against_the_config(make_bundle, tmp_path, unpack):
    """Secrets from the device's files and environment, a file source there: taken as they are."""
    site = tmp_path / "site.yaml"
    site.write_text("camera:\n  source: /var/lib/fer-edge/clip.mp4\n  loop: true\n"
                    "http:\n  host: 0.0.0.0\n  token: {file: /etc/fer-edge/http-token}\n"
                    "mqtt:\n  host: broker.lan\n  username: fer-edge\n  password: {env: FER_EDGE_MQTT_PASSWORD}\n")
    top = unpack(make_bundle(config=site), tmp_path / "unpacked")
    shipped = yaml.safe_load((top / "config" / "fer-edge.yaml").read_text())
    assert shipped["http"]["token"] == {"file": "/etc/fer-edge/http-token"}
    assert shipped["camera"]["source"] == "/var/lib/fer-edge/clip.mp4"


def test_out_in_a_folder_that_does_not_exist_is_refused(tmp_path, capsys, own_wheel):
    out = tmp_path / "no" / "such" / "b.tar.gz"
    assert bundle("--model", str(REPO / "models" / "fer_blend_int8.tflite"), "--out", str(out), "--wheel",
                  str(own_wheel)) == 1
    assert f"--out {out}: the folder {out.parent} does not exist (make it first)" in one_sentence(capsys)
    assert not (tmp_path / "no").exists()


def test_verify_names_a_file_that_is_no_bundle_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("hello\n")
    assert bundle("verify", "notes.txt") == 1
    assert one_sentence(capsys) == ("fer-edge bundle: notes.txt: not a readable .tar.gz bundle: Not a gzipped file "
                                    "(b'he')")


def test_verify_usage_is_its_own(capsys):
    with pytest.raises(SystemExit):
        bundle("verify", "--help")
    assert capsys.readouterr().out.startswith("usage: fer-edge bundle verify [-h] [--allowed-signers FILE] BUNDLE\n")


def test_fleet_deploy_help_shows_a_plain_percent(capsys):
    with pytest.raises(SystemExit):
        main(["fleet", "deploy", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "then 25 %, then the rest" in text and "%%" not in text


def test_prometheus_reads_the_token_file_relative_to_the_written_config(tmp_path):
    from fleet.inventory import Device
    from fleet.prometheus import write_prometheus

    token = tmp_path / "secrets" / "fleet.token"
    token.parent.mkdir()
    token.write_text("s3cret\n")
    out = tmp_path / "etc" / "prometheus" / "fer-edge"
    written = write_prometheus([Device("porch", "192.0.2.1", 8080, token)], out)
    (job,) = yaml.safe_load(written[0].read_text())["scrape_configs"]
    relative = job["authorization"]["credentials_file"]
    assert relative == "../../../secrets/fleet.token"
    assert (out / relative).resolve() == token.resolve()  # as Prometheus resolves it: from the config's folder
