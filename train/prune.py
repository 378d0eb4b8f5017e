"""Structured channel pruning: a trained network's weights copied into a narrower model of the same layout.

Each conv layer keeps the output channels that matter most to the next layer, scored as the L1 norm of the
channel's kernel (over the input channels already kept) times the |gamma| / sqrt(var + eps) of the batch norm
that follows it: the size of what the channel passes on after normalisation (Li et al. 2017, "Pruning
filters for efficient ConvNets"; Liu et al. 2017, "Network slimming"). The layers after it lose the same
input channels; a Flatten feeding a Dense keeps the rows of the kept channels at every position.

Both models must list the same layer types in the same order (fer_vgg -> fer_vgg_slim): only widths differ.
"""

from __future__ import annotations

import numpy as np


def _layer_kind(layer) -> str:
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, layers.Conv2D):
        return "conv"
    if isinstance(layer, layers.Dense):
        return "dense"
    if isinstance(layer, layers.BatchNormalization):
        return "bn"
    if isinstance(layer, layers.Flatten):
        return "flatten"
    return "other" if not layer.weights else f"unsupported {type(layer).__name__}"


def _bn_scale(bn) -> np.ndarray:
    gamma, _beta, _mean, var = (np.asarray(w) for w in bn.get_weights())
    return np.abs(gamma) / np.sqrt(var + bn.epsilon)


def prune_into(source, target) -> dict[str, tuple[np.ndarray, int]]:
    """Copy `source`'s most important channels into `target` (a model built narrower). Returns, per pruned layer
    (by the target's layer name), the source channels it kept, in order, and how many the source had. Raises
    ValueError when the two layouts differ."""
    src, dst = list(source.layers), list(target.layers)
    kinds_src, kinds_dst = [_layer_kind(la) for la in src], [_layer_kind(la) for la in dst]
    if kinds_src != kinds_dst:
        raise ValueError(f"cannot prune {source.name} into {target.name}: their layers differ "
                         f"({len(src)} vs {len(dst)} layers, or of other kinds in another order)")
    bad = sorted({k for k in kinds_src if k.startswith("unsupported")})
    if bad:
        raise ValueError(f"cannot prune {source.name}: {', '.join(k.split()[1] for k in bad)} layers are not handled")
    keep: np.ndarray | None = None  # the source channels that the current activation keeps
    spatial = 1  # positions per channel after a Flatten, for the Dense that reads it
    kept: dict[str, tuple[np.ndarray, int]] = {}
    for i, (s, d) in enumerate(zip(src, dst)):
        kind = kinds_src[i]
        if kind == "conv" or kind == "dense":
            w = [np.asarray(x) for x in s.get_weights()]
            kernel = w[0]
            if keep is not None:
                if kind == "dense" and spatial > 1:
                    channels = kernel.shape[0] // spatial
                    rows = (np.arange(spatial)[:, None] * channels + keep[None, :]).ravel()
                    kernel = kernel[rows]
                else:
                    kernel = kernel[..., keep, :]
            n_out = d.get_weights()[0].shape[-1]
            if n_out > kernel.shape[-1]:
                raise ValueError(f"{d.name}: the target has more channels ({n_out}) than the source "
                                 f"({kernel.shape[-1]})")
            if n_out < kernel.shape[-1]:
                l1 = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
                nxt = src[i + 1] if i + 1 < len(src) else None
                score = l1 * _bn_scale(nxt) if nxt is not None and kinds_src[i + 1] == "bn" else l1
                out = np.sort(np.argsort(-score, kind="stable")[:n_out])
                kept[d.name] = (out, kernel.shape[-1])
            else:
                out = np.arange(n_out)
            d.set_weights([kernel[..., out]] + [b[out] for b in w[1:]])
            keep, spatial = out, 1
        elif kind == "bn":
            d.set_weights([np.asarray(x)[keep] for x in s.get_weights()])
        elif kind == "flatten":
            shape = s.input.shape[1:]
            spatial = int(np.prod(shape[:-1]))
        elif kind == "depthwise":
            raise ValueError(f"cannot prune {source.name}: depthwise layers are not handled")
    return kept
