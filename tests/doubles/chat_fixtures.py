"""A small policy for trying chat out and for its tests: who may do what, by name.

`EXAMPLE_POLICY` is a complete policy file: anyone may read; alice, bob and carol
may wake and sleep; scaling, restarts and rollbacks need one of group:leads
(alice, bob); scaling in `render` is denied. `write_example_policy(dir)` writes
it as `dir/chat-example.yaml`. No other behaviour lives here.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLE_POLICY = """\
priority: 10
scope:
  namespaces: ["*"]
approval_ttl: 1h
groups:
  leads: [alice, bob]
rules:
  - name: read-anything
    risk: read
    effect: allow
  - name: people-wake-and-sleep
    tools: [wake_workload, sleep_workload]
    actors: [alice, bob, carol]
    effect: allow
    reason: people on the team may wake and sleep workloads
  - name: no-scaling-render
    tools: [scale_workload]
    namespaces: [render]
    effect: deny
    reason: render is scaled by its own team
  - name: changes-need-a-lead
    tools: [scale_workload, restart_rollout, undo_rollout]
    actors: ["*"]
    effect: require_approval
    approvers: [group:leads]
    reason: a lead checks capacity before replicas change
"""


def write_example_policy(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "chat-example.yaml"
    path.write_text(EXAMPLE_POLICY, encoding="utf-8")
    return path
