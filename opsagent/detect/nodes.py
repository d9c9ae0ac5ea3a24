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

`node_awaits_repair`: the same, except that the agent recorded a hardware
XID on the node (a run it started for `node_unhealthy`, in `history`, which
reaches back a week) and the node has not rebooted since: its boot id is
the one recorded then (or, with no boot id to compare, its Ready condition
has not changed since the cordon). XID 79 and its kind hold until a reboot
or GPU reset, whatever the event window shows an hour later, so this is no
forgotten maintenance: it goes to a person with the reason, and nothing is
proposed. Evidence of repair is the node's own status (a new boot) or a
person (an uncordon approved after the fault); cluster text saying
"repaired" is not.

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

from opsagent.detect.common import History, attempts_for, make, short
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
            conditions=conditions, gpu_holders=holders, gpus=len(node.gpus), boot_id=node.boot_id,
        ))
    return findings


def node_left_cordoned(snapshot: Snapshot, now: datetime, history: History | None = None) -> list[Finding]:
    """Cordoned, healthy-looking GPU nodes that waiting GPU work could use: `node_left_cordoned`, or
    `node_awaits_repair` when the node was cordoned for a hardware fault it has not rebooted since."""
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
        fault = unrepaired_fault(node, history)
        if fault is not None:
            findings.append(make(
                "node_awaits_repair", node.name,
                f"node {node.name} {fault['why']}; {len(fits)} pending pod(s) and {len(jobs)} queued job(s) "
                f"wait for its {free} free GPU(s), but it needs a reboot or GPU reset before it takes work again",
                now,
                node=node.name, free_gpus=free, pending_pods=fits, queued_jobs=jobs, **fault,
            ))
            continue
        findings.append(make(
            "node_left_cordoned", node.name,
            f"node {node.name} is cordoned but healthy, with {free} free GPU(s) that "
            f"{len(fits)} pending pod(s) and {len(jobs)} queued job(s) could use",
            now,
            node=node.name, free_gpus=free, pending_pods=fits, queued_jobs=jobs,
        ))
    return findings


def unrepaired_fault(node: Node, history: History | None) -> dict | None:
    """Why `node` is still to be thought broken, from the agent's own record, or None.

    The last hardware XID a run for `node_unhealthy` on it recorded, unless
    the node rebooted after it (a boot id other than the one recorded then;
    with none to compare, a Ready transition after the cordon) or a person
    approved an uncordon of it after it. Returns the details a finding
    carries: `fault`, `fault_at`, `cordoned_at` (the agent's own cordon, if
    it made it), `boot_id` and `why`.
    """
    unhealthy = attempts_for(history, f"node_unhealthy:{node.name}")
    faults = [s for s in unhealthy.seen if s.details.get("xid_errors")]
    if not faults:
        return None
    last = faults[-1]
    xid = last.details["xid_errors"][-1]
    fault = f"XID {xid.get('xid')}" if isinstance(xid, dict) else "a hardware XID"
    cordons = sorted(a.at for a in unhealthy.actions if a.tool == "cordon_node" and a.at >= last.at)
    cordoned_at = cordons[0] if cordons else None
    since = cordoned_at or last.at
    recorded_boot = last.details.get("boot_id")
    if recorded_boot and node.boot_id:
        if node.boot_id != recorded_boot:
            return None   # a new boot: the GPU was reset with it
    elif node.ready_transition_at is not None and node.ready_transition_at > since:
        return None
    uncordons = (a for kind in ("node_left_cordoned", "node_awaits_repair")
                 for a in attempts_for(history, f"{kind}:{node.name}").actions if a.tool == "uncordon_node")
    if any(a.at > last.at for a in uncordons):
        return None   # a person let it back in after the fault: their call
    when = since.isoformat()
    why = (f"was cordoned at {when} for GPU {fault}; no reboot since" if cordoned_at is not None
           else f"is cordoned after GPU {fault} at {when}; no reboot since")
    return {"fault": fault, "fault_at": last.at.isoformat(), "cordoned_at": cordoned_at.isoformat() if cordoned_at else None,
            "boot_id": node.boot_id, "why": why}


__all__ = ["FLAP_COUNT", "HARDWARE_XIDS", "node_left_cordoned", "node_unhealthy", "unrepaired_fault"]
