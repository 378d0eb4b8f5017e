"""Many cameras, on engines people already trust: Ansible rolls a bundle out (`fer-edge fleet deploy`), each
daemon's HTTP API answers `fer-edge fleet status`, Prometheus watches /metrics with the scrape config and alert
rules `fer-edge fleet prometheus` writes, and Grafana shows the fleet (grafana/fer-edge.json).

Workstation code: it may import edge_runtime; edge_runtime never imports it."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "ansible" / "deploy.yml"
CALLBACKS = HERE / "ansible" / "callback_plugins"
DASHBOARD = HERE / "grafana" / "fer-edge.json"
# The inventory group the playbook, `fleet status` and `fleet prometheus` act on (the playbook's fer_edge_hosts).
GROUP = "fer_edge"
