"""edge_runtime runs with TensorFlow, Keras and the workstation packages (release_tools too) made unimportable."""

import json
import subprocess
import sys
import textwrap

import cv2

from bench.scenes import SceneOptions, render

BLOCKED = ("tensorflow", "keras", "train", "convert", "release_tools")

SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, json, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: edge_runtime must not need it")
            return None

    sys.meta_path.insert(0, Block())
    import edge_runtime
    # Every module, the daemon's (config, capture, sinks, HTTP, systemd) included.
    modules = [m.name for m in pkgutil.walk_packages(edge_runtime.__path__, "edge_runtime.")]
    for name in modules:
        importlib.import_module(name)

    from edge_runtime.classifier import Classifier
    from edge_runtime.cli import build_parser, main
    from edge_runtime.detector import HaarDetector
    from edge_runtime.pipeline import Pipeline
    from edge_runtime.sources import open_source

    image, model = sys.argv[2], sys.argv[3]
    epilog = build_parser().epilog
    pipeline = Pipeline(HaarDetector(), Classifier(model))
    with open_source(image) as source:
        faces = [f for frame in source for f in pipeline.process(frame, still=True).faces]
    status = main(["detect", image, "--model", model, "--json"])
    daemon_status = main(["run", "--source", image, "--model", model, "--jsonl", sys.argv[4], "--http", "off"])
    print(json.dumps({
        "faces": len(faces), "labels": [f.emotion.label for f in faces], "status": status,
        "daemon_status": daemon_status, "modules": modules,
        "epilog": epilog, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    }))
""")


def test_detection_and_classification_without_tensorflow(tmp_path, frontal_faces, int8_model):
    frame, _ = next(render(frontal_faces[:2], SceneOptions(frames=1, seed=40)))
    image = tmp_path / "two_faces.png"
    cv2.imwrite(str(image), frame)
    jsonl = tmp_path / "events.jsonl"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(BLOCKED), str(image), str(int8_model), str(jsonl)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["loaded"] == []
    assert report["faces"] == 2 and report["status"] == 0
    # The camera daemon runs too: it reads the image as a one-frame file source and ends cleanly.
    assert report["daemon_status"] == 0 and "edge_runtime.daemon.sinks.mqtt" in report["modules"]
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    # Online before the faces of its first frame, the faces ended, then offline at the end of the file.
    assert [(r["type"], r.get("state")) for r in records if r["type"] == "camera"] == [("camera", "online"),
                                                                                       ("camera", "offline")]
    assert records[0]["type"] == records[-1]["type"] == "camera"
    ids = {kind: sorted(r["id"] for r in records if r["type"] == kind) for kind in ("new", "end")}
    assert ids["new"] == ids["end"]
    # The CLI printed one JSON line per face before the report.
    assert [json.loads(line)["label"] for line in lines[:-1]] == report["labels"]
    # The workstation commands are missing here, and the CLI says so instead of failing.
    assert "Unavailable here: " in report["epilog"]
    assert all(f"{name} ({name} is blocked" in report["epilog"] for name in ("train", "convert"))
    assert "release (release_tools is blocked" in report["epilog"]
