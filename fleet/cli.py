"""`fer-edge fleet deploy|status|prometheus`: registered into the one `fer-edge` console script through the
fer_edge.commands entry point, so a device without Ansible never imports this."""

from __future__ import annotations

import sys
from pathlib import Path

from edge_runtime.cli_helpers import CommandError, add_command
from edge_runtime.errors import FerEdgeError

INVENTORY_HELP = "Ansible inventory (INI, YAML or a script) whose group fer_edge lists the cameras"


def register(sub) -> None:
    fleet = add_command(sub, "fleet", help="Many cameras: roll a bundle out with Ansible (canary first, health "
                        "gate, per-device rollback), read every daemon's status, write a Prometheus config.",
                        example="fer-edge fleet deploy fer-edge.tar.gz -i cameras.ini")
    actions = fleet.add_subparsers(dest="fleet_command", metavar="COMMAND", required=True)

    d = add_command(actions, "deploy", help="Roll BUNDLE out to the inventory's cameras with the fer-edge playbook: "
                    "one device first, then 25 %%, then the rest; a device that fails its health gate is rolled "
                    "back and stops the rollout. Ends with one line per device.",
                    example="fer-edge fleet deploy fer-edge.tar.gz -i cameras.ini --limit 'porch,hall'")
    d.add_argument("bundle", type=Path)
    d.add_argument("-i", "--inventory", type=Path, required=True, help=INVENTORY_HELP)
    d.add_argument("--check", action="store_true", help="change nothing: say per device what would be installed")
    d.add_argument("--limit", metavar="PATTERN", help="only these hosts (an Ansible host pattern)")
    d.add_argument("--forks", type=int, metavar="N", help="devices updated at once within a batch (Ansible's "
                   "default 5)")
    d.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help="passed to ansible-playbook -e, e.g. fer_edge_health_timeout=120 (repeatable)")
    d.set_defaults(func=cmd_deploy)

    s = add_command(actions, "status", help="One line per camera from its daemon's HTTP API (with the token): "
                    "reachable, release, model sha256, camera, fps, faces, last error. Exit 1 when one is not "
                    "reachable or its camera is not online.",
                    example="fer-edge fleet status -i cameras.ini")
    s.add_argument("-i", "--inventory", type=Path, required=True, help=INVENTORY_HELP)
    s.add_argument("--limit", metavar="PATTERN", help="only these hosts (an Ansible host pattern)")
    s.add_argument("--timeout", type=float, default=3.0, help="seconds per device (default 3)")
    s.add_argument("--json", action="store_true", help="one JSON object per device instead of the table")
    s.set_defaults(func=cmd_status)

    p = add_command(actions, "prometheus", help="Write a Prometheus scrape config for the inventory's cameras "
                    "(file_sd targets, bearer token from a file) and the fleet's alert rules into OUT.",
                    example="fer-edge fleet prometheus -i cameras.ini --out /etc/prometheus/fer-edge "
                    "--token-file /etc/prometheus/fer-edge.token")
    p.add_argument("-i", "--inventory", type=Path, required=True, help=INVENTORY_HELP)
    p.add_argument("--out", type=Path, required=True, help="folder for prometheus.yml, the targets and the rules")
    p.add_argument("--token-file", type=Path, help="the daemons' http.token as Prometheus reads it (default: the "
                   "inventory's fer_edge_token_file)")
    p.add_argument("--scrape-interval", default="15s", help="Prometheus duration (default 15s)")
    p.add_argument("--fps-floor", type=float, default=2.0, help="alert below this processed fps (default 2)")
    p.add_argument("--memory-growth", type=float, default=20.0, metavar="MB_PER_HOUR",
                   help="alert when resident memory grows faster for an hour (default 20)")
    p.set_defaults(func=cmd_prometheus)


def cmd_deploy(args) -> int:
    from fleet.rollout import RolloutOptions, rollout, summary_table

    try:
        result = rollout(RolloutOptions(args.bundle, args.inventory, args.check, args.limit, args.extra_vars,
                                        args.forks, log=lambda s: print(s, flush=True)))
    except (FerEdgeError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(summary_table(result))
    done = sum(h.result in ("deployed", "unchanged", "would deploy") for h in result.hosts)
    print(f"{result.version}: {done}/{len(result.hosts)} devices {'checked' if args.check else 'on it'} "
          f"in {result.seconds:.1f} s")
    if not result.ok:
        stopped = [f"{h.device} ({h.result})" for h in result.hosts if h.result in ("rolled back", "failed",
                                                                                    "unreachable")]
        raise CommandError(f"rollout of {result.version} stopped at {', '.join(stopped) or 'an Ansible error'}")
    return 0


def cmd_status(args) -> int:
    from fleet.inventory import load_inventory
    from fleet.status import fleet_status, status_json, status_table

    try:
        rows = fleet_status(load_inventory(args.inventory, args.limit), timeout=args.timeout)
    except FerEdgeError as exc:
        raise CommandError(str(exc)) from exc
    print(status_json(rows) if args.json else status_table(rows))
    return 0 if all(r.ok for r in rows) else 1


def cmd_prometheus(args) -> int:
    from fleet.inventory import load_inventory
    from fleet.prometheus import AlertOptions, write_prometheus

    try:
        written = write_prometheus(load_inventory(args.inventory), args.out, args.token_file, args.scrape_interval,
                                   AlertOptions(fps_floor=args.fps_floor, memory_growth_mb_per_hour=args.memory_growth))
    except (FerEdgeError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    for path in written:
        print(path, file=sys.stderr)
    print(f"check: promtool check config {written[0]}")
    return 0
