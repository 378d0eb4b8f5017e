"""The playbook as Ansible's own tools see it (syntax check, ansible-lint), and the fleet's files found from an
installed wheel, not only from a checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

FLEET = Path(__file__).resolve().parents[2] / "fleet"
PLAYBOOK, DASHBOARD = FLEET / "ansible" / "deploy.yml", FLEET / "grafana" / "fer-edge.json"
FLEET_FILES = ["fleet/ansible/deploy.yml", "fleet/ansible/roles/fer_edge/tasks/main.yml",
               "fleet/ansible/roles/fer_edge/defaults/main.yml", "fleet/ansible/roles/fer_edge/meta/main.yml",
               "fleet/ansible/callback_plugins/fer_edge_summary.py", "fleet/grafana/fer-edge.json"]


def test_syntax_check_and_ansible_lint(tools, ansible_env, tmp_path):
    inv = tmp_path / "cameras.ini"
    inv.write_text("[fer_edge]\nporch ansible_host=192.0.2.1\n")
    syntax = subprocess.run([tools.need("ansible-playbook"), "--syntax-check", "-i", str(inv), str(PLAYBOOK)],
                            capture_output=True, text=True, timeout=120)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    lint = subprocess.run([tools.need("ansible-lint"), "--offline", "--profile", "production", "--format", "pep8",
                           PLAYBOOK.name], cwd=PLAYBOOK.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_broken_task_fails_the_syntax_check(tools, ansible_env, tmp_path):
    """The check above can fail: the same playbook with a task of an unknown module does."""
    broken = tmp_path / "deploy.yml"
    broken.write_text(PLAYBOOK.read_text().replace("    - role: fer_edge\n",
                                                   "  tasks:\n    - name: Nothing\n      no_such.module: {}\n"))
    result = subprocess.run([tools.need("ansible-playbook"), "--syntax-check", str(broken)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "no_such.module" in result.stdout + result.stderr


def test_fleet_files_are_found_from_an_installed_wheel(tools, own_wheel, tmp_path):
    with zipfile.ZipFile(own_wheel) as zf:
        names = set(zf.namelist())
    assert set(FLEET_FILES) <= names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(own_wheel)], check=True, capture_output=True)
    found = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import fleet; "
                            "print(fleet.PLAYBOOK.is_file(), fleet.DASHBOARD.is_file(), fleet.CALLBACKS.is_dir(), "
                            "fleet.__file__)", str(target)], capture_output=True, text=True, cwd=tmp_path)
    assert found.stdout.split()[:3] == ["True", "True", "True"], found.stdout + found.stderr
    assert found.stdout.split()[3].startswith(str(target))


def test_dashboard_is_grafana_json_with_a_query_per_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "fer-edge-fleet" and dashboard["panels"]
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Processed fps", "Faces", "Emotion mix", "Resident memory", "Camera reconnects per hour"} <= titles
    assert all(t["expr"] and 'job="fer-edge"' in t["expr"] for p in dashboard["panels"] for t in p["targets"])
