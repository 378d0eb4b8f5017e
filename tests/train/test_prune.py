"""Channel pruning (train/prune.py): the narrower model computes exactly what the wider one computes with its
dropped channels silenced, the channels kept are the ones that pass the most on, and layouts that differ are
refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from train.architectures import build_model
from train.prune import prune_into


@pytest.fixture(scope="module")
def trained_like():
    """fer_vgg with its batch norms spread like a trained network's (random gamma, beta and statistics)."""
    model = build_model("fer_vgg")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.1, 2.0, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 2.0, n)])
    return model


def test_the_pruned_model_is_the_wide_one_with_its_dropped_channels_silenced(trained_like):
    slim = build_model("fer_vgg_slim")
    kept = prune_into(trained_like, slim)
    assert {name: (len(k), of) for name, (k, of) in kept.items()} == {
        f"stage{s}_conv{c}": (w * 3 // 4, w) for s, w in enumerate((32, 64, 128, 256), 1) for c in (1, 2)}
    silenced = build_model("fer_vgg")
    silenced.set_weights(trained_like.get_weights())
    layers = silenced.layers
    for i, layer in enumerate(layers):
        if layer.name in kept:
            bn = layers[i + 1]
            gamma, beta, mean, var = bn.get_weights()
            drop = np.setdiff1d(np.arange(len(gamma)), kept[layer.name][0])
            gamma[drop], beta[drop] = 0.0, 0.0  # the channel's output is 0 after BN and ReLU
            bn.set_weights([gamma, beta, mean, var])
    faces = np.random.default_rng(1).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(slim.predict(faces, verbose=0), silenced.predict(faces, verbose=0), atol=1e-5)


def test_the_channels_kept_are_those_that_pass_the_most_on(trained_like):
    kept = prune_into(trained_like, build_model("fer_vgg_slim"))
    conv = trained_like.get_layer("stage1_conv2")
    bn = trained_like.layers[trained_like.layers.index(conv) + 1]
    gamma, _, _, var = bn.get_weights()
    first = kept["stage1_conv1"][0]
    l1 = np.abs(conv.get_weights()[0][:, :, first, :]).sum(axis=(0, 1, 2))
    score = l1 * np.abs(gamma) / np.sqrt(var + bn.epsilon)
    channels = kept["stage1_conv2"][0]
    assert list(channels) == sorted(channels)  # order kept: the next layer's inputs line up
    assert score[channels].min() >= np.delete(score, channels).max()


def test_a_wider_target_or_another_layout_is_refused(trained_like):
    with pytest.raises(ValueError, match="more channels"):
        prune_into(build_model("fer_vgg_slim"), build_model("fer_vgg"))
    with pytest.raises(ValueError, match="cannot prune fer_vgg into fer_mobile: their layers differ"):
        prune_into(trained_like, build_model("fer_mobile"))
