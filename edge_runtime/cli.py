"""`fer-edge`: one console script, subcommands.

Device commands live here; workstation command groups (train, convert, ...) register
themselves through the `fer_edge.commands` entry point group, so this module never imports
them and a Pi without TensorFlow still gets a working CLI.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from edge_runtime import __version__
from edge_runtime.cli_helpers import CommandError, add_command, run_parsed
from edge_runtime.errors import FerEdgeError

SAMPLE_VIDEO = Path(__file__).resolve().parent / "samples" / "faces.mp4"
COMMAND_GROUP = "fer_edge.commands"
EPILOG = "Run `fer-edge COMMAND --help` for each command's options and an example."


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def add_detect_command(sub) -> None:
    from edge_runtime.face_path import add_settings_flags

    p = add_command(sub, "detect", help="Find faces in an image, a folder of images or a video and classify "
                    "their expressions with the int8 model (no TensorFlow needed). Every detection setting is "
                    "also a key of the daemon's `detection:` config, with the same default.",
                    example="fer-edge detect clip.mp4 --json --out clip_annotated.mp4")
    p.add_argument("input", nargs="?", default=str(SAMPLE_VIDEO),
                   help="image, folder of images, video file, camera index, /dev/videoN, stream URL or "
                   "picamera2[:N] (default: the bundled sample video, three FER2013 val faces)")
    p.add_argument("--json", action="store_true", help="write one JSON line per face per frame to stdout "
                   "(source: the image file or the input, frame, time, box, label, score, probabilities, track) "
                   "and nothing else")
    p.add_argument("--out", help="write the annotated image, folder of images or video here")
    add_settings_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_detect)


def cmd_detect(args) -> int:
    import json

    from edge_runtime.annotate import AnnotatedOutput, draw_faces
    from edge_runtime.face_path import build_pipeline, settings_from_args
    from edge_runtime.progress import Progress
    from edge_runtime.sources import open_source

    try:
        pipeline = build_pipeline(settings_from_args(args))
        source = open_source(args.input)
    except (FerEdgeError, ImportError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    frames = faces = 0
    tracks: dict[int, dict[str, int]] = {}
    no_face: list[str] = []
    with source:
        try:
            out = AnnotatedOutput(args.out, source) if args.out else None
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        progress = Progress(source.frame_count, enabled=False if args.no_progress else None)
        try:
            for frame in source:
                result = pipeline.process(frame, still=source.still)
                frames += 1
                faces += len(result.faces)
                if args.json:
                    for record in result.json_records(pipeline.labels):
                        sys.stdout.write(json.dumps({"source": frame.path or source.name, **record}) + "\n")
                elif source.still:
                    for f in result.faces:
                        print(f"{frame.path}: {f.emotion.label} {f.emotion.score:.2f} box {f.box.as_list()}")
                if source.still and not result.faces:
                    no_face.append(frame.path)
                for f in result.faces:
                    counts = tracks.setdefault(f.track, {})
                    counts[f.emotion.label] = counts.get(f.emotion.label, 0) + 1
                if out is not None:
                    out.write(frame, draw_faces(frame.bgr.copy(), result.faces))
                progress.update()
        except BrokenPipeError:
            raise  # the reader went away (`detect --json | head`): run_parsed stops quietly
        except (FerEdgeError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
            if out is not None:
                out.close()
    if not args.json and not source.still:
        for track, counts in sorted(tracks.items()):
            label = max(counts, key=counts.get)
            print(f"track {track}: {sum(counts.values())} frames, mostly {label} ({counts[label]})")
    # Images have no frame rate and no tracks worth counting; a video has both.
    summary = (f"{plural(frames, 'image')}, {plural(faces, 'face')}" if source.still else
               f"{plural(frames, 'frame')}, {plural(faces, 'face')}, {plural(len(tracks), 'track')}, "
               f"{progress.rate:.1f} fps")
    # An unreadable image is skipped, not fatal: the others are still read; the exit status says one was not.
    for problem in source.unreadable:
        print(f"fer-edge detect: skipped {problem}", file=sys.stderr)
    if no_face:
        print(f"fer-edge detect: no face found in {plural(len(no_face), 'image')}:", *no_face, sep="\n  ",
              file=sys.stderr)
    print(f"fer-edge detect: {summary}", file=sys.stderr)
    return 1 if source.unreadable else 0


def add_daemon_commands(sub) -> None:
    p = add_command(sub, "run", help="The camera daemon: faces and their expressions from a camera as events "
                    "(JSON lines, MQTT), a preview page, health and Prometheus metrics; for systemd.",
                    example="fer-edge run --config /etc/fer-edge/config.yaml --mqtt broker.lan")
    p.add_argument("--config", metavar="FILE", help="YAML or TOML config file (keys and an example: README)")
    p.add_argument("--validate-config", metavar="FILE", help="check FILE, report every error with its key, exit")
    p.add_argument("--source", help="camera.source: picamera2[:N], camera index, /dev/videoN, URL or video file")
    p.add_argument("--model", help="detection.model: int8 .tflite with its .json (default: the shipped model)")
    p.add_argument("--loop", action="store_true", help="camera.loop: replay a file source forever")
    p.add_argument("--http", metavar="HOST:PORT", help="serve preview, state, health and metrics here ('off': no)")
    p.add_argument("--jsonl", metavar="PATH", help="JSON lines of events to PATH, - for stdout ('off': none)")
    p.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish to this MQTT broker")
    p.add_argument("--camera-name", help="camera.name, used in topics, metrics and events")
    p.set_defaults(func=cmd_run)
    svc = add_command(sub, "service", help="systemd service helpers.",
                      example="fer-edge service print-unit --config /etc/fer-edge/config.yaml")
    svc_sub = svc.add_subparsers(dest="service_command", metavar="COMMAND", required=True)
    unit = add_command(svc_sub, "print-unit", help="Print the systemd unit for this installation.",
                       example="fer-edge service print-unit | sudo tee /etc/systemd/system/fer-edge.service")
    unit.add_argument("--config", default="/etc/fer-edge/config.yaml", help="config file the unit runs with")
    unit.add_argument("--user", default="fer-edge", help="service user, a member of the video group")
    unit.add_argument("--watchdog", type=int, default=30, metavar="SECONDS", help="WatchdogSec (default 30)")
    unit.set_defaults(func=cmd_print_unit)


def cmd_run(args) -> int:
    import logging
    import os
    import signal

    from edge_runtime.daemon.config import ConfigError, cli_overrides, load_config

    overrides = cli_overrides(source=args.source, model=args.model, loop=args.loop, http=args.http,
                              jsonl=args.jsonl, mqtt=args.mqtt, camera_name=args.camera_name)
    try:
        config = load_config(args.validate_config or args.config, overrides)
    except ConfigError as exc:
        raise CommandError("invalid config:\n  " + "\n  ".join(exc.problems), code=2) from None
    if args.validate_config:
        print(f"{args.validate_config}: ok")
        return 0
    from edge_runtime.daemon.app import Daemon

    try:
        daemon = Daemon(config)
    except (FerEdgeError, ImportError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    hangup = []

    def stop(signum, _frame) -> None:
        if signum == signal.SIGHUP:
            hangup.append(signum)
        daemon.request_stop()

    # SIGHUP (a closed terminal, or `kill -HUP` meant as a reload) stops as cleanly as SIGTERM, with the
    # status a shell gives a hangup (129): under systemd's Restart=on-failure the daemon starts again and
    # reads its config anew, instead of dying at once (Python's default) or staying stopped.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    status = daemon.run()
    if hangup:
        logging.getLogger("fer_edge.daemon").info("stopped on SIGHUP: exit status %d", 128 + signal.SIGHUP)
        status = 128 + signal.SIGHUP
    if not daemon.capture.stopped:
        # A camera read that never returns: exiting normally would finalise the interpreter under it (an abort).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def cmd_print_unit(args) -> int:
    from edge_runtime.daemon.service import render_unit

    sys.stdout.write(render_unit(config=args.config, user=args.user, watchdog=args.watchdog))
    return 0


def checkout_entry_points() -> list[EntryPoint]:
    """The command groups the pyproject.toml of a source checkout declares, when this runs from one.

    The installed metadata is written at install time: a group added to pyproject.toml since the last
    `pip install -e .` is found here instead of going missing. An installed wheel has no pyproject.toml."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return []
    try:
        try:
            import tomllib
        except ImportError:  # Python 3.10: tomli is a base dependency there
            import tomli as tomllib
        groups = tomllib.loads(pyproject.read_text()).get("project", {}).get("entry-points", {})
    except (OSError, ValueError):
        return []
    return [EntryPoint(name, value, COMMAND_GROUP) for name, value in groups.get(COMMAND_GROUP, {}).items()]


def command_entry_points() -> list[EntryPoint]:
    """The installed command groups, and those of the checkout this runs from that the installation lacks."""
    found = {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}
    for ep in checkout_entry_points():
        found.setdefault(ep.name, ep)
    return sorted(found.values(), key=lambda e: e.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge",
        description="Facial-expression recognition for the edge: train on FER2013, convert to int8 "
        "TFLite, run on a Raspberry Pi or Coral.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_detect_command(sub)
    add_daemon_commands(sub)
    unavailable = []
    for ep in command_entry_points():
        try:
            register = ep.load()
        except Exception as exc:  # noqa: BLE001 - ImportError on a device without the workstation code, or a broken plugin
            # The device's own commands still work, and --help says why not the rest.
            why = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
            unavailable.append(f"{ep.name} ({why})")
            continue
        register(sub)
    if unavailable:
        parser.epilog = f"{EPILOG}\nUnavailable here: {'; '.join(unavailable)}."
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv, "fer-edge")


if __name__ == "__main__":
    sys.exit(main())
