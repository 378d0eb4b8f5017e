"""face-api.js's expression network, trained on real photographs, as a starting point for `--arch faceapi_dense`.

`python -m train.faceapi_weights --out runs/faceapi_init96.keras` fetches the npm package @vladmandic/face-api
1.7.15 (MIT; the maintained fork of face-api.js), checks its sha256, reads the expression model's weights
manifest and weights file out of it (nothing else is extracted) and writes a `faceapi_dense` Keras model holding
them, with a card naming the package and carrying both MIT notices. fer_faceapi was trained from it on FER2013
keeping half of every target the network's own first answer (README, step 4: `fer-edge train --arch faceapi_dense
--init runs/faceapi_init96.keras --teacher runs/faceapi_init96.keras --distill 0.5 ...`). FER2013 alone does not
teach what real faces look like (colour photographs, hair, light); face-api's model learnt from real photographs.
The workstation needs this once; the device never does (it runs the converted model).

What differs from face-api's graph: the first conv's filters are summed over the three colour channels (exact for
a grey face, the same value in each); face-api's per-channel mean becomes one grey mean, the difference folded into
that conv's bias (exact away from the border's zero padding); the output classes are put in FER2013's order; and
the face is resized to 96 px inside the graph, not 112 (train/architectures.py says why).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from edge_runtime.labels import LABELS
from edge_runtime.metadata import sidecar_path, write_json_atomic

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
TARBALL_URL = "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz"
TARBALL_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
MANIFEST = "package/model/face_expression_model-weights_manifest.json"
MANIFEST_SHA256 = "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8"
WEIGHTS_SHA256 = {"face_expression_model.bin": "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"}
MEAN_RGB = (122.782, 117.001, 104.298)  # FaceFeatureExtractor.ts subtracts these, then divides by 255
# face-api's class order (FaceExpressions.ts) and the FER2013 class of each
FACEAPI_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
TO_FER = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fearful": "fear",
          "disgusted": "disgust", "surprised": "surprise"}


_MIT = ("Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
        "associated documentation files (the \"Software\"), to deal in the Software without restriction, including "
        "without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell "
        "copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the "
        "following conditions: The above copyright notice and this permission notice shall be included in all "
        "copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF "
        "ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A "
        "PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY "
        "CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF "
        "OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.")
# The licences of the weights' two packages (their LICENSE files): a model made from the weights carries them in
# its card ("notices"), through publish, blend and convert, into a device bundle.
NOTICES = (
    f"Weights from {PACKAGE} {VERSION} (MIT License, Copyright (c) Vladimir Mandic): {_MIT}",
    f"Forked from face-api.js 0.22.2 (MIT License, Copyright (c) 2018 Vincent Mühler): {_MIT}",
)


class WeightsError(ValueError):
    """The package or its weights are not the ones this module knows."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(cache: Path) -> Path:
    """The package tarball, downloaded into cache once (checked before it is kept)."""
    path = cache / f"face-api-{VERSION}.tgz"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(TARBALL_URL, timeout=120) as response:  # noqa: S310 (a fixed https URL)
        data = response.read()
    if _sha256(data) != TARBALL_SHA256:
        raise WeightsError(f"{TARBALL_URL}: sha256 {_sha256(data)} is not the pinned {TARBALL_SHA256}")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _member(tar: tarfile.TarFile, name: str, source: Path) -> bytes:
    try:
        info = tar.getmember(name)
    except KeyError:
        raise WeightsError(f"{source}: no {name} in the package") from None
    if not info.isfile():
        raise WeightsError(f"{source}: {name} is not a regular file")
    return tar.extractfile(info).read()


def read_weights(tarball: str | Path) -> dict[str, np.ndarray]:
    """The expression model's named tensors, dequantised, read straight out of the package tarball."""
    tarball = Path(tarball)
    data = tarball.read_bytes()
    if _sha256(data) != TARBALL_SHA256:
        raise WeightsError(f"{tarball}: sha256 {_sha256(data)} is not {PACKAGE} {VERSION}'s ({TARBALL_SHA256})")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        manifest_bytes = _member(tar, MANIFEST, tarball)
        if _sha256(manifest_bytes) != MANIFEST_SHA256:
            raise WeightsError(f"{tarball}: {MANIFEST} is not the one this module knows")
        out: dict[str, np.ndarray] = {}
        for group in json.loads(manifest_bytes):
            parts = []
            for name in group["paths"]:
                blob = _member(tar, f"package/model/{name}", tarball)
                if WEIGHTS_SHA256.get(name) != _sha256(blob):
                    raise WeightsError(f"{tarball}: package/model/{name} is not the one this module knows")
                parts.append(blob)
            out.update(_decode(group["weights"], b"".join(parts)))
    return out


