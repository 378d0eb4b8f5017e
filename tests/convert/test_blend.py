"""`fer-edge blend`: models as one weighted average, one .keras graph that converts to one int8 file the device runs
as any model; members that cannot be blended are refused naming the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_runtime.metadata import sha256_file
from tests.convert.conftest import SIDE, coded_faces, run_cli, save_keras, tiny_cnn

keras = pytest.importorskip("keras")

from train.architectures import count_macs  # noqa: E402
from train.blend import build_blend, parse_member  # noqa: E402


@given(path=st.from_regex(r"[a-z_]{1,10}(/[a-z_:]{1,10}){0,2}\.keras", fullmatch=True),
       weight=st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False))
def test_a_member_is_its_path_and_a_positive_weight(path, weight):
    member = parse_member(f"{path}:{weight!r}")
    assert member.path == Path(path)  # a ':' inside the path stays in it: the weight follows the last one
    assert member.weight == weight


@pytest.mark.parametrize("text, problem", [
    ("models/a.keras", "expected MODEL.keras:WEIGHT"),
    (":0.5", "expected MODEL.keras:WEIGHT"),
    ("models/a.keras:heavy", "weight 'heavy' is not a number"),
    ("models/a.keras:0", "weight must be a positive number"),
    ("models/a.keras:-0.3", "weight must be a positive number"),
    ("models/a.keras:nan", "weight must be a positive number"),
    ("models/a.keras:inf", "weight must be a positive number"),
])
def test_a_bad_member_is_refused_naming_it(text, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_member(text)
    assert repr(text) in str(info.value)


def _trained(seed: int):
    keras.utils.set_random_seed(seed)
    model = tiny_cnn()
    images, labels = coded_faces(140, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(images[..., None].astype("float32"), labels, epochs=2 + seed % 3, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    return [save_keras(_trained(seed), root / f"m{seed}" / f"fer_m{seed}.keras") for seed in (1, 2)]


def _pooled(pa, pb, wa, wb):
    """The weighted geometric mean of two members' probabilities, renormalised."""
    g = np.exp(wa * np.log(pa.astype(np.float64)) + wb * np.log(pb.astype(np.float64)))
    return g / g.sum(axis=1, keepdims=True)


