"""Node health: the `node_unhealthy` and `node_left_cordoned` detectors.

`node_unhealthy`: a schedulable node that should take no new GPU pods:
NotReady flapping (it went NotReady at least `FLAP_COUNT` times within the
snapshot's event window), a GPU hardware XID error reported on it (fatal codes
only: application faults such as XID 13, 31 or 43 say nothing about the
node), or a problem condition that holds now (pressure, or one a
node-problem detector set). A node that is NotReady right now and never
flapped is left to the node controller: it evicts the pods itself.

`node_left_cordoned`: a cordoned node that looks healthy (Ready, no problem
condition, no recent NotReady or hardware XID) with free GPUs that pending
GPU pods or queued GPU jobs are waiting for: most often a maintenance that nobody finished.

When half or more of the GPU nodes (two at least) are unhealthy at the same
moment, the cause is the fleet (an OS update, the network, the control plane),
not the nodes: the findings say `fleet_wide`, and cordoning them all would
leave nothing schedulable, so the playbook hands that to a person instead.

Cordoning and uncordoning are node-level decisions: the playbooks only
propose them, and the shipped policy sends them to a person.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

import re
from datetime import datetime

from opsagent.detect.common import make, short
from opsagent.model import Event, Finding, Node, Snapshot

FLAP_COUNT = 2
# XIDs that point at the GPU or its link, not at the program: double-bit ECC, row-remap failure,
# fallen off the bus, NVLink, uncontained ECC, internal micro-controller halts, GSP errors.
HARDWARE_XIDS = frozenset({48, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140})
_XID = re.compile(r"\bxid\s*[:#]?\s*(\d{1,3})\b", re.IGNORECASE)


# Node events live in the default namespace (or none): an event about a node filed in a workload's
# namespace was written by whoever can write events there, not by the node controller or a node agent.
NODE_EVENT_NAMESPACES = frozenset({"", "default"})


def _node_events(snapshot: Snapshot) -> dict[str, list[Event]]:
    """Each node's events, oldest first, gathered in one pass over the snapshot's events."""
    by_node: dict[str, list[Event]] = {}
    for e in snapshot.events:
        if e.kind == "Node" and e.namespace in NODE_EVENT_NAMESPACES:
            by_node.setdefault(e.name, []).append(e)
    for events in by_node.values():
        events.sort(key=lambda e: e.time)
    return by_node


def _hardware_xids(events: list[Event]) -> list[dict]:
    found = []
    for event in events:
        if "xid" not in event.reason.lower() and "xid" not in event.message.lower():
            continue
        match = _XID.search(event.message) or _XID.search(event.reason)
        if match and int(match.group(1)) in HARDWARE_XIDS:
            found.append({"xid": int(match.group(1)), "at": event.time.isoformat(), "message": short(event.message, 160)})
    return found


def _health(node: Node, node_events: dict[str, list[Event]]) -> tuple[int, list[dict], list[dict]]:
    """(NotReady transitions in the window, hardware XIDs, problem conditions) of `node`."""
    events = node_events.get(node.name, [])
    flaps = sum(1 for e in events if e.reason == "NodeNotReady")
    conditions = [{"type": c.type, "reason": c.reason, "message": short(c.message, 160)} for c in node.conditions]
    return flaps, _hardware_xids(events), conditions


def node_unhealthy(snapshot: Snapshot, now: datetime) -> list[Finding]:
    """Unhealthy GPU nodes; `fleet_wide` when half or more of the GPU nodes (two at least) are at once."""
    found = _unhealthy(snapshot, now)
    gpu_nodes = sum(1 for n in snapshot.nodes if n.gpus)
    fleet_wide = len(found) >= 2 and 2 * len(found) >= gpu_nodes
    return [f.model_copy(update={"details": {**f.details, "fleet_wide": fleet_wide}}) for f in found]


def _unhealthy(snapshot: Snapshot, now: datetime) -> list[Finding]:
    findings = []
    node_events = _node_events(snapshot)
    for node in snapshot.nodes:
        if node.cordoned or not node.gpus:
            continue
        flaps, xids, conditions = _health(node, node_events)
        reasons = []
        if flaps >= FLAP_COUNT:
            reasons.append(f"NotReady {flaps} times in the last hour")
        if xids:
            reasons.append(f"GPU XID {xids[-1]['xid']}")
        if conditions:
            reasons.append(f"condition {conditions[0]['type']}")
        if not reasons:
            continue
        holders = sorted({g.holder for g in node.gpus if g.holder})
        findings.append(make(
            "node_unhealthy", node.name,
            f"node {node.name} is unhealthy ({'; '.join(reasons)}) and still takes new pods; "
            f"{len(holders)} GPU holder(s) on it",
            now,
            node=node.name, ready=node.ready, reasons=reasons, not_ready_transitions=flaps, xid_errors=xids,
            conditions=conditions, gpu_holders=holders, gpus=len(node.gpus),
        ))
    return findings


def node_left_cordoned(snapshot: Snapshot, now: datetime) -> list[Finding]:
    pending = sorted((p for p in snapshot.pods if p.phase == "Pending" and p.reason == "Unschedulable"
                      and p.workload is not None), key=lambda p: p.key)
    wanted = []
    for pod in pending:
        workload = snapshot.workload(pod.workload)  # type: ignore[arg-type]
        if workload is not None and workload.gpus_per_replica > 0:
            wanted.append((pod, workload.gpus_per_replica))
    # Queued GPU jobs (training) wait for the same devices as pending pods do.
    queued = sorted((j for j in snapshot.jobs if j.state == "queued"), key=lambda j: j.key)
    if not wanted and not queued:
        return []
    findings = []
    node_events = _node_events(snapshot)
    for node in snapshot.nodes:
        if not node.cordoned or not node.ready or not node.gpus:
            continue
        flaps, xids, conditions = _health(node, node_events)
        if flaps or xids or conditions:
            continue  # cordoned for a reason that still shows: leave it
        free = sum(1 for g in node.gpus if g.holder is None)
        fits = [pod.key for pod, gpus in wanted if gpus <= free]
        jobs = [job.key for job in queued if job.gpus <= free]
        if not fits and not jobs:
            continue
        findings.append(make(
            "node_left_cordoned", node.name,
            f"node {node.name} is cordoned but healthy, with {free} free GPU(s) that "
            f"{len(fits)} pending pod(s) and {len(jobs)} queued job(s) could use",
            now,
            node=node.name, free_gpus=free, pending_pods=fits, queued_jobs=jobs,
        ))
    return findings


__all__ = ["FLAP_COUNT", "HARDWARE_XIDS", "node_left_cordoned", "node_unhealthy"]
