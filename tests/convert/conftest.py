"""Session fixtures for the conversion tests: one tiny trained model, small face sets, a CLI runner.

Conversions dominate the time, so every model any test needs is built once per session.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edge_runtime.labels import LABELS  # noqa: E402
from edge_runtime.metadata import write_json_atomic  # noqa: E402
from edge_runtime.preprocess import Preprocessing  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CALIBRATION_DATA = REPO / "calibration_data"
SIDE = 48


def coded_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark noisy faces with a white square whose position is the class: a tiny CNN learns it in seconds.

    Pixels reach 0 and 255, like real faces, so int8 input quantisation comes out exact.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(LABELS)
    images = rng.integers(0, 60, (n, SIDE, SIDE), dtype=np.uint8)
    for img, label in zip(images, labels, strict=True):
        row, col = divmod(int(label), 3)
        img[4 + 14 * row : 16 + 14 * row, 4 + 14 * col : 16 + 14 * col] = 255
    return images, labels.astype(np.int64)


def write_face_folders(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """<root>/<class>/<i>.png: the image-folder form of FER2013."""
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        path = root / LABELS[int(label)] / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), img)
    return root


def save_keras(model, path: Path) -> Path:
    """model.keras plus the metadata .json every fer-edge model carries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    write_json_atomic(path.with_suffix(".json"), {
        "name": path.stem, "format": "keras", "labels": list(LABELS),
        "input": {"shape": [SIDE, SIDE, 1], "dtype": "float32", "range": [0, 255]},
        "preprocessing": Preprocessing().to_dict(), "arch": "tiny_test_cnn",
    })
    return path


def tiny_cnn(extra=None):
    """Rescaling inside (uint8-range input, like every fer-edge model), one conv, Flatten, softmax."""
    import keras
    from keras import layers

    inp = keras.Input((SIDE, SIDE, 1), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inp)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    if extra is not None:
        x = extra(x)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Flatten()(x)
    return keras.Model(inp, layers.Dense(len(LABELS), activation="softmax")(x), name="tiny_test_cnn")


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="session")
def tiny_model(work) -> Path:
    """A tiny CNN trained to ~100% on coded faces, so a broken quantisation shows as an accuracy drop."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_cnn()
    images, labels = coded_faces(280, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images[..., None].astype("float32"), labels, epochs=8, batch_size=32, verbose=0)
    return save_keras(model, work / "tiny" / "fer_tiny.keras")


@pytest.fixture(scope="session")
def calibration_dir(work) -> Path:
    """A small calibration set made by the real builder (3 coded faces per class)."""
    from convert.calibration import build
    from train.data.dataset import Split

    images, labels = coded_faces(35, seed=2)
    split = Split(images, labels, [f"coded.csv:{i + 2}" for i in range(len(labels))])
    out = work / "calibration"
    build(split, out, per_class=3, seed=0, data_path="coded.csv", command="test")
    return out


@pytest.fixture(scope="session")
def parity_data(work) -> Path:
    """Labelled faces in the image-folder form, as a `val` split."""
    images, labels = coded_faces(70, seed=3)
    write_face_folders(work / "parity" / "val", images, labels)
    return work / "parity"


@pytest.fixture(scope="session")
def int8_model(tiny_model, calibration_dir, parity_data, work) -> Path:
    """The tiny model converted with --int8 --parity-data (one conversion, shared by many tests)."""
    out = work / "int8" / "fer_tiny_int8.tflite"
    code, _, err = run_cli(["convert", "--model", str(tiny_model), "--int8", "--calibration", str(calibration_dir),
                            "--parity-data", str(parity_data), "--out", str(out)])
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def float32_model(tiny_model) -> Path:
    """Default precision and default output name: fer_tiny.keras -> fer_tiny_float32.tflite beside it."""
    code, _, err = run_cli(["convert", "--model", str(tiny_model)])
    assert code == 0, err
    return tiny_model.with_name("fer_tiny_float32.tflite")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`fer-edge ARGV` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from edge_runtime.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    return run_cli


# Helpers as fixtures: with --import-mode=importlib test modules cannot import conftest.
@pytest.fixture
def coded():
    return coded_faces


@pytest.fixture
def face_folders():
    return write_face_folders


@pytest.fixture
def keras_model():
    """keras_model(path, extra=None) -> a saved, untrained tiny CNN (+ metadata); extra adds layers."""

    def make(path: Path, extra=None) -> Path:
        return save_keras(tiny_cnn(extra), path)

    return make


@pytest.fixture(scope="session")
def repo_calibration() -> Path:
    return CALIBRATION_DATA


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    """An `edgetpu_compiler` first on PATH that takes the real one's arguments and writes the expected file.

    The real compiler runs on x86-64 Debian only and cannot be installed here; this stand-in records
    its arguments so tests can check what the converter handed it. exit_code makes it fail.
    """

    def install(exit_code: int = 0) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "edgetpu_compiler"
        script.write_text(f"""#!{sys.executable}
import pathlib, shutil, sys
args = sys.argv[1:]
pathlib.Path({str(tmp_path / "compiler_args.txt")!r}).write_text("\\n".join(args))
print("Edge TPU Compiler version 16.0.384591198 (test stand-in)")
if {exit_code}:
    print("Internal compiler error. Aborting!", file=sys.stderr)
    sys.exit({exit_code})
out = pathlib.Path(args[args.index("--out_dir") + 1])
model = pathlib.Path(args[-1])
shutil.copyfile(model, out / (model.stem + "_edgetpu.tflite"))
print("Model compiled successfully.")
""")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return tmp_path / "compiler_args.txt"

    return install
