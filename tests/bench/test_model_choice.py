"""bench.model_choice: the blend's pooling, and a whole run on in-repo photos and faces."""

from __future__ import annotations

import shutil

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bench.model_choice import main, pooled
from tests.conftest import MODELS, REPO, VAL_SAMPLE

WILD_DIR = REPO / "tests" / "data" / "wild"

probs = arrays(np.float64, (3, 7), elements=st.floats(0.01, 1.0)).map(lambda a: a / a.sum(axis=1, keepdims=True))


@given(p=probs, q=probs, weight=st.floats(0.0, 1.0))
def test_pooling_is_a_normalised_weighted_geometric_mean(p, q, weight):
    out = pooled(p, q, weight)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
    g = p ** (1 - weight) * q ** weight
    np.testing.assert_allclose(out, g / g.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(pooled(p, q, 0.0), p, rtol=1e-6)
    np.testing.assert_allclose(pooled(p, q, 1.0), q, rtol=1e-6)


def test_a_run_reports_each_model_and_each_weight(tmp_path, capsys):
    for name, label in (("Billy_Crystal_0004.jpg", "angry"), ("Jennifer_Capriati_0030.jpg", "happy"),
                        ("George_W_Bush_0401.jpg", "neutral")):
        (tmp_path / label).mkdir()
        shutil.copy(WILD_DIR / name, tmp_path / label / name)
    cnn, mobile = MODELS / "fer_cnn_int8.tflite", MODELS / "fer_mobile_int8.tflite"
    assert main(["--model", str(cnn), "--model", str(mobile), "--wild", str(tmp_path), "--fer", str(VAL_SAMPLE),
                 "--split", "train", "--weight", "0.4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("wild_dev: 3 faces found; FER2013 train: 350 faces")
    assert out[1].startswith(f"{cnn}: wild_dev ") and out[2].startswith(f"{mobile}: wild_dev ")
    assert out[3].startswith(f"0.60 {cnn} + 0.40 {mobile}: wild_dev ") and len(out) == 4
