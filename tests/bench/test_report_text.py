"""RESULTS.md says when its accuracy figures come from the split the models were selected on."""

from __future__ import annotations

from bench.report import accuracy_section


def results(split: str) -> dict:
    row = {"model": "m_int8", "group": "fer-edge", "kind": "int8", "accuracy": 0.6, "macro_f1": 0.55,
           "parameters": 1000, "bytes": 300_000, "note": ""}
    return {"data": "fer2013", "split": {"name": split, "faces": 3589}, "accuracy": [row]}


def test_val_accuracy_is_disclosed_as_used_for_selection():
    text = "\n".join(accuracy_section(results("val")))
    assert "| `m_int8` | fer-edge | int8 | 60.00 % | 55.00 % | 1,000 | 0.300 MB |  |" in text
    assert "val figures were used for selection" in text and "not an unbiased estimate" in text


def test_a_held_out_split_carries_no_such_note():
    assert "used for selection" not in "\n".join(accuracy_section(results("test")))