def test_the_blend_is_the_weighted_geometric_mean_of_its_members(members):
    a, b = (keras.saving.load_model(p) for p in members)
    faces = coded_faces(20, seed=9)[0][..., None].astype("float32")
    pa, pb = a.predict(faces, verbose=0), b.predict(faces, verbose=0)
    blend = build_blend([keras.saving.load_model(p) for p in members], [2.0, 6.0])  # normalised: 0.25, 0.75
    p = blend.predict(faces, verbose=0)
    np.testing.assert_allclose(p, _pooled(pa, pb, 0.25, 0.75), atol=1e-4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(p, _pooled(pa, pb, 0.5, 0.5), atol=1e-3)  # the weights count
    assert count_macs(blend) == count_macs(a) + count_macs(b) > 0
    # The members stay as they were: the blend reads their logits through layers of its own.
    np.testing.assert_allclose(a.predict(faces, verbose=0), pa, atol=1e-6)


def test_class_weights_multiply_each_class_probability_inside_the_graph(members, tmp_path):
    """--class-weights: the blend's answer is the unweighted blend's, each class multiplied by its weight and
    renormalised; the graph costs no more, the card names each class's weight, and a wrong count or weight is
    refused before anything is written."""
    from train.class_weights import log_bias, reweighted

    faces = coded_faces(20, seed=9)[0][..., None].astype("float32")
    weights = [0.5, 2.0, 1.0, 1.0, 3.0, 0.25, 1.0]
    plain = build_blend([keras.saving.load_model(p) for p in members], [1.0, 3.0]).predict(faces, verbose=0)
    run = tmp_path / "weighted"
    code, _, err = run_cli(["blend", f"{members[0]}:1", f"{members[1]}:3", "--class-weights",
                            ",".join(map(str, weights)), "--out", str(run)])
    assert code == 0, err
    weighted = keras.saving.load_model(run / "model.keras")
    np.testing.assert_allclose(weighted.predict(faces, verbose=0), reweighted(plain, log_bias(weights)), atol=1e-5)
    card = json.loads((run / "model.json").read_text())
    assert card["training"]["class_weights"] == dict(zip(card["labels"], weights))
    assert card["multiply_adds"] == count_macs(build_blend([keras.saving.load_model(p) for p in members], [1, 3]))
    assert "class_weights_fit" not in card["training"]
    fit_file = tmp_path / "fit.json"  # python -m train.class_weights --out: the card records where they came from
    fit_file.write_text(json.dumps({"weights": weights, "tau": 0.2, "half": 0}))
    code, _, err = run_cli(["blend", f"{members[0]}:1", f"{members[1]}:3", "--class-weights", str(fit_file),
                            "--out", str(tmp_path / "fitted")])
    assert code == 0, err
    fitted = json.loads((tmp_path / "fitted" / "model.json").read_text())["training"]
    assert fitted["class_weights"] == card["training"]["class_weights"]
    assert fitted["class_weights_fit"] == {"tau": 0.2, "half": 0, "file": str(fit_file),
                                           "sha256": sha256_file(fit_file)}
    for text, problem in (("1,2", "2 class weights for a model of 7 classes"),
                          ("1,1,1,0,1,1,1", "weight 4 must be a positive number"),
                          (str(tmp_path / "gone.json"), "gone.json: no such class-weights file")):
        code, _, err = run_cli(["blend", f"{members[0]}:1", f"{members[1]}:3", "--class-weights", text,
                                "--out", str(tmp_path / "never")])
        assert code == 1 and problem in err, err
        assert not (tmp_path / "never").exists()


def _with_notices(members, tmp_path):
    """Copies of the members whose cards carry licence notices (as a model started from face-api's weights does):
    the first one notice, the second the same notice twice."""
    import shutil

    copies = []
    for i, member in enumerate(members):
        target = tmp_path / f"m{i}" / member.name
        target.parent.mkdir()
        shutil.copyfile(member, target)
        card = json.loads(member.with_suffix(".json").read_text())
        card["notices"] = [NOTICE] * (i + 1)
        target.with_suffix(".json").write_text(json.dumps(card))
        copies.append(target)
    return copies


NOTICE = "Weights from P (MIT License, Copyright (c) A): Permission ..."


def test_blend_publish_and_convert_make_one_int8_model_the_device_runs(members, tmp_path, calibration_dir,
                                                                       parity_data):
    """The blend, published and converted, is one int8 model the device runs; the members' licence notices reach
    its card once each, then the int8 card a bundle ships."""
    from edge_runtime.classifier import Classifier

    members = _with_notices(members, tmp_path)
    run = tmp_path / "run"
    code, out, err = run_cli(["blend", f"{members[0]}:2", f"{members[1]}:6", "--data", str(parity_data),
                              "--out", str(run)])
    assert code == 0, err
    assert "0.25" in out and "0.75" in out
    card = json.loads((run / "model.json").read_text())
    assert [(m["sha256"], m["weight"]) for m in card["training"]["members"]] == [
        (sha256_file(members[0]), 0.25), (sha256_file(members[1]), 0.75)]
    assert card["training"]["data"] == str(parity_data) and card["arch"] == "blend"
    assert card["notices"] == [NOTICE]
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    assert metrics["n"] == 70 and 0.0 <= metrics["accuracy"] <= 1.0
    code, _, err = run_cli(["publish", str(run), "--name", "fer_duo", "--models", str(tmp_path / "models")])
    assert code == 0, err
    shipped = tmp_path / "models" / "fer_duo.keras"
    code, _, err = run_cli(["convert", "--model", str(shipped), "--int8", "--calibration", str(calibration_dir),
                            "--parity-data", str(parity_data)])
    assert code == 0, err
    assert json.loads((tmp_path / "models" / "fer_duo_int8.json").read_text())["notices"] == [NOTICE]
    device = Classifier(tmp_path / "models" / "fer_duo_int8.tflite")
    faces = coded_faces(40, seed=11)[0]
    float_probs = keras.saving.load_model(shipped).predict(faces[..., None].astype("float32"), verbose=0)
    agreement = (device.predict(faces).argmax(1) == float_probs.argmax(1)).mean()
    assert agreement >= 0.9


def _card_with(path, **changes):
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**card, **changes}))


def test_members_that_cannot_be_blended_are_refused_naming_the_file(members, tmp_path):
    import shutil

    odd = tmp_path / "odd.keras"
    shutil.copyfile(members[1], odd)
    shutil.copyfile(members[1].with_suffix(".json"), odd.with_suffix(".json"))
    _card_with(odd, labels=["a", "b", "c", "d", "e", "f", "g"])
    cases = [
        ([f"{members[0]}:1"], "at least two models"),
        ([f"{members[0]}:1", f"{members[0]}:2"], "names each model once"),
        ([f"{members[0]}:1", f"{tmp_path / 'gone.keras'}:1"], "gone.keras: no such model"),
        ([f"{members[0]}:1", f"{tmp_path / 'm.tflite'}:1"], "m.tflite: a blend is made of float .keras models"),
        ([f"{members[0]}:1", f"{odd}:1"], "odd.keras: its labels"),
        ([f"{members[0]}:0", f"{members[1]}:1"], "weight must be a positive number"),
    ]
    keras.utils.set_random_seed(3)
    linear = tiny_cnn()
    head = keras.layers.Dense(7, name="raw")(linear.layers[-1].input)
    raw = save_keras(keras.Model(linear.inputs, head), tmp_path / "raw" / "raw.keras")
    cases.append(([f"{members[0]}:1", f"{raw}:1"], "raw.keras: its last layer is Dense (linear), not a softmax Dense"))
    for argv, problem in cases:
        out = tmp_path / "never"
        code, _, err = run_cli(["blend", *argv, "--out", str(out)])
        assert code == 1 and problem in err, (argv, err)
        assert not out.exists()
    _card_with(odd, labels=json.loads(members[1].with_suffix(".json").read_text())["labels"],
               preprocessing={"size": SIDE, "margin": 0.1, "color": "gray"})
    code, _, err = run_cli(["blend", f"{members[0]}:1", f"{odd}:1", "--out", str(tmp_path / "never")])
    assert code == 1 and "odd.keras: its preprocessing" in err
