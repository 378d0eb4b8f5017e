"""Put each of the audit's 13 bugs (issue 15) back, one at a time, into a copy of the packages, and run the
tests that must catch it. Not a test module (pytest does not collect it); run it by hand:

    .venv/bin/python tests/audit_bugs.py            # every bug; exit 1 if any is not caught
    .venv/bin/python tests/audit_bugs.py tracker_double_claim

A bug whose text is no longer in the source (the code was rewritten) is reported as such, not as caught.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name: (file, text in the source, the bug, the tests that must fail)
BUGS = {
    "tracker_double_claim": ("edge_runtime/tracker.py", "if ti not in matched and di not in matched.values():",
                             "if ti not in matched:", ["tests/runtime/test_tracker_properties.py"]),
    "tracker_threshold_zero": ("edge_runtime/tracker.py", "if iou < self.iou_threshold:", "if iou <= 0.0:",
                               ["tests/runtime/test_tracker_properties.py"]),
    "smoother_half_hysteresis": ("edge_runtime/smoother.py", "> self.hysteresis:", "> self.hysteresis / 2:",
                                 ["tests/runtime/test_smoother_properties.py"]),
    "crop_one_margin": ("edge_runtime/preprocess.py", "(1.0 + 2.0 * margin)", "(1.0 + margin)",
                        ["tests/runtime/test_preprocess_properties.py"]),
    "dequantise_zero_point": ("edge_runtime/interpreter.py", "(values.astype(np.int32) - info.zero_point)",
                              "(values.astype(np.int32) - info.zero_point - 1)",
                              ["tests/runtime/test_quantize_properties.py"]),
    "manifest_skips_json": ("edge_runtime/release/manifest.py", 'for path in (model, model.with_suffix(".json")):',
                            "for path in (model,):", ["tests/release/test_manifest_paths.py"]),
    "tarball_dotdot": ("edge_runtime/release/manifest.py",
                       'any(p in (".", "..") for p in name.split("/"))', 'any(p in (".",) for p in name.split("/"))',
                       ["tests/release/test_manifest_paths.py"]),
    "frozen_clock_not_reset": ("edge_runtime/daemon/watchdog.py",
                               "            self._signature = signature\n            self.last_change = now\n",
                               "            self._signature = signature\n", ["tests/daemon/test_watchdog_clock.py"]),
    "parity_agreement_vs_labels": ("convert/parity.py", "agreement=float(np.mean(y_float == y_quant))",
                                   "agreement=float(np.mean(labels == y_quant))",
                                   ["tests/convert/test_parity_deltas.py"]),
    "parity_delta_sign": ("convert/parity.py",
                          '(m_quant["per_class"][name]["recall"] - m_float["per_class"][name]["recall"])',
                          '(m_float["per_class"][name]["recall"] - m_quant["per_class"][name]["recall"])',
                          ["tests/convert/test_parity_deltas.py"]),
    "parity_drop_sign": ("convert/parity.py", "return 100.0 * (self.float_accuracy - self.quant_accuracy)",
                         "return 100.0 * (self.quant_accuracy - self.float_accuracy)",
                         ["tests/convert/test_parity_deltas.py"]),
    "csv_label_seven": ("train/data/kaggle_csv.py", "not 0 <= int(raw) < NUM_CLASSES",
                        "not 0 <= int(raw) <= NUM_CLASSES", ["tests/train/test_data_errors.py"]),
    "csv_public_private_swapped": ("train/data/kaggle_csv.py", '"publictest": "val", "privatetest": "test"',
                                   '"publictest": "test", "privatetest": "val"', ["tests/train/test_data_loaders.py"]),
}


def run(name: str) -> bool:
    path, text, bug, tests = BUGS[name]
    with tempfile.TemporaryDirectory(prefix=f"audit-{name}-") as tmp:
        work = Path(tmp)
        for package in ("edge_runtime", "convert", "train"):
            shutil.copytree(REPO / package, work / package, ignore=shutil.ignore_patterns("__pycache__"))
        source = (work / path).read_text()
        if source.count(text) != 1:
            print(f"{name}: the text to change is no longer in {path} once; update this script")
            return False
        (work / path).write_text(source.replace(text, bug))
        # The copy comes first on sys.path: python -m puts the working folder there, ahead of the checkout.
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
                                 *[str(REPO / t) for t in tests]], cwd=work, capture_output=True, text=True)
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"{name}: {'caught' if result.returncode else 'NOT CAUGHT'} ({summary})")
    return result.returncode != 0


if __name__ == "__main__":
    names = sys.argv[1:] or list(BUGS)
    sys.exit(0 if all([run(n) for n in names]) else 1)
