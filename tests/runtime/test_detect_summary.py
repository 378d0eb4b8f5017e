"""What `fer-edge detect` prints where (issue 14, item 18): results on stdout, the one-line summary on
stderr; an image has no frame rate and no tracks; frames are numbered from 0 for images and videos alike."""

from __future__ import annotations

import json
import re

import cv2
import pytest

from edge_runtime.cli import SAMPLE_VIDEO, main


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    ok, frame = capture.read()
    capture.release()
    assert ok
    path = tmp_path_factory.mktemp("still") / "first.png"
    cv2.imwrite(str(path), frame)
    return path


def test_an_image_is_summed_up_as_images_and_faces(image, capsys):
    assert main(["detect", str(image), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1] == "fer-edge detect: 1 image, 2 faces"
    assert [line.split(":")[0] for line in out.splitlines()] == [str(image)] * 2


def test_a_video_has_track_lines_on_stdout_and_its_summary_on_stderr(capsys):
    assert main(["detect", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert all(re.fullmatch(r"track \d+: \d+ frames, mostly \w+ \(\d+\)", line) for line in out.splitlines())
    assert len(out.splitlines()) == 3
    assert re.fullmatch(r"fer-edge detect: 90 frames, \d+ faces, 3 tracks, \d+\.\d fps", err.strip().splitlines()[-1])


def test_frames_are_numbered_from_zero_for_images_and_videos(image, capsys):
    firsts = []
    for source in (str(image), str(SAMPLE_VIDEO)):
        assert main(["detect", source, "--json", "--no-progress"]) == 0
        firsts.append(min(json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()))
    assert firsts == [0, 0]
