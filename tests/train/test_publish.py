"""`fer-edge publish`: a finished run becomes models/NAME.keras with a model card that carries the
evaluation, the cost per face and the parity of the TFLite builds beside it."""

from __future__ import annotations

import json
import shutil

import pytest

keras = pytest.importorskip("keras")

from edge_runtime.metadata import sha256_file, write_json_atomic  # noqa: E402
from train.architectures import build_model, count_macs  # noqa: E402
from train.data import Split  # noqa: E402
from train.publish import publish  # noqa: E402
from train.report import write_report  # noqa: E402


@pytest.fixture
def finished_run(tmp_path, class_coded_faces):
    run = tmp_path / "run"
    run.mkdir()
    model = build_model("shallow_cnn")
    # As a training run leaves it: compiled, with the optimiser's state after a step.
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    faces, labels = class_coded_faces(14)
    model.train_on_batch(faces[..., None].astype("float32"), keras.utils.to_categorical(labels, 7))
    model.save(run / "model.keras")
    write_json_atomic(run / "model.json", {"name": "model", "format": "keras", "arch": "shallow_cnn",
                                           "preprocessing": {"size": 48, "margin": 0.0, "color": "gray"}})
    write_report(run / "model.keras", Split(*class_coded_faces(14)), run / "report")
    return run, count_macs(model)


def test_publish_writes_the_model_and_its_card(finished_run, tmp_path):
    run, macs = finished_run
    models = tmp_path / "models"
    models.mkdir()
    # A converted sibling, as `fer-edge convert` leaves it: its size and parity go into the card.
    (models / "fer_x_int8.tflite").write_bytes(b"x" * 10)
    write_json_atomic(models / "fer_x_int8.json", {"format": "tflite", "precision": "int8", "size_bytes": 10,
                                                   "sha256": "ab", "parity": {"accuracy_drop": 0.001,
                                                                              "per_class": {"happy": 0.0}}})
    target = publish(run, "fer_x", models)

    card = json.loads((models / "fer_x.json").read_text())
    assert target == models / "fer_x.keras" and card["sha256"] == sha256_file(target)
    assert card["name"] == "fer_x" and card["arch"] == "shallow_cnn"
    assert card["multiply_adds"] == macs > 0
    assert card["evaluation"]["faces"] == 14 and card["evaluation"]["single_crop"] is True
    assert card["report"]["confusion_matrix"] == "fer_x_report/confusion_matrix.png"
    assert (models / card["report"]["confusion_matrix"]).exists()
    assert card["tflite"]["int8"] == {"file": "fer_x_int8.tflite", "size_bytes": 10, "sha256": "ab",
                                      "parity": {"accuracy_drop": 0.001}}


def test_the_published_model_predicts_like_the_run_without_its_optimiser(finished_run, tmp_path, class_coded_faces):
    run, _ = finished_run
    target = publish(run, "fer_x", tmp_path / "models")
    trained = keras.saving.load_model(run / "model.keras")
    shipped = keras.saving.load_model(target)
    assert trained.optimizer is not None and getattr(shipped, "optimizer", None) is None
    assert target.stat().st_size < 0.6 * (run / "model.keras").stat().st_size
    x = class_coded_faces(14)[0][..., None].astype("float32")
    assert (shipped.predict(x, verbose=0) == trained.predict(x, verbose=0)).all()


