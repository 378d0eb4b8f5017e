"""An Ansible callback that writes each host's outcome of a fer-edge rollout as JSON, for the summary table
`fer-edge fleet deploy` prints (enabled by it through ANSIBLE_CALLBACKS_ENABLED)."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fer_edge_summary
type: aggregate
short_description: write each host's rollout outcome to $FER_EDGE_FLEET_SUMMARY as JSON
description:
  - Per host, the Ansible counts, the first and last task times and what the fer_edge role recorded.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fer_edge_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, str] = {}

    def _seen(self, host: str) -> None:
        now = time.time()
        self.times.setdefault(host, [now, now])[1] = now

    def v2_runner_on_start(self, host, task):
        self._seen(host.get_name())

    def v2_runner_on_ok(self, result):
        self._seen(result._host.get_name())

    def v2_runner_on_skipped(self, result):
        self._seen(result._host.get_name())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        host = result._host.get_name()
        self._seen(host)
        if not ignore_errors:
            said = result._result.get("stderr") or result._result.get("msg") or "failed"
            self.errors[host] = f"{result._task.get_name()}: {str(said).strip()}"

    def v2_runner_on_unreachable(self, result):
        host = result._host.get_name()
        self._seen(host)
        self.errors[host] = "unreachable: " + str(result._result.get("msg", "")).strip()

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("FER_EDGE_FLEET_SUMMARY")
        if not path:
            return
        hosts = {}
        for host in sorted(stats.processed):
            first, last = self.times.get(host, [0.0, 0.0])
            hosts[host] = {"counts": stats.summarize(host), "seconds": round(last - first, 1),
                           "error": self.errors.get(host, ""), **stats.custom.get(host, {}).get("fer_edge", {})}
        with open(path, "w") as fh:
            json.dump(hosts, fh, indent=1)
