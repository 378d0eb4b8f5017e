"""`fer-edge bundle`, `fer-edge bundle verify` and `fer-edge deploy`, through the fer_edge.commands entry point."""

from __future__ import annotations

import sys
from pathlib import Path

from edge_runtime.cli_helpers import CommandError, add_command
from edge_runtime.errors import FerEdgeError


def register(sub) -> None:
    p = add_command(sub, "bundle", help="Pack the int8 model, its metadata, the daemon's config and systemd unit, "
                    "install.sh and a wheel of fer-edge into one self-checking .tar.gz for a Pi "
                    "(`fer-edge bundle verify BUNDLE` checks one).",
                    example="fer-edge bundle --model models/fer_blend_int8.tflite --out fer-edge.tar.gz "
                    "--platform linux_aarch64 --with-deps",
                    # argparse cannot mark --model/--out required and still allow `bundle verify`: say it here.
                    usage="fer-edge bundle --model MODEL --out OUT [options]\n"
                    "       fer-edge bundle verify BUNDLE [--allowed-signers FILE]")
    p.add_argument("--model", type=Path, help="int8 .tflite model with its .json metadata (required)")
    p.add_argument("--edgetpu-model", type=Path, help="its *_edgetpu.tflite build for a Coral, bundled beside it")
    p.add_argument("--config", type=Path, help="daemon config (.yaml/.toml) to ship; detection.model is set to the "
                   "bundled model (default: the daemon's defaults)")
    p.add_argument("--out", type=Path, help="the bundle to write, e.g. fer-edge.tar.gz (required)")
    p.add_argument("--version", help="release name on the device (default: fer-edge version + UTC time)")
    p.add_argument("--platform", help="the device's platform for --with-deps: linux_aarch64 (64-bit Raspberry Pi "
                   "OS), linux_armv7l or linux_x86_64")
    p.add_argument("--with-deps", action="store_true", help="also bundle the wheels of every runtime dependency "
                   "for --platform, so the device installs offline")
    p.add_argument("--python-version", default="3.11", help="the device's Python for --with-deps (default 3.11, "
                   "Raspberry Pi OS Bookworm; Trixie has 3.13)")
    p.add_argument("--find-links", type=Path, metavar="DIR", help="take dependency wheels only from this folder "
                   "(no index)")
    p.add_argument("--wheel", type=Path, help="a fer-edge wheel to bundle instead of building one from this checkout")
    p.add_argument("--sign", type=Path, metavar="KEY", help="sign the bundle's manifest with this ssh private key "
                   "(ssh-keygen -Y sign); a device with an allowed-signers file installs only bundles signed by a "
                   "key it lists")
    p.add_argument("--wheel-cache", type=Path, help="where downloaded wheels are kept between runs "
                   "(default ~/.cache/fer-edge/wheels)")
    p.set_defaults(func=cmd_bundle)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    v = add_command(actions, "verify", help="Check every file of a bundle (.tar.gz or unpacked folder) against its "
                    "manifest: exit 0 when all match, 1 naming the first file that is changed, missing or extra.",
                    example="fer-edge bundle verify fer-edge.tar.gz",
                    # Its own name: argparse would build it from the parent's two-line usage above.
                    prog="fer-edge bundle verify")
    v.add_argument("bundle", type=Path, metavar="BUNDLE")
    v.add_argument("--allowed-signers", type=Path, metavar="FILE", help="also require a good signature by a key in "
                   "this ssh allowed-signers file (what a device checks)")
    v.set_defaults(func=cmd_verify)

    d = add_command(sub, "deploy", help="Copy a bundle to a device over ssh, verify it there, install it as "
                    "releases/VERSION, switch `current`, restart the service and wait until it is healthy; roll "
                    "back to the previous release when it is not.",
                    example="fer-edge deploy fer-edge.tar.gz --host pi@raspberrypi.local")
    d.add_argument("bundle", type=Path)
    d.add_argument("--host", required=True, help="USER@HOST (or an ssh config alias)")
    d.add_argument("--port", type=int, help="ssh port")
    d.add_argument("--identity", type=Path, metavar="KEY", help="ssh private key")
    d.add_argument("--prefix", default="/opt/fer-edge", help="install root on the device (default /opt/fer-edge)")
    d.add_argument("--keep", type=int, default=3, help="releases kept on the device, current included (default 3)")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds to become healthy (default 60)")
    d.add_argument("--health-url", help="URL that must answer 200 on the device (default: the bundled config's "
                   "http://HOST:PORT/healthz, when systemd runs there)")
    d.add_argument("--health-cmd", help="a shell command, run in PREFIX/current on the device, that must exit 0")
    d.add_argument("--python", default="python3", help="the device's Python for the venv (default python3)")
    d.add_argument("--sudo", action="store_true", help="run the device side through `sudo -n` (a non-root user)")
    d.add_argument("--no-systemd", action="store_true", help="the device runs no systemd: install the unit into "
                   "PREFIX only, and check health with --health-cmd")
    d.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to ssh and scp as -o KEY=VALUE (repeatable)")
    d.add_argument("--lock-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="how long to wait for another deploy to the same device to finish (default 300)")
    d.add_argument("--allow-downgrade", action="store_true", help="install a release older than the device's "
                   "current one (refused otherwise)")
    d.set_defaults(func=cmd_deploy)


def cmd_bundle(args) -> int:
    from release_tools.bundle import WHEEL_CACHE, BundleOptions, build_bundle

    if args.model is None or args.out is None:
        raise CommandError("--model and --out are required (or: fer-edge bundle verify BUNDLE)", code=2)
    opts = BundleOptions(model=args.model, out=args.out, edgetpu_model=args.edgetpu_model, config=args.config,
                         version=args.version, platform=args.platform, with_deps=args.with_deps,
                         python_version=args.python_version, find_links=args.find_links, wheel=args.wheel,
                         sign_key=args.sign, wheel_cache=args.wheel_cache or WHEEL_CACHE,
                         log=lambda s: print(s, file=sys.stderr))
    try:
        bundle = build_bundle(opts)
    except (FerEdgeError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"{bundle.path}: release {bundle.version}, {bundle.files} files, {bundle.size / 1e6:.1f} MB, "
          f"{len(bundle.wheels)} wheels, {bundle.seconds:.1f} s")
    return 0


def cmd_verify(args) -> int:
    from edge_runtime.release.manifest import verify

    try:
        manifest = verify(args.bundle, args.allowed_signers)
    except (FerEdgeError, OSError) as exc:
        text = str(exc)  # names the bundle already when the bundle itself is at fault
        raise CommandError(text if text.startswith(str(args.bundle)) else f"{args.bundle}: {text}") from exc
    signed = f", signed by {manifest['signed_by']}" if manifest.get("signed_by") else ""
    print(f"{args.bundle}: release {manifest['version']}, {len(manifest['files'])} files match manifest.json{signed}")
    return 0


def cmd_deploy(args) -> int:
    from release_tools.deploy import DeployOptions, deploy

    opts = DeployOptions(bundle=args.bundle, host=args.host, port=args.port, identity=args.identity,
                         prefix=args.prefix, keep=args.keep, timeout=args.timeout, health_url=args.health_url,
                         health_cmd=args.health_cmd, python=args.python, sudo=args.sudo,
                         systemd=not args.no_systemd, ssh_options=args.ssh_option, lock_timeout=args.lock_timeout,
                         allow_downgrade=args.allow_downgrade, log=lambda s: print(s, flush=True))
    try:
        deploy(opts)
    except (FerEdgeError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    return 0