def test_publish_names_what_an_unfinished_run_lacks(finished_run, tmp_path):
    run, _ = finished_run
    (run / "report" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics\.json: missing"):
        publish(run, "fer_x", tmp_path)


def test_a_run_started_from_another_carries_its_training_record(finished_run, tmp_path):
    run, _ = finished_run
    first = tmp_path / "first.keras"
    first.write_bytes((run / "model.keras").read_bytes())
    write_json_atomic(tmp_path / "first.json", {"training": {"command": "fer-edge train --epochs 28"}})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --init first.keras", "config": {"init": str(first)}}
    write_json_atomic(run / "model.json", meta)

    publish(run, "fer_x", tmp_path / "models")
    card = json.loads((tmp_path / "models" / "fer_x.json").read_text())
    assert card["training"]["command"] == "fer-edge train --init first.keras"
    assert card["training"]["init_from"] == {"model": str(first), "sha256": sha256_file(first),
                                             "training": {"command": "fer-edge train --epochs 28"}}


def test_a_run_that_continues_the_model_it_replaces_keeps_that_models_record(finished_run, tmp_path):
    # vgg_c2 started from models/fer_cnn.keras and was published as fer_cnn: the card must name the first
    # cycle's command, not its own, and publishing again (after convert) must keep it.
    run, _ = finished_run
    models = tmp_path / "models"
    models.mkdir()
    old = models / "fer_x.keras"
    old.write_bytes(b"the first cycle's model")
    write_json_atomic(models / "fer_x.json", {"sha256": sha256_file(old),
                                              "training": {"command": "fer-edge train --epochs 22"}})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --init models/fer_x.keras", "config": {"init": str(old)}}
    write_json_atomic(run / "model.json", meta)
    expected = {"model": str(old), "sha256": sha256_file(old), "training": {"command": "fer-edge train --epochs 22"}}

    publish(run, "fer_x", models)
    assert json.loads((models / "fer_x.json").read_text())["training"]["init_from"] == expected
    assert sha256_file(old) != expected["sha256"]  # the file was replaced by the new model
    publish(run, "fer_x", models)
    assert json.loads((models / "fer_x.json").read_text())["training"]["init_from"] == expected


def test_the_card_records_which_files_the_teachers_were_even_one_the_run_replaces(finished_run, tmp_path):
    # vgg_c3r distilled from models/fer_cnn.keras (vgg_c2) and fer_mobile, and was published as fer_cnn.
    run, _ = finished_run
    models = tmp_path / "models"
    models.mkdir()
    old, other = models / "fer_x.keras", models / "fer_y.keras"
    old.write_bytes(b"the model this run replaces")
    other.write_bytes(b"another teacher")
    write_json_atomic(models / "fer_x.json", {"name": "fer_x", "sha256": sha256_file(old),
                                              "evaluation": {"accuracy": 0.6693}})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --teacher models/fer_x.keras --teacher models/fer_y.keras",
                        "config": {"teacher": [str(old), str(models / "gone.keras"), str(other)]}}
    write_json_atomic(run / "model.json", meta)
    expected = [{"model": str(old), "sha256": sha256_file(old), "name": "fer_x", "val_accuracy": 0.6693},
                {"model": str(models / "gone.keras"), "sha256": None, "note": "not found when published"},
                {"model": str(other), "sha256": sha256_file(other), "name": None, "val_accuracy": None}]

    publish(run, "fer_x", models)
    assert json.loads((models / "fer_x.json").read_text())["training"]["teachers"] == expected
    assert sha256_file(old) != expected[0]["sha256"]  # replaced by the new model ...
    publish(run, "fer_x", models)  # ... and publishing again (after convert) keeps what the teacher was
    training = json.loads((models / "fer_x.json").read_text())["training"]
    assert training["teachers"] == expected and training["command"] == meta["training"]["command"]


def test_publishing_the_same_run_again_keeps_the_shipped_bytes(finished_run, tmp_path):
    # publish -> convert (the int8 build records the float model's sha256) -> publish to refresh the card.
    run, _ = finished_run
    models = tmp_path / "models"
    target = publish(run, "fer_x", models)
    first = sha256_file(target)
    publish(run, "fer_x", models)
    assert sha256_file(target) == first
    assert json.loads((models / "fer_x.json").read_text())["sha256"] == first
    # A different run (or a changed model file) is written anew.
    keras.saving.load_model(run / "model.keras").save(run / "model.keras")
    publish(run, "fer_x", models)
    assert json.loads((models / "fer_x.json").read_text())["run_model_sha256"] == sha256_file(run / "model.keras")


def test_the_publish_command_prints_one_line_and_no_tensorflow_noise(finished_run, tmp_path):
    import os
    import subprocess
    import sys

    run, _ = finished_run
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    proc = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "publish", str(run), "--name", "fer_x",
                           "--models", str(tmp_path / "models")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("published ") and len(proc.stdout.splitlines()) == 1


def test_the_licences_of_weights_a_run_started_from_follow_it_into_the_card(finished_run, tmp_path):
    run, _ = finished_run
    first = tmp_path / "faceapi_init.keras"
    first.write_bytes((run / "model.keras").read_bytes())
    notices = ["Weights from a package (MIT License, Copyright (c) Someone): Permission is hereby granted..."]
    write_json_atomic(tmp_path / "faceapi_init.json", {"notices": notices, "training": {"command": "init"}})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --init", "config": {"init": str(first)}}
    write_json_atomic(run / "model.json", meta)
    models = tmp_path / "models"
    publish(run, "fer_real", models)
    assert json.loads((models / "fer_real.json").read_text())["notices"] == notices
    first = json.loads((models / "fer_real.json").read_text())
    (tmp_path / "faceapi_init.keras").unlink()  # runs/ cleaned before the card is refreshed after convert
    (tmp_path / "faceapi_init.json").unlink()
    publish(run, "fer_real", models)
    again = json.loads((models / "fer_real.json").read_text())
    assert again["notices"] == notices and again["training"]["init_from"] == first["training"]["init_from"]
    assert again["training"]["init_from"]["training"] == {"command": "init"}
    # another run from the same (now missing) init is not this model: nothing is carried over to it
    other = tmp_path / "other_run"
    shutil.copytree(run, other)
    keras_bytes = (other / "model.keras").read_bytes()
    (other / "model.keras").write_bytes(keras_bytes + b"\0")  # other bytes, another run
    publish(other, "fer_real", models)
    card = json.loads((models / "fer_real.json").read_text())
    assert "notices" not in card and "init_from" not in card["training"]


