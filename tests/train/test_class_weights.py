"""train/class_weights.py: per-class weights fitted on one half of the people by likelihood, shrunk until FER2013
val holds its floor, judged on the other half; bad weights are refused naming the one that is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from train.class_weights import (
    TEMPER_STEPS,
    accuracy,
    fit,
    fit_bias,
    log_bias,
    main,
    parse_class_weights,
    parser,
    read_class_weights,
    reweighted,
    temper,
)

REPO = Path(__file__).resolve().parents[2]
positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)


@given(st.lists(positive, min_size=1, max_size=9))
def test_weights_parse_back_in_order(weights):
    assert parse_class_weights(",".join(repr(w) for w in weights)) == weights


@pytest.mark.parametrize("text, problem", [
    ("1,x,1", "weight 2 'x' is not a number"),
    ("1,1,0", "weight 3 must be a positive number"),
    ("-1", "weight 1 must be a positive number"),
    ("1,nan", "weight 2 must be a positive number"),
    ("inf,1", "weight 1 must be a positive number"),
    ("1,,1", "weight 2 '' is not a number"),
])
def test_a_bad_weight_is_refused_naming_it(text, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_class_weights(text)
    assert repr(text) in str(info.value)


def test_weights_come_from_a_fit_file_with_its_record_and_sha256(tmp_path):
    from edge_runtime.metadata import sha256_file

    fit_file = tmp_path / "fit.json"
    fit_file.write_text(json.dumps({"weights": [0.5, 2, 1.25], "tau": 0.15, "half": 0, "floor": 0.67}))
    weights, record = read_class_weights(str(fit_file))
    assert weights == [0.5, 2.0, 1.25]
    assert record == {"tau": 0.15, "half": 0, "floor": 0.67, "file": str(fit_file), "sha256": sha256_file(fit_file)}
    assert read_class_weights("0.5,2") == ([0.5, 2.0], None)


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a class-weights file"),
    ('{"tau": 1}', "not a class-weights file"),
    ('{"weights": "1,2"}', "not a class-weights file"),
    ('{"weights": []}', "not a class-weights file"),
    ('[1, 2]', "not a class-weights file"),
    ('{"weights": [1, -2]}', "weight 2 must be a positive number"),
    ('{"weights": [1, "heavy"]}', "weight 2 'heavy' is not a number"),
    (b"\xff\xfe", "not a class-weights file"),
])
def test_a_bad_fit_file_is_refused_naming_it(tmp_path, content, problem):
    path = tmp_path / "fit.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=problem) as info:
        read_class_weights(str(path))
    assert str(info.value).startswith(f"{path}: ")


def test_a_missing_fit_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'gone.json'}: no such class-weights file$"):
        read_class_weights(str(tmp_path / "gone.json"))


@given(st.lists(positive, min_size=7, max_size=7), st.lists(st.floats(0.01, 1.0), min_size=7, max_size=7),
       st.floats(0.1, 10.0))
def test_reweighting_multiplies_each_class_by_its_weight_whatever_their_scale(weights, probs, scale):
    p = np.asarray(probs)[None] / np.sum(probs)
    expected = p * np.asarray(weights)
    expected /= expected.sum()
    np.testing.assert_allclose(reweighted(p, log_bias(weights)), expected, rtol=1e-9)
    # A common factor changes nothing, and the shift is centred.
    np.testing.assert_allclose(log_bias(np.asarray(weights) * scale), log_bias(weights), atol=1e-9)
    assert abs(log_bias(weights).sum()) < 1e-9


@pytest.mark.parametrize("missing_label", [0, 1])
def test_a_row_without_a_face_counts_as_wrong_whatever_its_label(missing_label):
    probs = np.array([[0.9, 0.1], [np.nan, np.nan], [0.2, 0.8]])
    assert accuracy(probs, np.array([0, missing_label, 1])) == pytest.approx(2 / 3)
    assert accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 0.0
    # The shift moves the first row's answer across: 0.9 * 1 vs 0.1 * 10.
    assert accuracy(probs, np.array([0, 0, 1]), log_bias([1.0, 10.0])) == pytest.approx(1 / 3)


def _shifted_labels(n, shift, seed):
    """Probabilities of a model that knows the faces but has the wrong prior, and labels drawn from the shifted
    truth: the likelihood fit should find the shift."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(len(shift), 0.7), n)
    truth = reweighted(probs, shift)
    labels = np.array([rng.choice(len(shift), p=row) for row in truth])
    return probs, labels


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4), st.integers(0, 100))
def test_the_fit_finds_the_shift_the_labels_were_drawn_with(shift, seed):
    shift = np.asarray(shift) - np.mean(shift)
    probs, labels = _shifted_labels(6000, shift, seed)
    np.testing.assert_allclose(fit_bias(probs, labels), shift, atol=0.15)


