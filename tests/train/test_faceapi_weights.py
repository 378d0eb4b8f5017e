"""face-api's expression weights: decoded as tfjs stores them, read only from the pinned package, placed in
faceapi_dense so that it computes face-api's graph on a grey face."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

keras = pytest.importorskip("keras")

from edge_runtime.labels import LABELS  # noqa: E402
from train import faceapi_weights as fw  # noqa: E402


def _shapes() -> dict[str, tuple[int, ...]]:
    """The tensors face-api's manifest lists for the expression model, with their shapes."""
    shapes = {"dense0/conv0/filters": (3, 3, 3, 32), "dense0/conv0/bias": (32,)}
    c_in = 32
    for block, c in enumerate((32, 64, 128, 256)):
        for conv in range(4):
            if block == 0 and conv == 0:
                continue
            shapes[f"dense{block}/conv{conv}/depthwise_filter"] = (3, 3, c_in, 1)
            shapes[f"dense{block}/conv{conv}/pointwise_filter"] = (1, 1, c_in, c)
            shapes[f"dense{block}/conv{conv}/bias"] = (c,)
            c_in = c
    shapes["fc/weights"], shapes["fc/bias"] = (256, 7), (7,)
    return shapes


def _random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in _shapes().items():
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = 0.05 if len(shape) == 1 else np.sqrt(2.0 / fan_in)
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    out["fc/weights"] *= 50  # decisive probabilities, as a trained head gives
    return out


def _encode(weights: dict[str, np.ndarray], quantize: set[str]) -> tuple[list[dict], bytes]:
    """Weights as tfjs writes them: uint8 with scale and min for the names in quantize, float32 otherwise."""
    specs, chunks = [], []
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if name in quantize:
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255 or 1.0
            q = np.round((value - lo) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            chunks.append(q.tobytes())
        else:
            chunks.append(value.astype(np.float32).tobytes())
        specs.append(spec)
    return specs, b"".join(chunks)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4), st.booleans()), min_size=1, max_size=5),
       st.integers(0, 2**31))
def test_decode_reads_uint8_and_float32_tensors_back_to_back(layout, seed):
    rng = np.random.default_rng(seed)
    weights = {f"t{i}": rng.uniform(-2, 2, (a, b)).astype(np.float32) for i, (a, b, _) in enumerate(layout)}
    quantize = {f"t{i}" for i, (_, _, q) in enumerate(layout) if q}
    specs, buffer = _encode(weights, quantize)
    decoded = fw._decode(specs, buffer)
    assert list(decoded) == list(weights)
    for name, value in weights.items():
        step = next((s["quantization"]["scale"] for s in specs if s["name"] == name and "quantization" in s), 0)
        assert decoded[name].shape == value.shape and decoded[name].dtype == np.float32
        np.testing.assert_allclose(decoded[name], value, atol=step / 2 + 1e-6)
        if not step:
            assert np.array_equal(decoded[name], value)


def test_decode_refuses_a_buffer_the_manifest_does_not_describe():
    specs, buffer = _encode({"a": np.ones((2, 3), np.float32)}, set())
    with pytest.raises(fw.WeightsError, match="28 bytes.*24"):
        fw._decode(specs, buffer + b"\0\0\0\0")


def test_fer_order_maps_each_fer2013_class_to_face_apis_name_for_it():
    order = fw.fer_order()
    assert sorted(order) == list(range(7))
    assert [fw.TO_FER[fw.FACEAPI_LABELS[i]] for i in order] == list(LABELS)
    assert fw.FACEAPI_LABELS[order[LABELS.index("fear")]] == "fearful"
    assert fw.FACEAPI_LABELS[order[LABELS.index("angry")]] == "angry"


def _package(weights: dict[str, np.ndarray], *, bin_name: str = "face_expression_model.bin",
             tamper: bool = False, link: bool = False, omit: bool = False) -> tuple[bytes, str, str]:
    """A package tarball like npm's, and the sha256 of its manifest and weights file."""
    specs, buffer = _encode(weights, {n for n in weights if not n.endswith("bias")})
    manifest = json.dumps([{"paths": [bin_name], "weights": specs}]).encode()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, blob in ((fw.MANIFEST, manifest), (f"package/model/{bin_name}", buffer))[:1 if omit else 2]:
            info = tarfile.TarInfo(name)
            if link and name.endswith(".bin"):
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
                continue
            if tamper and name.endswith(".bin"):
                blob = blob[:-1] + bytes([blob[-1] ^ 1])
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return data.getvalue(), hashlib.sha256(manifest).hexdigest(), hashlib.sha256(buffer).hexdigest()


@pytest.fixture
def pinned(monkeypatch, tmp_path):
    """Write a package and pin this module to it, as the real package is pinned."""

    def make(weights, *, pin_bin: bool = True, **kwargs):
        tarball, manifest_sha, bin_sha = _package(weights, **kwargs)
        untampered_bin_sha = _package(weights)[2]
        path = tmp_path / "face-api.tgz"
        path.write_bytes(tarball)
        monkeypatch.setattr(fw, "TARBALL_SHA256", hashlib.sha256(tarball).hexdigest())
        monkeypatch.setattr(fw, "MANIFEST_SHA256", manifest_sha)
        monkeypatch.setattr(fw, "WEIGHTS_SHA256", {"face_expression_model.bin": untampered_bin_sha if pin_bin else ""})
        return path

    return make


