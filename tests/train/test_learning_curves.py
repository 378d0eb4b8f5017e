"""The learning-curve picture of a run: every epoch is drawn, also when there is only one (issue 24:
`train --epochs 1` drew two empty panels, since a line through a single point draws nothing)."""

from __future__ import annotations

import re

import pytest

from train.report import plot_learning_curves

HISTORY = {"loss": [1.2, 1.0, 0.9], "val_loss": [1.4, 1.3, 1.25],
           "accuracy": [0.3, 0.4, 0.45], "val_accuracy": [0.25, 0.33, 0.36]}


@pytest.mark.parametrize("epochs", [1, 3])
def test_each_epoch_of_each_series_is_a_visible_point(tmp_path, epochs):
    history = {key: values[:epochs] for key, values in HISTORY.items()}
    path = tmp_path / "learning_curves.svg"  # SVG: each marker drawn is one <use> of the marker's shape
    plot_learning_curves(history, path)
    svg = path.read_text()
    # Markers are defined once (<path id="m..." d="...">) and drawn with <use>; tick marks are straight
    # lines, a circle marker is made of curves (C).
    defined = re.finditer(r'<path id="(m[0-9a-f]+)" d="([^"]*)"', svg)
    circles = {m.group(1) for m in defined if re.search(r"\sC\s", m.group(2))}
    drawn = sum(len(re.findall(rf'<use xlink:href="#{marker}"', svg)) for marker in circles)
    # 4 series (train/val x loss/accuracy): a marker per epoch each, plus one in each legend entry
    assert drawn >= 4 * epochs + 4, drawn


def test_one_epoch_says_so_in_the_picture(tmp_path):
    path = tmp_path / "learning_curves.svg"
    plot_learning_curves({key: values[:1] for key, values in HISTORY.items()}, path)
    svg = path.read_text()
    assert "one epoch: a point each, no curve" in svg