def test_no_faces_to_fit_is_an_error():
    with pytest.raises(ValueError, match="^no faces to fit class weights on$"):
        fit_bias(np.zeros((0, 7)), np.zeros(0, dtype=int))


def test_an_int8_probability_of_exactly_zero_does_not_break_the_fit():
    probs, labels = _shifted_labels(2000, np.array([0.5, -0.5, 0.0]), 4)
    probs = np.round(probs * 256) / 256  # an int8 output: many exact zeros
    probs[labels == 1, 1] = 0.0  # even under the true label
    assert (probs == 0).sum() > 100
    shift = fit_bias(probs, labels)
    assert np.isfinite(shift).all() and abs(shift.sum()) < 1e-9
    assert shift[1] == shift.max()  # the zeroed true class is raised (true shift -0.5), not lost to log(0)


@given(st.floats(0.0, 3.0))
@example(0.02)  # only the smallest step, tau 0.01, holds
@example(2.0)  # the whole shift holds
def test_temper_takes_the_largest_accepted_step(limit):
    bias = np.array([2.0, -2.0, 0.0])
    shifted, tau = temper(bias, lambda b: np.abs(b).max() <= limit + 1e-12)
    expected = min(1.0, np.floor(limit / 2.0 * TEMPER_STEPS + 1e-9) / TEMPER_STEPS)
    assert tau == pytest.approx(expected)
    np.testing.assert_allclose(shifted, expected * bias)


def test_temper_gives_no_shift_when_none_is_accepted():
    shifted, tau = temper(np.array([1.0, -1.0]), lambda b: False)
    assert tau == 0.0 and not shifted.any()


def _scene(seed=0):
    """Wild faces whose labels lean to class 0 (the model underrates it) and val faces where the model is right:
    shifting towards class 0 helps the first and, past a point, costs the second."""
    rng = np.random.default_rng(seed)
    wild, labels = _shifted_labels(800, np.array([1.2, -0.4, -0.4, -0.4]), seed)
    wild[::25] = np.nan  # photos without a face
    half = rng.random(800) < 0.5
    val = rng.dirichlet(np.full(4, 0.7), 1000)
    val_labels = val.argmax(1)
    return wild, labels, half, val, val_labels


@pytest.mark.parametrize("floor", [0.9, 0.95, 0.97])
def test_the_fit_holds_the_floor_with_the_largest_step_and_helps_the_other_half(floor):
    wild, labels, half, val, val_labels = _scene()
    result = fit(wild, labels, half, val, val, val_labels, floor)
    after, before = result["figures"]["after"], result["figures"]["before"]
    assert before["val_single"] == 1.0 and after["val_single"] >= floor and after["val_flip"] >= floor
    rows = half & ~np.isnan(wild).any(axis=1)
    assert result["fitted_faces"] == int(rows.sum())
    raw, tau = fit_bias(wild[rows], labels[rows]), result["tau"]
    assert 0.0 < tau < 1.0  # the floor binds here, so the step is the last one that holds it
    np.testing.assert_allclose(log_bias(result["weights"]), tau * raw, atol=1e-3)
    assert accuracy(val, val_labels, raw * (tau + 1 / TEMPER_STEPS)) < floor
    assert result["weights"][0] == max(result["weights"])
    assert after["wild_other_half"] > before["wild_other_half"]