def test_a_package_that_is_not_the_pinned_one_is_refused_naming_it(tmp_path):
    path = tmp_path / "face-api-1.7.15.tgz"
    path.write_bytes(_package({"a": np.ones(3, np.float32)})[0])
    with pytest.raises(fw.WeightsError,
                       match=r"face-api-1\.7\.15\.tgz: sha256 .* is not @vladmandic/face-api 1\.7\.15"):
        fw.read_weights(path)


def test_the_pinned_package_is_read_without_extracting_anything(pinned, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where tarfile would extract to
    weights = _random_weights()
    decoded = fw.read_weights(pinned(weights))
    assert set(decoded) == set(weights)
    np.testing.assert_allclose(decoded["fc/bias"], weights["fc/bias"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face-api.tgz"]


def test_a_weights_file_altered_inside_the_package_is_refused(pinned):
    with pytest.raises(fw.WeightsError, match="face_expression_model.bin is not the one this module knows"):
        fw.read_weights(pinned(_random_weights(), tamper=True))


def test_a_weights_file_that_is_a_link_is_refused(pinned):
    with pytest.raises(fw.WeightsError, match="face_expression_model.bin is not a regular file"):
        fw.read_weights(pinned(_random_weights(), link=True))


def test_a_manifest_naming_a_file_the_package_lacks_is_refused(pinned):
    path = pinned(_random_weights(), bin_name="other.bin", omit=True)
    with pytest.raises(fw.WeightsError, match=rf"^{path}: no package/model/other\.bin in the package$"):
        fw.read_weights(path)


def _face_api(weights: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """face-api's FaceExpressionNet as its sources (FaceFeatureExtractor.ts, denseBlock.ts) compute it, on RGB
    faces already resized: logits in face-api's class order."""
    import tensorflow as tf

    x = tf.constant((rgb - np.asarray(fw.MEAN_RGB, np.float32)) / 255.0)

    def sep(x, key, stride):
        y = tf.nn.separable_conv2d(x, weights[f"{key}/depthwise_filter"], weights[f"{key}/pointwise_filter"],
                                   [1, stride, stride, 1], "SAME")
        return y + weights[f"{key}/bias"]

    for block in range(4):
        key = f"dense{block}"
        if block == 0:
            out1 = tf.nn.conv2d(x, weights[f"{key}/conv0/filters"], 2, "SAME") + weights[f"{key}/conv0/bias"]
        else:
            out1 = sep(x, f"{key}/conv0", 2)
        out1 = tf.nn.relu(out1)
        out2 = sep(out1, f"{key}/conv1", 1)
        out3 = sep(tf.nn.relu(out1 + out2), f"{key}/conv2", 1)
        out4 = sep(tf.nn.relu(out1 + out2 + out3), f"{key}/conv3", 1)
        x = tf.nn.relu(out1 + out2 + out3 + out4)
    x = tf.reduce_mean(x, axis=(1, 2))  # face-api's avgPool(7x7) over its 7x7 map at 112 px: the mean of the map
    return (x @ weights["fc/weights"] + weights["fc/bias"]).numpy()


def test_init_model_computes_face_apis_network_on_a_grey_face():
    pytest.importorskip("tensorflow")
    import cv2

    weights = _random_weights(3)
    model = fw.init_model(weights)
    rng = np.random.default_rng(4)
    # face-like (smooth, not noise) and unalike: dark to bright, strong to faint contrast
    base = np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in rng.integers(0, 256, (8, 48, 48)).astype(np.float32)])
    base = (base - base.mean()) / base.std()
    faces = np.linspace(40, 215, 8)[:, None, None] + base * np.linspace(60, 10, 8)[:, None, None]
    faces = np.clip(faces, 0, 255).astype(np.uint8)
    ours = np.asarray(model(faces[..., None].astype(np.float32), training=False))
    normalised = np.asarray(model.get_layer("normalise")(faces[..., None].astype(np.float32)))
    big = np.asarray(model.get_layer("resize")(normalised))
    grey = big * 255.0 + 117.0  # back to pixels, at the network's size
    theirs = _face_api(weights, np.repeat(grey, 3, axis=-1).astype(np.float32))[:, fw.fer_order()]

    def centred(logits):  # logits up to the constant a softmax ignores
        return logits - logits.mean(axis=1, keepdims=True)

    ours = centred(np.log(ours))
    theirs = centred(theirs)
    # the faces give answers apart by far more than the tolerance, so agreeing means something...
    assert np.ptp(theirs, axis=0).max() > 0.1
    # ...and the same network, classes reordered, gives them: equal but where the border's zero padding meets the
    # mean shift (0.001 here; without the shift folded into the first bias 0.02)
    np.testing.assert_allclose(ours, theirs, atol=0.005)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_main_writes_the_init_model_and_a_card_naming_where_its_weights_come_from(pinned, tmp_path, capsys):
    from edge_runtime.metadata import read_metadata

    weights = _random_weights(5)
    out = tmp_path / "runs" / "init" / "faceapi_init.keras"  # folders made as needed
    assert fw.main(["--tarball", str(pinned(weights)), "--out", str(out)]) == 0
    model = keras.models.load_model(out)
    np.testing.assert_allclose(model.get_layer("probabilities").get_weights()[1],
                               weights["fc/bias"][fw.fer_order()], atol=1e-6)
    card = read_metadata(out)
    assert {k: v for k, v in card.items() if k != "notices"} == {
        "name": "faceapi_init", "format": "keras", "labels": list(LABELS), "arch": "faceapi_dense",
        "preprocessing": {"size": 48, "margin": 0.0, "color": "gray"},
        "training": {"command": "python -m train.faceapi_weights", "source": {
            "package": "@vladmandic/face-api", "version": "1.7.15", "sha256": fw.TARBALL_SHA256, "license": "MIT",
            "tarball": "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz",
            "files": ["package/model/face_expression_model-weights_manifest.json",
                      "package/model/face_expression_model.bin"]}}}
    notices = card["notices"]  # both packages' MIT notices, whole, to travel with the weights
    assert "Copyright (c) Vladimir Mandic" in notices[0] and "Copyright (c) 2018 Vincent Mühler" in notices[1]
    assert all("shall be included in all copies or substantial portions" in n for n in notices)
    assert "wrote" in capsys.readouterr().out


def test_main_refuses_another_package_in_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "other.tgz"
    path.write_bytes(b"not a tarball")
    out = tmp_path / "init.keras"
    assert fw.main(["--tarball", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other.tgz" in err and err.count("\n") == 1
    assert not out.exists() and not out.with_suffix(".json").exists()


@pytest.fixture
def registry(monkeypatch):
    """A package registry on loopback serving one tarball; counts the downloads."""
    import http.server
    import threading

    served = {"body": b"", "gets": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            served["gets"] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(served["body"])))
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(fw, "TARBALL_URL", f"http://127.0.0.1:{server.server_address[1]}/face-api-1.7.15.tgz")
    yield served
    server.shutdown()
    server.server_close()


def test_fetch_downloads_the_pinned_package_once_and_keeps_it(registry, monkeypatch, tmp_path):
    registry["body"] = b"the package bytes"
    monkeypatch.setattr(fw, "TARBALL_SHA256", hashlib.sha256(b"the package bytes").hexdigest())
    path = fw.fetch(tmp_path / "cache")
    assert path == tmp_path / "cache" / "face-api-1.7.15.tgz" and path.read_bytes() == b"the package bytes"
    assert fw.fetch(tmp_path / "cache") == path and registry["gets"] == 1  # cached: no second download
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["face-api-1.7.15.tgz"]


def test_fetch_refuses_a_download_that_is_not_the_pinned_package_and_keeps_nothing(registry, tmp_path):
    registry["body"] = b"something else"
    with pytest.raises(fw.WeightsError, match=r"face-api-1\.7\.15\.tgz: sha256 [0-9a-f]{64} is not the pinned"):
        fw.fetch(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_main_fetches_into_the_users_cache_when_no_tarball_is_given(registry, pinned, monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    package = pinned(_random_weights(6))
    registry["body"] = package.read_bytes()
    assert fw.main(["--out", str(tmp_path / "init.keras")]) == 0
    assert (home / ".cache" / "fer-edge" / "face-api-1.7.15.tgz").read_bytes() == package.read_bytes()
    assert registry["gets"] == 1


def test_main_needs_an_output_and_says_what_it_is(capsys):
    with pytest.raises(SystemExit) as info:
        fw.main([])
    assert info.value.code == 2 and "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fw.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m train.faceapi_weights") and "face-api.js's expression network" in text


def test_fetch_makes_the_cache_folder_and_its_parents_and_takes_one_that_exists(registry, monkeypatch, tmp_path):
    registry["body"] = b"bytes"
    monkeypatch.setattr(fw, "TARBALL_SHA256", hashlib.sha256(b"bytes").hexdigest())
    assert fw.fetch(tmp_path / "a" / "b").read_bytes() == b"bytes"
    (tmp_path / "empty").mkdir()
    assert fw.fetch(tmp_path / "empty").read_bytes() == b"bytes"


def test_a_package_without_the_manifest_or_with_another_is_refused_naming_it(pinned, monkeypatch):
    path = pinned(_random_weights(7))
    monkeypatch.setattr(fw, "MANIFEST_SHA256", "0" * 64)
    with pytest.raises(fw.WeightsError, match=rf"^{path}: package/model/face_expression_model-weights_manifest"
                                              r"\.json is not the one this module knows$"):
        fw.read_weights(path)
    monkeypatch.setattr(fw, "MANIFEST", "package/model/missing.json")
    with pytest.raises(fw.WeightsError, match=rf"^{path}: no package/model/missing\.json in the package$"):
        fw.read_weights(path)
