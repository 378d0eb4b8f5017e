"""The face path's settings, declared once, and the one function that builds the pipeline from them.

`fer-edge detect`'s flags and the daemon's `detection:` config section are both made from
`DetectionSettings` (a flag per field: `detect_every` is `--detect-every`), with the same defaults,
bounds and descriptions, and both commands build their detector, verifier, classifier and pipeline with
`build_pipeline`. So what a benchmark measures through `detect` is the path the daemon runs.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge_runtime.detector import HaarOptions
from edge_runtime.pipeline import Pipeline, PipelineOptions

_HAAR, _PIPE = HaarOptions(), PipelineOptions()


def _setting(default: Any, description: str, metavar: str | None = None, **bounds) -> Any:
    return Field(default, description=description, json_schema_extra={"metavar": metavar} if metavar else None,
                 **bounds)


class DetectionSettings(BaseModel):
    """How faces are found, followed and classified (the daemon's `detection:` section, `detect`'s flags)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    model: Path | None = _setting(None, "int8 .tflite emotion model with its .json metadata (default: the shipped "
                                  "models/fer_blend_int8.tflite)", "TFLITE")
    device: str | None = _setting(None, "Edge TPU device for *_edgetpu.tflite models: usb, usb:0, pci:0", "DEV",
                                  max_length=64)
    threads: int = _setting(1, "CPU threads for the model and OpenCV", "N", ge=1, le=64)
    tta: Literal["flip", "none"] = _setting(
        "flip", "test-time augmentation of the emotion model: flip = each face's probabilities averaged with its "
        "mirror image's (a second inference per face; right labels on real photos 57.4 -> 58.2 %), none = one "
        "inference", "NAME")
    detector: Literal["haar", "blazeface", "haar+blazeface"] = _setting(
        "haar+blazeface", "face detector: haar+blazeface (every face of OpenCV's frontal-face cascade, and those "
        "MediaPipe's short-range BlazeFace finds on the whole frame where the cascade found none: the cascade for "
        "far faces, BlazeFace for near ones), haar (the cascade alone, with a padded pass for a face that fills "
        "the picture) or blazeface (BlazeFace alone, over tiles for small faces); the face verifier vets new "
        "faces", "NAME")
    blazeface_tile: float = _setting(0.67, "blazeface: also look at square tiles of this fraction of the frame's "
                                     "shorter side, so faces under ~100 px of a 640x480 frame are found; 0 = the "
                                     "whole frame only (~15x cheaper, near faces only)", "F", ge=0, le=0.95)
    blazeface_score: float = _setting(0.5, "blazeface: least score of a face found on the whole frame", "P", gt=0,
                                      lt=1)
    detect_every: int = _setting(_PIPE.detect_every, "full-frame detection every N frames, faces followed in "
                                 "between", "N", ge=1, le=1000)
    classify_every: int = _setting(_PIPE.classify_every, "classify each face every N frames (its smoothed "
                                   "emotion is reported in every frame)", "N", ge=1, le=1000)
    detect_width: int = _setting(_HAAR.detect_width, "shrink frames to this width for detection, 0 = never",
                                 "PX", ge=0, le=8192)
    min_size: int = _setting(_HAAR.min_size, "smallest face side in input pixels", "PX", ge=1, le=8192)
    min_neighbors: int = _setting(_HAAR.min_neighbors, "Haar minNeighbors: higher = fewer false faces", "N",
                                  ge=0, le=100)
    scale_factor: float = _setting(_HAAR.scale_factor, "Haar scaleFactor between searched face sizes", "F",
                                   gt=1.0, le=2.0)
    pad: float | None = _setting(None, "a replicated border of this fraction of the frame on each side, for a "
                                 "second Haar pass that finds a face filling the picture; 0 = off (default "
                                 f"{_HAAR.pad} with --detector haar, 0 with haar+blazeface, where BlazeFace finds such "
                                 "faces)", "F", ge=0, le=1)
    pad_from: float = _setting(_HAAR.pad_from, "a near face: the least face side, as a share of the frame's shorter "
                               "side, that the padded pass looks for (0 = pad the only pass) and, with "
                               "haar+blazeface, from which BlazeFace's box of a face both find is kept", "F", ge=0,
                               le=1)
    cascade: str | None = _setting(_HAAR.cascade, "another Haar cascade XML (a bundled name or a path; default: "
                                   "OpenCV's frontal-face cascade)", "XML", min_length=1, max_length=4096)
    verify_cascade: str = _setting(_HAAR.verify_cascade, "a second Haar cascade (bundled name or path) that must "
                                   "also find a new face before it is tracked, '' = none", "XML", max_length=4096)
    verify_model: str | None = _setting(_HAAR.verify_model, "face / not-face .tflite that vets each new detection "
                                        "before it is tracked, '' = none (default: the verifier shipped with "
                                        "fer-edge)", "TFLITE", max_length=4096)
    verify_threshold: float = _setting(_HAAR.verify_threshold, "least P(face) the verifier must give a new "
                                       "detection", "P", ge=0, le=1)
    smoothing: float = _setting(_PIPE.smoothing, "per-face smoothing time constant in seconds, 0 = off", "SECONDS",
                                ge=0, le=60)
    cut_below: float = _setting(_PIPE.cut_below, "a cut (every face dropped, full detection at once) when the "
                                "picture's correlation with the last frame falls below this, -1 = never", "R",
                                ge=-1, le=1)
    motion: float = _setting(_PIPE.motion, "between full detections, look for faces where the picture changed by "
                             "this much of its contrast outside tracked faces, 0 = off", "C", ge=0, le=10)
    follow_score: float = _setting(_PIPE.follow_score, "least template-matching score (-1..1) that still follows "
                                   "a face between detections", "S", gt=-1, lt=1)
    confirm_score: float = _setting(_PIPE.confirm_score, "show a face at once when the cascade's weight for it "
                                    "reaches this, else after a second detection; 0 = always wait", "W", ge=0,
                                    le=100)

    @field_validator("blazeface_tile")
    @classmethod
    def _tile_or_none(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("must be 0 (no tiles) or at least 0.1 of the frame's side")
        return value

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such model file")
        return value

    @field_validator("verify_model")
    @classmethod
    def _verifier_exists(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError("no such model file")
        return value

    def haar_pad(self) -> float:
        """The padded pass's border: as given, else on for the cascade alone and off beside BlazeFace, whose
        whole-frame look finds most faces that fill the picture, for a small share of the padded pass's cost
        (bench.detectors)."""
        if self.pad is not None:
            return self.pad
        return 0.0 if self.detector == "haar+blazeface" else _HAAR.pad

    def haar_options(self) -> HaarOptions:
        return HaarOptions(cascade=self.cascade, scale_factor=self.scale_factor, min_neighbors=self.min_neighbors,
                           min_size=self.min_size, detect_width=self.detect_width, pad=self.haar_pad(),
                           pad_from=self.pad_from, verify_cascade=self.verify_cascade, verify_model=self.verify_model,
                           verify_threshold=self.verify_threshold)

    def blazeface_options(self):
        from edge_runtime.blazeface import BlazeFaceOptions

        return BlazeFaceOptions(model="short", score_threshold=self.blazeface_score, tile=self.blazeface_tile,
                                min_size=self.min_size, num_threads=self.threads, verify_model=self.verify_model,
                                verify_threshold=self.verify_threshold)

    def pipeline_options(self) -> PipelineOptions:
        return PipelineOptions(detect_every=self.detect_every, classify_every=self.classify_every,
                               smoothing=self.smoothing, cut_below=self.cut_below, motion=self.motion,
                               follow_score=self.follow_score, confirm_score=self.confirm_score)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per setting, with its description and default; an unset flag stays None (the setting's default)."""
    for name, field in DetectionSettings.model_fields.items():
        extra = field.json_schema_extra or {}
        default = field.default
        shown = "" if default is None else f" (default {default!r})" if default == "" else f" (default {default})"
        parser.add_argument(flag(name), dest=name, default=None, metavar=extra.get("metavar"),
                            type=field.annotation if field.annotation in (int, float) else str,
                            help=(field.description + shown).replace("%", "%%"))


def settings_from_args(args: argparse.Namespace) -> DetectionSettings:
    """The settings the flags give; ValueError naming the flag and what is wrong with its value."""
    given = {name: getattr(args, name) for name in DetectionSettings.model_fields if getattr(args, name) is not None}
    try:
        return DetectionSettings(**given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            value = given.get(name)
            value = f"{value:g}" if isinstance(value, float) else value
            problems.append(f"{flag(name)} {value}: {_lower_first(err['msg'])}" if name else err["msg"])
        raise ValueError("; ".join(problems)) from None


def _lower_first(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


def build_detector(settings: DetectionSettings):
    """The face detector these settings describe, with its verifier (`settings.detector`: haar, blazeface, or
    haar+blazeface). Raises ModelError, MetadataError or DetectorError for a bad model or cascade."""
    from dataclasses import replace as with_

    from edge_runtime.detector import EitherDetector, HaarDetector

    if settings.detector == "haar":
        return HaarDetector(settings.haar_options())
    from edge_runtime.blazeface import BlazeFaceDetector

    if settings.detector == "blazeface":
        return BlazeFaceDetector(settings.blazeface_options())
    # BlazeFace on the whole frame (2 ms) for the near faces, the cascade for the far ones. Region looks (where the
    # picture moved, where a face is expected) are the cascade's: BlazeFace on a crop of the frame takes a face the
    # crop's edge cuts, or a blurred head, for a face whose box strays from it (the portrait video: 9 such reports
    # in 1,024 frames, none with the cascade alone there; bench.dynamic). A near face (at least pad_from of the
    # frame's shorter side) both find keeps BlazeFace's box: the cascade's box of a face that fills the picture is
    # cut short without the padded pass (wild_dev, the 1,092 photos where both find the face: right labels 60.3 ->
    # 62.9 % with BlazeFace's box, 72 gained, 43 lost); a farther face keeps the cascade's (BlazeFace's box of a face
    # a fifth of the frame is coarse: on the portrait video its boxes cost recall 0.963 -> 0.950).
    blaze = BlazeFaceDetector(with_(settings.blazeface_options(), tile=0.0, verify_model=""))
    return EitherDetector(HaarDetector(settings.haar_options()), blaze, regions=False, second_from=settings.pad_from)


def build_pipeline(settings: DetectionSettings, *, detector_timer=None, classifier_timer=None,
                   **pipeline_options) -> Pipeline:
    """The detector (with its verifier), the classifier and the pipeline these settings describe. The timers
    (prometheus Histograms, for the daemon) observe every call of the detector and of the classifier; pipeline
    options that are no setting (a benchmark's `confirm=1`) may be given on top.
    Raises ModelError, MetadataError, EdgeTpuError or DetectorError for a bad model, device or cascade."""
    import cv2

    from edge_runtime.classifier import Classifier, default_model_path
    from edge_runtime.interpreter import ModelError
    from edge_runtime.timed import Timed

    model = settings.model or default_model_path()
    if settings.model is None and not model.exists():
        raise ModelError(f"no model given, and no shipped model: not {model}, and this fer-edge runs from no "
                         "installed release (pass --model PATH, or detection.model in the daemon's config; on a "
                         "workstation, `fer-edge convert --int8` makes one)")
    classifier = Classifier(model, num_threads=settings.threads, device=settings.device, tta=settings.tta)
    detector = build_detector(settings)
    cv2.setNumThreads(settings.threads)
    if detector_timer is not None:
        detector = Timed(detector, detector_timer, ("detect", "detect_in", "verify"))
    if classifier_timer is not None:
        classifier = Timed(classifier, classifier_timer, ("classify",))
    return Pipeline(detector, classifier, replace(settings.pipeline_options(), **pipeline_options))