def _sure(labels, classes=4):
    """Probabilities that no shift within exp(+-3) moves: the label at 0.9999."""
    p = np.full((len(labels), classes), 0.0001 / (classes - 1))
    p[np.arange(len(labels)), labels] = 0.9999
    return p


@pytest.mark.parametrize("binding", ["single", "flip"])
def test_the_floor_is_held_by_single_crop_and_flipped_faces_each_and_an_exact_hit_is_kept(binding):
    wild, labels, half, val, val_labels = _scene(2)
    rows = half & ~np.isnan(wild).any(axis=1)
    raw = fit_bias(wild[rows], labels[rows])
    n = TEMPER_STEPS
    steps = {k: accuracy(val, val_labels, k / n * raw) for k in range(0, n + 1)}
    # A step whose accuracy no larger step reaches, below the unshifted accuracy: at that floor it is the answer.
    k = next(k for k in range(n - 1, 0, -1) if steps[k] > max(steps[t] for t in range(k + 1, n + 1))
             and steps[k] < steps[0])
    floor = steps[k]
    sure = _sure(val_labels)
    single, flip = (val, sure) if binding == "single" else (sure, val)
    result = fit(wild, labels, half, single, flip, val_labels, floor)
    assert result["tau"] == pytest.approx(k / n)
    assert result["figures"]["after"]["val_" + binding] == floor
    assert result["figures"]["after"]["val_" + ("flip" if binding == "single" else "single")] == 1.0


def test_the_figures_are_each_measured_with_and_without_the_weights():
    wild, labels, half, val, val_labels = _scene(3)
    flip = np.roll(val, 1, axis=1) * 0.2 + val * 0.8
    result = fit(wild, labels, half, val, flip, val_labels, 0.9)
    bias = log_bias(result["weights"])
    assert set(result) == {"weights", "tau", "floor", "fitted_faces", "figures"} and result["floor"] == 0.9
    assert result["weights"] == [round(float(w), 4) for w in np.exp(result["tau"] * fit_bias(
        wild[half & ~np.isnan(wild).any(axis=1)], labels[half & ~np.isnan(wild).any(axis=1)]))]
    for name, b in (("before", None), ("after", bias)):
        expected = {"val_single": accuracy(val, val_labels, b), "val_flip": accuracy(flip, val_labels, b),
                    "wild_fit_half": accuracy(wild[half], labels[half], b),
                    "wild_other_half": accuracy(wild[~half], labels[~half], b),
                    "wild_all": accuracy(wild, labels, b)}
        assert result["figures"][name] == pytest.approx(expected, abs=2e-3), name
    assert result["figures"]["after"] != result["figures"]["before"]
    assert len({round(v, 6) for v in result["figures"]["after"].values()}) == 5  # five different measures


def test_the_fit_reads_only_the_fitted_half():
    wild, labels, half, val, val_labels = _scene(1)
    first = fit(wild, labels, half, val, val, val_labels, 0.9)
    scrambled = labels.copy()
    scrambled[~half] = (scrambled[~half] + 1) % 4
    second = fit(wild, scrambled, half, val, val, val_labels, 0.9)
    assert first["weights"] == second["weights"]
    assert first["figures"]["after"]["wild_other_half"] != second["figures"]["after"]["wild_other_half"]