def _decode(specs: list[dict], buffer: bytes) -> dict[str, np.ndarray]:
    """tfjs weights: float32, or uint8 with a scale and minimum (value = q * scale + min), back to back."""
    out, offset = {}, 0
    for spec in specs:
        count = int(np.prod(spec["shape"]))
        quant = spec.get("quantization")
        if quant:
            raw = np.frombuffer(buffer, np.uint8, count, offset)
            values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            offset += count
        else:
            values = np.frombuffer(buffer, np.float32, count, offset).copy()
            offset += 4 * count
        out[spec["name"]] = values.reshape(spec["shape"])
    if offset != len(buffer):
        raise WeightsError(f"the weights hold {len(buffer)} bytes, the manifest describes {offset}")
    return out


def fer_order() -> list[int]:
    """For each FER2013 class (LABELS order), its index among face-api's outputs."""
    names = {TO_FER[n]: i for i, n in enumerate(FACEAPI_LABELS)}
    return [names[label] for label in LABELS]


def init_model(weights: dict[str, np.ndarray]):
    """A faceapi_dense model holding face-api's weights (first conv summed over RGB, classes in FER order)."""
    from train.architectures import FACEAPI_MEAN, build_model

    model = build_model("faceapi_dense")
    for block in range(4):
        for conv in range(4):
            key, layer = f"dense{block}/conv{conv}", model.get_layer(f"dense{block}_conv{conv}")
            if block == 0 and conv == 0:
                filters = weights[f"{key}/filters"]
                # face-api subtracts a mean per colour channel, the graph one grey mean: the difference, through
                # the filters, is a constant per output channel (exact away from the border's zero padding)
                shift = np.einsum("hwco,c->o", filters, (FACEAPI_MEAN - np.asarray(MEAN_RGB)) / 255.0)
                layer.set_weights([filters.sum(axis=2, keepdims=True), weights[f"{key}/bias"] + shift])
            else:
                layer.set_weights([weights[f"{key}/depthwise_filter"], weights[f"{key}/pointwise_filter"],
                                   weights[f"{key}/bias"]])
    order = fer_order()
    model.get_layer("probabilities").set_weights([weights["fc/weights"][:, order], weights["fc/bias"][order]])
    return model


def card() -> dict:
    """The init model's card: where its weights come from, so that a model trained from it names them too
    (`fer-edge publish` copies an --init model's training record into the new card)."""
    return {
        "name": "faceapi_init",
        "format": "keras",
        "labels": list(LABELS),
        "preprocessing": {"size": 48, "margin": 0.0, "color": "gray"},
        "arch": "faceapi_dense",
        "notices": list(NOTICES),
        "training": {
            "command": "python -m train.faceapi_weights",
            "source": {"package": PACKAGE, "version": VERSION, "tarball": TARBALL_URL, "sha256": TARBALL_SHA256,
                       "files": [MANIFEST, *(f"package/model/{n}" for n in WEIGHTS_SHA256)],
                       "license": "MIT"},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.faceapi_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the .keras model to write")
    parser.add_argument("--tarball", type=Path, help=f"{PACKAGE} {VERSION}'s npm tarball, if already downloaded "
                        "(default: fetched from registry.npmjs.org into ~/.cache/fer-edge)")
    args = parser.parse_args(argv)
    try:
        tarball = args.tarball or fetch(Path.home() / ".cache" / "fer-edge")
        model = init_model(read_weights(tarball))
    except (OSError, WeightsError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    write_json_atomic(sidecar_path(args.out), card())
    print(f"wrote {args.out} ({PACKAGE} {VERSION}, sha256 {TARBALL_SHA256[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