def test_a_students_card_carries_its_teachers_licence_notices_once_each(finished_run, tmp_path):
    # A student distilled from a blend that holds fer_faceapi learnt face-api's answers: its MIT notices go with it,
    # beside those of the weights it started from, each once, and stay when the card is refreshed without runs/.
    run, _ = finished_run
    mit, other = "Weights from face-api (MIT License) ...", "Forked from face-api.js (MIT License) ..."
    started = "Weights it started from (Apache-2.0) ..."
    init, pool, plain = tmp_path / "init.keras", tmp_path / "pool.keras", tmp_path / "plain.keras"
    for path, notices in ((init, [started]), (pool, [mit, other]), (plain, None)):
        path.write_bytes(path.name.encode())
        write_json_atomic(path.with_suffix(".json"), {"name": path.stem, **({"notices": notices} if notices else {})})
    (tmp_path / "again.json").write_text(json.dumps({"notices": [other, mit]}))
    again = tmp_path / "again.keras"
    again.write_bytes(b"a second teacher with the same notices")
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --teacher pool --teacher plain --teacher again --init init",
                        "config": {"init": str(init), "teacher": [str(pool), str(plain), str(again)]}}
    write_json_atomic(run / "model.json", meta)
    models = tmp_path / "models"

    publish(run, "fer_student", models)
    assert json.loads((models / "fer_student.json").read_text())["notices"] == [started, mit, other]
    for path in (init, pool, plain, again):
        path.unlink()
        path.with_suffix(".json").unlink()
    publish(run, "fer_student", models)
    assert json.loads((models / "fer_student.json").read_text())["notices"] == [started, mit, other]


def test_a_teacher_without_notices_adds_none(finished_run, tmp_path):
    run, _ = finished_run
    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes(b"teacher")
    write_json_atomic(tmp_path / "teacher.json", {"name": "teacher", "notices": []})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --teacher t", "config": {"teacher": str(teacher)}}
    write_json_atomic(run / "model.json", meta)
    publish(run, "fer_student", tmp_path / "models")
    assert "notices" not in json.loads((tmp_path / "models" / "fer_student.json").read_text())


def test_a_student_with_no_init_keeps_its_teachers_notices_when_republished_without_them(finished_run, tmp_path):
    run, _ = finished_run
    teacher = tmp_path / "pool.keras"
    teacher.write_bytes(b"pool")
    write_json_atomic(tmp_path / "pool.json", {"name": "pool", "notices": ["MIT notice"]})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --teacher pool", "config": {"teacher": str(teacher)}}
    write_json_atomic(run / "model.json", meta)
    models = tmp_path / "models"
    publish(run, "fer_student", models)
    teacher.unlink()
    (tmp_path / "pool.json").unlink()
    publish(run, "fer_student", models)  # the card refreshed after convert, runs/ cleaned
    card = json.loads((models / "fer_student.json").read_text())
    assert card["notices"] == ["MIT notice"] and card["training"]["teachers"][0]["name"] == "pool"


def test_another_run_with_other_teachers_gets_its_own_record_and_a_bare_target_is_no_obstacle(finished_run, tmp_path):
    # models/fer_x.keras without a card (copied in by hand) does not stop a distilled run from being published over
    # it; a second run with another command and teacher records its own teacher, not the first run's.
    run, _ = finished_run
    models = tmp_path / "models"
    models.mkdir()
    (models / "fer_x.keras").write_bytes(b"a model copied here without its card")
    first, second = tmp_path / "first.keras", tmp_path / "second.keras"
    for path in (first, second):
        path.write_bytes(path.name.encode())
        write_json_atomic(path.with_suffix(".json"), {"name": path.stem})
    meta = json.loads((run / "model.json").read_text())
    meta["training"] = {"command": "fer-edge train --teacher first", "config": {"teacher": str(first)}}
    write_json_atomic(run / "model.json", meta)
    publish(run, "fer_x", models)
    assert json.loads((models / "fer_x.json").read_text())["training"]["teachers"][0]["name"] == "first"
    meta["training"] = {"command": "fer-edge train --teacher second", "config": {"teacher": str(second)}}
    write_json_atomic(run / "model.json", meta)
    publish(run, "fer_x", models)
    assert [t["name"] for t in json.loads((models / "fer_x.json").read_text())["training"]["teachers"]] == ["second"]