def _photo_folder(root: Path) -> Path:
    """Real photos in class folders (tests/data: three people of half 1, one of half 0), a picture of two people
    side by side (the larger face answers) and a photo with no face."""
    import cv2

    for source, name, label in (
            ("wild/George_W_Bush_0401.jpg", "George_W_Bush_0401.jpg", "neutral"),
            ("wild/Jennifer_Capriati_0030.jpg", "Jennifer_Capriati_0030.jpg", "angry"),
            ("wild/FaridaJalal_105.jpg", "FaridaJalal_105.jpg", "sad"),
            ("wild_surprise_2868585k.jpg", "facial-expressions_2868585k.jpg", "surprise")):  # half 0
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "tests" / "data" / source, root / label / name)
    big = cv2.imread(str(REPO / "tests" / "data" / "wild" / "Jennifer_Capriati_0030.jpg"))
    small = cv2.resize(cv2.imread(str(REPO / "tests" / "data" / "wild" / "George_W_Bush_0401.jpg")), (200, 200))
    pair = np.full((big.shape[0], big.shape[1] + 220, 3), 128, np.uint8)
    pair[: big.shape[0], : big.shape[1]] = big
    pair[60:260, big.shape[1] + 10 : big.shape[1] + 210] = small
    cv2.imwrite(str(root / "angry" / "Pair_0001.jpg"), pair)
    (root / "happy").mkdir()
    cv2.imwrite(str(root / "happy" / "Wall_0001.jpg"), np.full((300, 300, 3), 200, np.uint8))
    return root


