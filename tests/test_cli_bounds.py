"""Every numeric option of the workstation commands is bounded where it is parsed (issue 24): a value out of
range or not a number is refused before anything runs, in one line naming the option as typed and what it
expects (`--batch-size 0` used to end in a ZeroDivisionError, `--epochs -1` in an empty history.csv, and
`--lr -0.1` trained)."""

from __future__ import annotations

import pytest

from edge_runtime.cli import main

TRAIN = ["train", "--data", "missing-data"]
EVALUATE = ["evaluate", "--model", "m.tflite", "--data", "missing-data"]
PREDICT = ["predict", "face.png"]
VERIFIER = ["verifier", "train", "--data", "missing-data", "--out", "o"]
CALIBRATION = ["calibration", "build", "--data", "missing-data", "--out", "o"]
CONVERT = ["convert", "--model", "m.keras"]
PARITY = ["parity", "--float", "f.keras", "--quant", "q.tflite", "--data", "missing-data"]


@pytest.mark.parametrize("command, option, value, expected", [
    (TRAIN, "--batch-size", "0", "an integer >= 1"),
    (TRAIN, "--epochs", "-1", "an integer >= 1"),
    (TRAIN, "--epochs", "2.5", "an integer >= 1"),
    (TRAIN, "--lr", "-0.1", "a number > 0"),
    (TRAIN, "--lr", "0", "a number > 0"),
    (TRAIN, "--lr", "nan", "a number > 0"),
    (TRAIN, "--weight-decay", "-1e-4", "a number >= 0"),
    (TRAIN, "--warmup-epochs", "-1", "a number >= 0"),
    (TRAIN, "--label-smoothing", "1", "a number >= 0 and < 1"),
    (TRAIN, "--patience", "-2", "an integer >= 0"),
    (TRAIN, "--distill", "1.5", "a number >= 0 and <= 1"),
    (TRAIN, "--seed", "-1", "an integer >= 0"),
    (TRAIN, "--max-steps", "0", "an integer >= 1"),
    (EVALUATE, "--threads", "0", "an integer >= 1"),
    (PREDICT, "--threads", "-3", "an integer >= 1"),
    (VERIFIER, "--faces", "-1", "an integer >= 0"),
    (VERIFIER, "--epochs", "0", "an integer >= 1"),
    (VERIFIER, "--threshold", "1.2", "a number >= 0 and <= 1"),
    (VERIFIER, "--seed", "x", "an integer >= 0"),
    (CALIBRATION, "--per-class", "0", "an integer >= 1"),
    (CALIBRATION, "--seed", "-5", "an integer >= 0"),
    (CALIBRATION, "--size", "0", "an integer >= 8"),
    (CONVERT, "--max-drop", "-101", "a number >= -100 and <= 100"),
    (PARITY, "--max-drop", "inf", "a number >= -100 and <= 100"),
])
def test_an_out_of_range_number_is_refused_naming_the_option(capsys, command, option, value, expected):
    with pytest.raises(SystemExit) as exit_:
        main([*command, f"{option}={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith(f": error: {option} {value}: expected {expected}"), err
    assert "Traceback" not in err


def test_a_value_in_range_is_parsed_as_a_number():
    from edge_runtime.cli import build_parser

    args = build_parser().parse_args([*TRAIN, "--batch-size", "1", "--lr", "0.003", "--label-smoothing", "0"])
    assert (args.batch_size, args.lr, args.label_smoothing) == (1, 0.003, 0.0)
    assert build_parser().parse_args(TRAIN).epochs == 60  # defaults untouched
