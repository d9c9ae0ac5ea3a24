"""Node maintenance: the `node_needs_drain` detector.

It fires for a cordoned node that has a reason to be emptied (a problem condition, a
hardware GPU XID, or NotReady) and still runs pods a workload owns. The playbook proposes
`drain_node` (a person approves it): pods leave through the Eviction API, within their
PodDisruptionBudgets. Pods a budget protects right now (it allows no disruption) are listed
in `blocked`: a drain leaves them where they are, and a person decides (add a replica
elsewhere, wait, or accept the disruption).

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect.common import History, make
from opsagent.detect.incident import incident_attempts
from opsagent.detect.nodes import _hardware_xids, _node_events
from opsagent.model import Finding, Snapshot


def node_needs_drain(snapshot: Snapshot, now: datetime, history: History | None = None) -> list[Finding]:
    found = []
    node_events = _node_events(snapshot)
    for node in snapshot.nodes:
        if not node.cordoned:
            continue
        reasons = [c.type for c in node.conditions]
        if _hardware_xids(node_events.get(node.name, [])):
            reasons.append("XidError")
        if not node.ready:
            reasons.append("NotReady")
        pods = [p for p in snapshot.pods_on(node.name) if p.workload is not None]
        if not reasons or not pods:
            continue
        blocked = [{"pod": p.key, "budgets": [b.key for b in snapshot.budgets_for(p) if b.disruptions_allowed < 1]}
                   for p in pods if any(b.disruptions_allowed < 1 for b in snapshot.budgets_for(p))]
        seen = incident_attempts(history, f"node_needs_drain:{node.name}", started_at=None)
        found.append(make(
            "node_needs_drain", node.name,
            f"cordoned node {node.name} ({', '.join(sorted(set(reasons)))}) still runs {len(pods)} pod(s)"
            + (f"; {len(blocked)} protected by a disruption budget that allows none now" if blocked else ""), now,
            node=node.name, reasons=sorted(set(reasons)), pods=sorted(p.key for p in pods), blocked=blocked,
            gpus_held=sum(len(p.gpu_ids) for p in pods),
            attempts=sum(1 for a in seen.actions if a.tool == "drain_node")))
    return found
