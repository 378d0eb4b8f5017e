"""fer-edge bundle: round trip, verify on tampered copies, the daemon's model check, --with-deps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from edge_runtime.cli import SAMPLE_VIDEO, main
from edge_runtime.metadata import read_metadata, sha256_file
from edge_runtime.release.manifest import ManifestError, check_model, verify
from release_tools.bundle import BundleError, runtime_requirements


def repack(folder, out):
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


def test_round_trip(make_bundle, tmp_path, capsys, unpack, shipped_int8):
    bundle = make_bundle(version="1.2.3-test")
    assert main(["bundle", "verify", str(bundle)]) == 0
    assert "release 1.2.3-test, 6 files match" in capsys.readouterr().out

    top = unpack(bundle, tmp_path / "unpacked")
    assert top.name == "fer-edge-1.2.3-test"
    manifest = verify(top)
    card = read_metadata(shipped_int8)
    assert sorted(manifest["files"]) == ["config/fer-edge.yaml", "install.sh", "models/fer_blend_int8.json",
                                         "models/fer_blend_int8.tflite", "systemd/fer-edge.service",
                                         "wheels/fer_edge-0.1.0-py3-none-any.whl"]
    assert manifest["files"]["models/fer_blend_int8.tflite"] == {"sha256": sha256_file(shipped_int8),
                                                                "size": shipped_int8.stat().st_size}
    assert manifest["version"] == "1.2.3-test" and manifest["created"].endswith("Z")
    assert manifest["source_model"]["sha256"] == card["source_model"]["sha256"]
    assert manifest["parity"] == card["parity"]
    assert (top / "models" / "fer_blend_int8.tflite").read_bytes() == shipped_int8.read_bytes()
    config = yaml.safe_load((top / "config" / "fer-edge.yaml").read_text())
    assert config["detection"]["model"] == "../models/fer_blend_int8.tflite"
    unit = (top / "systemd" / "fer-edge.service").read_text()
    assert ("ExecStart=/opt/fer-edge/current/venv/bin/fer-edge run --config /opt/fer-edge/current/config/"
            "fer-edge.yaml --model /opt/fer-edge/current/models/fer_blend_int8.tflite") in unit
    assert (top / "install.sh").stat().st_mode & 0o111
    assert check_model(top / "models" / "fer_blend_int8.tflite") == top / "manifest.json"


def test_config_is_kept_and_points_at_the_bundled_model(make_bundle, tmp_path, unpack):
    source = tmp_path / "site.yaml"
    source.write_text("camera:\n  name: door\ndetection:\n  model: /somewhere/else.tflite\n  threads: 2\n")
    top = unpack(make_bundle(config=source), tmp_path / "unpacked")
    config = yaml.safe_load((top / "config" / "fer-edge.yaml").read_text())
    assert config == {"camera": {"name": "door"}, "detection": {"model": "../models/fer_blend_int8.tflite",
                                                                "threads": 2}}


@pytest.mark.parametrize("tamper, named", [
    ("flip", "models/fer_blend_int8.tflite: changed: sha256"),
    ("remove", "config/fer-edge.yaml: missing"),
    ("add", "models/extra.tflite: extra file"),
])
def test_verify_names_the_file_that_differs(make_bundle, tmp_path, capsys, tamper, named, unpack):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    model = top / "models" / "fer_blend_int8.tflite"
    if tamper == "flip":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
    elif tamper == "remove":
        (top / "config" / "fer-edge.yaml").unlink()
    else:
        shutil.copyfile(model, top / "models" / "extra.tflite")
    for target in (top, repack(top, tmp_path / "tampered.tar.gz")):
        assert main(["bundle", "verify", str(target)]) == 1
        assert named in capsys.readouterr().err


def test_verify_refuses_a_tarball_with_a_link(make_bundle, tmp_path, unpack):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    (top / "models" / "link.tflite").symlink_to("/etc/passwd")
    with pytest.raises(ManifestError, match="link.tflite: not a regular file"):
        verify(repack(top, tmp_path / "linked.tar.gz"))


def test_daemon_check_refuses_a_changed_model(make_bundle, tmp_path, unpack, shipped_int8):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    model = top / "models" / "fer_blend_int8.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match the bundle manifest .* refusing to load it"):
        check_model(model)
    stray = top / "models" / "stray.tflite"
    shutil.copyfile(shipped_int8, stray)
    with pytest.raises(ManifestError, match="does not list"):
        check_model(stray)
    assert check_model(shipped_int8) is None  # a checkout's model has no manifest to answer to


def test_the_daemon_refuses_a_changed_bundled_model(make_bundle, tmp_path, unpack):
    top = unpack(make_bundle(), tmp_path / "unpacked")
    model = top / "models" / "fer_blend_int8.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "run", "--config", "config/fer-edge.yaml",
                             "--source", str(SAMPLE_VIDEO), "--http", "off", "--jsonl", "off"],
                            cwd=top, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "does not match the bundle manifest" in result.stderr and "refusing to load it" in result.stderr
    (top.parent / "manifest.json").write_text('{"name": "a web app", "files": {}}')
    assert check_model(top.parent / "elsewhere.tflite") is None  # a manifest.json that is not ours


def test_bad_inputs_are_refused_with_a_sentence(make_bundle, tmp_path, shipped_int8):
    with pytest.raises(BundleError, match="must be an \\*_edgetpu.tflite build"):
        make_bundle(edgetpu_model=shipped_int8)
    stale = tmp_path / "stale.tflite"
    stale.write_bytes(shipped_int8.read_bytes() + b"\0")
    shutil.copyfile(shipped_int8.with_suffix(".json"), stale.with_suffix(".json"))
    with pytest.raises(BundleError, match="differs from its metadata"):
        make_bundle(model=stale)
    with pytest.raises(BundleError, match="--with-deps needs --platform"):
        make_bundle(with_deps=True)
    with pytest.raises(BundleError, match="--version"):
        make_bundle(version="../escape")
    assert not list(tmp_path.glob("*.tar.gz")) and not list(tmp_path.glob(".bundle*"))


def test_edgetpu_model_travels_beside_the_cpu_model(make_bundle, tmp_path, unpack, shipped_int8, device_python):
    tpu = tmp_path / "fer_blend_int8_edgetpu.tflite"
    shutil.copyfile(shipped_int8, tpu)
    meta = json.loads(shipped_int8.with_suffix(".json").read_text())
    tpu.with_suffix(".json").write_text(json.dumps(meta))
    top = unpack(make_bundle(edgetpu_model=tpu), tmp_path / "unpacked")
    manifest = verify(top)
    assert [(m["file"], m["edgetpu"]) for m in manifest["models"]] == [
        ("models/fer_blend_int8.tflite", False), ("models/fer_blend_int8_edgetpu.tflite", True)]
    dry = subprocess.run(["bash", str(top / "install.sh"), "--dry-run", "--prefix", str(tmp_path / "root"),
                          "--python", device_python, "--no-systemd"], capture_output=True, text=True)
    assert dry.returncode == 0 and not (tmp_path / "root").exists()
    if "libedgetpu.so.1" not in subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout:
        assert "sudo apt-get install libedgetpu1-std" in dry.stdout


def test_with_deps_bundles_a_wheel_per_runtime_dependency(make_bundle, own_wheel, wheelhouse, tmp_path):
    requirements = runtime_requirements(own_wheel, "3.11", "linux_aarch64")
    names = {r.split("<")[0].split(">")[0].split("=")[0].split(";")[0].lower() for r in requirements}
    assert {"numpy", "opencv-python-headless", "ai-edge-litert", "paho-mqtt"} <= names
    house = wheelhouse()
    bundle = make_bundle(platform="linux_aarch64", with_deps=True, find_links=house)
    manifest = verify(bundle)
    assert manifest["platform"] == "linux_aarch64" and manifest["python"] == "3.11"
    assert len(manifest["wheels"]) == len(requirements) + 1
    assert all(w.endswith("manylinux_2_17_aarch64.whl") for w in manifest["wheels"] if not w.startswith("fer_edge"))
    assert len(list((tmp_path / "wheel-cache" / "linux_aarch64-cp311").glob("*.whl"))) == len(requirements)
    again = make_bundle("again.tar.gz", platform="linux_aarch64", with_deps=True, find_links=house)
    assert verify(again)["wheels"] == manifest["wheels"]  # from the cache this time


def test_with_deps_names_a_dependency_without_a_wheel(make_bundle, wheelhouse, tmp_path):
    house = wheelhouse(leave_out={"ai-edge-litert"})
    with pytest.raises(BundleError, match="no linux_aarch64 wheel for Python 3.11: ai-edge-litert"):
        make_bundle(platform="linux_aarch64", with_deps=True, find_links=house)
    assert not list(tmp_path.glob("*.tar.gz"))