def test_the_command_fits_on_the_answers_fer_edge_detect_gives_and_writes_the_figures(tmp_path, capsys):
    """End to end on real photos and the in-repo FER2013 val sample, with a model other than the default: each
    photo's row is the largest face `fer-edge detect --json` reports, no face is a row of NaN, and the val
    figures are the Classifier's, single crop and flip-averaged."""
    from edge_runtime.classifier import Classifier
    from edge_runtime.cli import main as fer_edge
    from train.class_weights import wild_probabilities
    from train.wild_data import photos

    wild = _photo_folder(tmp_path / "wild")
    model = REPO / "models" / "fer_mobile_int8.tflite"
    pics = photos(wild)
    rows = wild_probabilities(model, pics)
    for photo, row in zip(pics, rows):
        assert fer_edge(["detect", str(photo.path), "--json", "--model", str(model)]) == 0
        answers = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        if not answers:
            assert np.isnan(row).all(), photo.path.name
            continue
        best = max(answers, key=lambda a: a["box"][2] * a["box"][3])
        np.testing.assert_allclose(row, list(best["probabilities"].values()), atol=1e-6, err_msg=photo.path.name)
    assert [p.path.name for p, r in zip(pics, rows) if np.isnan(r).all()] == ["Wall_0001.jpg"]
    pair = [r for p, r in zip(pics, rows) if p.path.name == "Pair_0001.jpg"][0]
    alone = [r for p, r in zip(pics, rows) if p.path.name == "Jennifer_Capriati_0030.jpg"][0]
    assert pair.argmax() == alone.argmax()  # the larger face of the two answers

    # FER2013 faces in two splits: val (the default) and test, a part of the same faces (--split test).
    shutil.copytree(REPO / "convert" / "val_sample", tmp_path / "fer" / "val")  # 350 FER2013 val faces
    shutil.copytree(REPO / "convert" / "val_sample", tmp_path / "fer" / "test",
                    ignore=lambda folder, names: names[: len(names) // 2] if folder.endswith(("happy", "sad")) else [])
    out = tmp_path / "weights.json"
    code = main(["--model", str(model), "--wild", str(wild), "--data", str(tmp_path / "fer"), "--floor", "0.5",
                 "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    from train.predict import load_split

    _, split = load_split(tmp_path / "fer", "val")
    single_p = Classifier(model).predict(np.asarray(split.images))
    flip_p = Classifier(model, tta="flip").predict(np.asarray(split.images))
    single, flipped = ((p.argmax(1) == split.labels).mean() for p in (single_p, flip_p))
    assert result["figures"]["before"]["val_single"] == pytest.approx(single)
    assert result["figures"]["before"]["val_flip"] == pytest.approx(flipped)
    assert single != flipped
    # The weights are the fit of these very rows (the detect answers above) against these val figures.
    from train.wild_data import half

    fitted_half = np.array([half(p.person) == 0 for p in pics])
    expected = fit(rows, np.array([p.label for p in pics]), fitted_half, single_p, flip_p, split.labels, 0.5)
    assert result["weights"] == expected["weights"]
    for when in ("before", "after"):
        assert result["figures"][when] == pytest.approx(expected["figures"][when])
    printed = capsys.readouterr().out
    for key, value in result["figures"]["after"].items():
        assert f"{key:16s} {result['figures']['before'][key]:.4f} -> {value:.4f}" in printed
    assert "--class-weights " + ",".join(f"{w:g}" for w in result["weights"]) in printed
    assert main(["--model", str(model), "--wild", str(wild), "--data", str(tmp_path / "fer"), "--split", "test",
                 "--floor", "0.5", "--out", str(out)]) == 0
    _, test = load_split(tmp_path / "fer", "test")
    assert len(test) < len(split)
    assert json.loads(out.read_text())["figures"]["before"]["val_single"] == pytest.approx(
        (Classifier(model).predict(np.asarray(test.images)).argmax(1) == test.labels).mean())
    assert len(result["weights"]) == 7 and all(w > 0 for w in result["weights"])
    from edge_runtime.metadata import sha256_file

    assert result["half"] == 0 and result["model"] == str(model) and result["model_sha256"] == sha256_file(model)
    assert (result["wild"], result["data"]) == (str(wild), str(tmp_path / "fer"))
    assert result["fitted_faces"] == 1  # the one photo of half 0 (its face found at full resolution)


def test_the_command_defaults_to_the_shared_data_half_0_and_the_67_percent_floor(capsys):
    args = parser().parse_args(["--model", "m.tflite"])
    assert (args.model, args.wild, args.data, args.half, args.split, args.floor, args.out) == (
        Path("m.tflite"), Path("../shared/wild_dev"), Path("../shared/fer2013"), 0, None, 0.67, None)
    assert [parser().parse_args(["--model", "m.tflite", "--half", h]).half for h in ("0", "1")] == [0, 1]
    assert parser().parse_args(["--model", "m.tflite", "--floor", "1"]).floor == 1.0
    for argv, problem in (([], "--model"), (["--model", "m.tflite", "--half", "2"], "--half"),
                          (["--model", "m.tflite", "--floor", "67"], "--floor 67: expected a number >= 0 and <= 1"),
                          (["--model", "m.tflite", "--floor", "-0.1"], "--floor -0.1: expected"),
                          (["--model", "m.tflite", "--floor", "high"], "--floor high: expected")):
        with pytest.raises(SystemExit):
            parser().parse_args(argv)
        assert problem in capsys.readouterr().err


def test_the_command_names_a_missing_photo_folder_and_a_half_without_faces(tmp_path, capsys):
    model = str(REPO / "models" / "fer_blend_int8.tflite")
    assert main(["--model", model, "--wild", str(tmp_path / "none")]) == 2
    assert str(tmp_path / "none") in capsys.readouterr().err
    wild = tmp_path / "wild" / "neutral"
    wild.mkdir(parents=True)
    shutil.copyfile(REPO / "tests" / "data" / "wild" / "George_W_Bush_0401.jpg", wild / "George_W_Bush_0401.jpg")
    shutil.copytree(REPO / "convert" / "val_sample", tmp_path / "fer" / "val")
    import cv2

    # Half 0's only photo has no face ("Wall" is a person of half 0): nothing to fit on, said so.
    cv2.imwrite(str(wild / "Wall_0001.jpg"), np.full((300, 300, 3), 200, np.uint8))
    assert main(["--model", model, "--wild", str(wild.parent), "--data", str(tmp_path / "fer")]) == 2
    err = capsys.readouterr().err
    assert f"{wild.parent}: no face found in the photos of half 0's people" in err
    (wild / "Broken_0001.jpg").write_bytes(b"not a jpeg")
    assert main(["--model", model, "--wild", str(wild.parent), "--data", str(tmp_path / "fer")]) == 2
    assert f"{wild / 'Broken_0001.jpg'}: not a readable image" in capsys.readouterr().err
