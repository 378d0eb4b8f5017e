"""The one interpreter loader and the Classifier's contract, on the shipped int8 model (loads in milliseconds).

Copies of the shipped model with edited metadata stand for the wrong models a user can hand the runtime.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge_runtime.classifier import Classifier, Emotion, default_model_path
from edge_runtime.interpreter import (
    EDGETPU_LIBRARY,
    EdgeTpuError,
    ModelError,
    input_info,
    interpreter_module,
    is_edgetpu_model,
    make_interpreter,
    output_info,
    read_model_bytes,
)
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import preprocess_faces
from tests.conftest import SHIPPED_INT8


def shipped_copy(tmp_path, name="m.tflite", **changes):
    """A copy of the shipped int8 model and its metadata, with `changes` applied to the metadata."""
    path = tmp_path / name
    shutil.copyfile(SHIPPED_INT8, path)
    meta = json.loads(SHIPPED_INT8.with_suffix(".json").read_text())
    meta.update(changes)
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path, meta


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_the_first_interpreter_that_imports_is_litert():
    name, module = interpreter_module()
    assert name == "ai_edge_litert.interpreter"
    assert callable(module.Interpreter) and callable(module.load_delegate)


def test_edge_tpu_models_are_known_by_their_name():
    assert is_edgetpu_model("models/fer_mobile_int8_edgetpu.tflite")
    assert not is_edgetpu_model("models/fer_mobile_int8.tflite")
    assert not is_edgetpu_model("edgetpu/fer_edgetpu_int8.tflite")


def test_model_bytes_are_refused_with_a_sentence(tmp_path):
    with pytest.raises(ModelError, match=f"^{re.escape(str(tmp_path / 'x.tflite'))}: model file not found$"):
        read_model_bytes(tmp_path / "x.tflite")
    with pytest.raises(ModelError, match=r": cannot read model: Is a directory$"):
        read_model_bytes(tmp_path)
    short = tmp_path / "short.tflite"
    short.write_bytes(b"\0\0\0\0TFL")
    with pytest.raises(ModelError, match=r"short\.tflite: not a TFLite model \(no TFL3 flatbuffer identifier; 7 bytes"):
        read_model_bytes(short)
    minimal = tmp_path / "minimal.tflite"
    minimal.write_bytes(b"\0\0\0\0TFL3")  # eight bytes with the identifier: a flatbuffer header, so far
    assert read_model_bytes(minimal) == b"\0\0\0\0TFL3"


def test_shipped_model_tensors():
    interpreter = make_interpreter(SHIPPED_INT8)
    inp, out = input_info(interpreter), output_info(interpreter)
    assert (inp.shape, inp.dtype, inp.scale, inp.zero_point) == ((1, 48, 48, 1), np.int8, 1.0, -128)
    assert (out.shape, out.dtype, out.scale, out.zero_point) == ((1, 7), np.int8, 1 / 256, -128)
    assert inp.quantized and out.quantized and inp.index != out.index


def test_a_changed_model_is_named_with_both_hashes(tmp_path):
    path, meta = shipped_copy(tmp_path)
    content = bytearray(path.read_bytes())
    content[-1] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(ModelError, match=rf"m\.tflite: sha256 [0-9a-f]{{12}}\.\.\. differs from the "
                                         rf"{meta['sha256'][:12]}\.\.\. that its metadata m\.json records"):
        make_interpreter(path)


def test_a_sha256_in_capitals_or_none_at_all_is_accepted(tmp_path):
    path, meta = shipped_copy(tmp_path, "upper.tflite")
    shipped_copy(tmp_path, "upper.tflite", sha256=meta["sha256"].upper())
    assert input_info(make_interpreter(path)).dtype == np.int8
    bare, meta = shipped_copy(tmp_path, "bare.tflite")
    del meta["sha256"]
    bare.with_suffix(".json").write_text(json.dumps(meta))
    assert input_info(make_interpreter(bare)).dtype == np.int8


def test_a_device_for_a_cpu_model_and_an_edge_tpu_model_without_its_runtime(tmp_path):
    with pytest.raises(ModelError, match=r"m\.tflite: device 'usb' given, but this is not an Edge TPU model"):
        make_interpreter(shipped_copy(tmp_path)[0], device="usb")
    edgetpu, _ = shipped_copy(tmp_path, "m_edgetpu.tflite")
    with pytest.raises(EdgeTpuError) as info:
        make_interpreter(edgetpu)
    assert str(info.value) == ("Edge TPU runtime libedgetpu.so.1 is not installed: install it with `sudo apt-get "
                               "install libedgetpu1-std` (Coral apt repository), or use the CPU model (the one "
                               "without _edgetpu in its name)")


def test_the_default_model_is_the_shipped_device_model():
    assert default_model_path() == SHIPPED_INT8.resolve() and default_model_path().is_file()


def test_emotion_as_dict_names_and_rounds():
    emotion = Emotion("b", 0.5, (0.1234567, 0.5, 0.3765433))
    assert emotion.as_dict(("a", "b", "c")) == {"a": 0.123457, "b": 0.5, "c": 0.376543}


@pytest.mark.parametrize("batch_size", [1, 4])
def test_batches_give_what_one_face_at_a_time_gives(batch_size):
    one = Classifier(SHIPPED_INT8)
    assert one.batch_size == 1 and one.labels == LABELS and one.preprocessing.size == 48
    many = Classifier(SHIPPED_INT8, batch_size=batch_size)
    assert many.batch_size == batch_size and many.input.shape[0] == batch_size
    x = faces(5)
    expected = np.concatenate([one.predict(face) for face in x])
    got = many.predict(x)
    assert got.shape == (5, 7) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # Seven int8 outputs, each within half a step (1/512) of a softmax that sums to 1.
    assert np.allclose(got.sum(1), 1.0, rtol=0, atol=7 / 512)
    # Float pixels in 0..255 are the same faces.
    np.testing.assert_array_equal(many.predict(x.astype(np.float32)), got)
    assert Classifier(SHIPPED_INT8, batch_size=0).batch_size == 1


def test_classify_names_the_top_class():
    clf = Classifier(SHIPPED_INT8)
    for emotion, p in zip(clf.classify(faces(3, seed=1)), clf.predict(faces(3, seed=1))):
        assert emotion.label == LABELS[int(np.argmax(p))] and emotion.score == float(p.max())
        assert emotion.probabilities == tuple(float(v) for v in p)


def test_boxes_are_cropped_with_the_model_margin(tmp_path):
    path, _ = shipped_copy(tmp_path, preprocessing={"size": 48, "margin": 0.25, "color": "gray"})
    clf = Classifier(path)
    frame = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = [(40, 30, 40, 40), (100, 50, 30, 30)]
    expected = clf.classify(preprocess_faces(frame, boxes, margin=0.25))
    assert clf.classify_boxes(frame, boxes) == expected
    assert clf.classify_boxes(frame, boxes) != clf.classify(preprocess_faces(frame, boxes, margin=0.0))
    assert clf.classify_boxes(frame, []) == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"preprocessing": {"size": 64}},
     r"model input shape \(1, 48, 48, 1\) does not take 64x64 grayscale faces \(expected \[N, 64, 64, 1\] from"),
    ({"labels": list(LABELS[:6])}, r"model has 7 outputs but its metadata names 6 labels"),
    ({"quantization": {"input": {"scale": 1.0}}},
     r"metadata quantization\.input must have scale and zero_point, got \{'scale': 1\.0\}"),
    ({"quantization": {"output": [0.00390625, -128]}}, r"metadata quantization\.output must have scale and zero_point"),
    ({"quantization": {"output": {"scale": 0.00390625, "zero_point": -127}}},
     r"output quantisation \(scale 0\.00390625, zero point -128\) differs from its metadata"),
    ({"quantization": {"input": {"scale": 1.00001, "zero_point": -128}}},
     r"input quantisation \(scale 1\.0, zero point -128\) differs from its metadata"),
])
def test_metadata_that_does_not_fit_the_model_is_refused(tmp_path, changes, message):
    path, _ = shipped_copy(tmp_path, **changes)
    with pytest.raises(ModelError, match=r"m\.tflite: " + message):
        Classifier(path)


def test_quantisation_within_float32_rounding_of_the_metadata_is_accepted(tmp_path):
    path, _ = shipped_copy(tmp_path, quantization={"output": {"scale": 0.00390625 + 5e-7, "zero_point": -128}})
    assert Classifier(path).output.scale == 1 / 256
    path, _ = shipped_copy(tmp_path, "n.tflite", quantization={})
    assert Classifier(path).input.zero_point == -128


def test_tensorflow_lite_is_the_last_fallback(monkeypatch):
    # The light runtimes missing (a None entry in sys.modules makes their import fail), as on a
    # workstation with only TensorFlow: the loader takes tf.lite and its delegate loader.
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    name, module = interpreter_module()
    import tensorflow as tf

    assert name == "tensorflow.lite"
    assert module.Interpreter is tf.lite.Interpreter and module.load_delegate is tf.lite.experimental.load_delegate
    clf = Classifier(SHIPPED_INT8)
    x = faces(2, seed=5)
    monkeypatch.undo()
    np.testing.assert_array_equal(clf.predict(x), Classifier(SHIPPED_INT8).predict(x))


def test_no_interpreter_at_all_names_every_attempt(monkeypatch):
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite", "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError) as info:
        interpreter_module()
    text = str(info.value)
    assert text.startswith("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime); tried "
                           "ai_edge_litert.interpreter: ")
    assert re.search(r"tried ai_edge_litert\.interpreter: .+; tflite_runtime\.interpreter: .+; tensorflow\.lite: .+",
                     text)


def test_eight_bytes_without_the_identifier_are_refused(tmp_path):
    path = tmp_path / "png.tflite"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelError, match=r"png\.tflite: not a TFLite model \(no TFL3 flatbuffer identifier; 108 bytes"):
        read_model_bytes(path)


def test_a_model_without_metadata_still_loads(tmp_path):
    # The loader checks a sha256 only where metadata gives one; the Classifier is what needs metadata.
    path = tmp_path / "bare.tflite"
    shutil.copyfile(SHIPPED_INT8, path)
    assert input_info(make_interpreter(path)).shape == (1, 48, 48, 1)


def test_the_changed_model_message_says_what_to_do(tmp_path):
    path, _ = shipped_copy(tmp_path)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelError, match=r"the model file is corrupt or was changed after conversion; refusing to "
                                         r"load it \(copy or convert it again\)$"):
        make_interpreter(path)


def test_the_classifier_passes_the_device_on():
    with pytest.raises(ModelError, match="device 'usb' given, but this is not an Edge TPU model"):
        Classifier(SHIPPED_INT8, device="usb")


def test_batches_of_any_size_cover_every_face():
    x = faces(7, seed=9)
    single = Classifier(SHIPPED_INT8)
    expected = np.concatenate([single.predict(face) for face in x])
    for batch_size in (2, 48):
        np.testing.assert_array_equal(Classifier(SHIPPED_INT8, batch_size=batch_size).predict(x), expected)


def test_float_faces_are_rounded_to_the_model_s_integer_input():
    clf = Classifier(SHIPPED_INT8)
    x = np.minimum(faces(6, seed=4), 254).astype(np.float32)
    x[:, ::2] += 0.6  # fractional pixels round up, not down
    np.testing.assert_array_equal(clf.predict(x), clf.predict(np.rint(x).astype(np.uint8)))


def test_to_emotion_takes_the_top_class():
    clf = Classifier(SHIPPED_INT8)
    emotion = clf.to_emotion(np.array([0.1, 0.05, 0.6, 0.05, 0.1, 0.05, 0.05]))
    assert (emotion.label, emotion.score) == ("fear", 0.6) and emotion.probabilities[2] == 0.6


def test_metadata_without_a_quantization_section_is_accepted(tmp_path):
    path, meta = shipped_copy(tmp_path)
    del meta["quantization"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert Classifier(path).input.zero_point == -128


# The Edge TPU runtime (libedgetpu) needs a Coral and cannot be installed here: a stand-in library with the
# same plugin entry points, loaded by LiteRT's real load_delegate, answers like a runtime with no device and
# writes down the options it was given.
EDGETPU_STAND_IN = r"""
#include <stdio.h>
#include <stdlib.h>
void *tflite_plugin_create_delegate(char **keys, char **values, size_t n, void (*report)(const char *)) {
    const char *log = getenv("FER_EDGE_TEST_DELEGATE_LOG");
    if (log) {
        FILE *f = fopen(log, "w");
        for (size_t i = 0; i < n; i++) fprintf(f, "%s=%s\n", keys[i], values[i]);
        fclose(f);
    }
    if (report) report("no Edge TPU device answered (test stand-in)");
    return NULL;
}
void tflite_plugin_destroy_delegate(void *delegate) {}
"""


@pytest.fixture
def edgetpu_stand_in(tmp_path, monkeypatch):
    if shutil.which("gcc") is None or platform.system() != "Linux":
        pytest.skip("the Edge TPU runtime stand-in is built with gcc on Linux")
    (tmp_path / "stand_in.c").write_text(EDGETPU_STAND_IN)
    library = tmp_path / "libedgetpu.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(tmp_path / "stand_in.c")], check=True)
    monkeypatch.setitem(EDGETPU_LIBRARY, "Linux", str(library))
    options = tmp_path / "options.txt"
    monkeypatch.setenv("FER_EDGE_TEST_DELEGATE_LOG", str(options))
    return library, options


@pytest.mark.parametrize(("device", "named", "passed"), [("usb:0", " 'usb:0'", "device=usb:0\n"), (None, "", "")])
def test_an_edge_tpu_runtime_without_a_device_is_named(tmp_path, edgetpu_stand_in, device, named, passed):
    library, options = edgetpu_stand_in
    model, _ = shipped_copy(tmp_path, "m_edgetpu.tflite")
    with pytest.raises(EdgeTpuError) as info:
        make_interpreter(model, device=device)
    assert str(info.value) == (
        f"Edge TPU runtime found but no Edge TPU device{named} answered: is the Coral plugged in (USB 3 port) or its "
        f"PCIe driver loaded? (Failed to load delegate from {library}\nno Edge TPU device answered (test stand-in))")
    assert options.read_text() == passed


def custom_op_model(tmp_path, name: str, op: bytes):
    """The shipped model with its first operator replaced by a custom op this runtime does not have."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(SHIPPED_INT8.read_bytes(), 0))
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = op
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / name
    path.write_bytes(bytes(builder.Output()))
    return path


def test_a_model_the_runtime_cannot_run_is_named_and_an_edge_tpu_model_gets_a_hint(tmp_path):
    compiled = custom_op_model(tmp_path, "compiled.tflite", b"edgetpu-custom-op")
    with pytest.raises(ModelError) as info:
        make_interpreter(compiled)
    assert str(info.value).startswith(
        f"{compiled}: the TFLite runtime cannot load this model (an Edge TPU model needs the Edge TPU delegate): "
        "Encountered unresolved custom op: edgetpu-custom-op.")
    other = custom_op_model(tmp_path, "other.tflite", b"FancyOp")
    with pytest.raises(ModelError) as info:
        make_interpreter(other)
    assert str(info.value).startswith(
        f"{other}: the TFLite runtime cannot load this model: Encountered unresolved custom op: FancyOp.")
