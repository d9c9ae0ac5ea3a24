"""Build a `Snapshot` from the raw JSON of one list call per kind. Pure, no I/O.

What it is for: mapping Deployments, StatefulSets, ReplicaSets, Pods, Nodes,
Events (and DRA ResourceSlices / ResourceClaims when the cluster has them)
plus optional metrics into opsagent's domain types. GPU Jobs come from the
pods Jobs own (jobs.py), so they cost no list call of their own. Rollout state is read the
way `kubectl rollout status` reads it; history the way `kubectl rollout
history` does (ReplicaSets owned by the Deployment, by their revision
annotation).

What it must not do: talk to the API server or Prometheus (the adapter fetches
and hands the parsed JSON in), or mutate its inputs.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opsagent.cluster.kube import gpus as gpu_parse
from opsagent.cluster.kube.jobs import jobs_from_pods
from opsagent.model import (
    Event, GpuDevice, GpuRequirement, Node, Pod, Revision, RolloutState, Snapshot, Workload, WorkloadRef,
)
from opsagent.policy.intents import annotation_problem

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
MIN_LINK_WIDTH = "opsagent.dev/gpu-min-link-width"
COHERENT = "opsagent.dev/gpu-coherent"
TENSOR_PARALLEL = "opsagent.dev/tensor-parallel"
MAX_EVENTS = 500

NO_METRICS_NOTE = (
    "no Prometheus configured: request_rate and gpu_utilization are unknown (None); "
    "idle rules that need metrics fall back to what the API shows (replicas, pods, events)"
)


@dataclass
class RawLists:
    """The `items` of each list call. `resource_slices`/`resource_claims` are None when DRA cannot be read:
    the API lacks it, or (`dra_unreadable`, with the reason) it is there but the list calls were refused."""

    deployments: list[dict[str, Any]] = field(default_factory=list)
    statefulsets: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    resource_slices: list[dict[str, Any]] | None = None
    resource_claims: list[dict[str, Any]] | None = None
    dra_unreadable: str | None = None


@dataclass
class Metrics:
    """What Prometheus said, keyed 'namespace/name'. None means not measured."""

    pod_gpu_utilization: dict[str, float] | None = None
    request_rate: dict[str, float] | None = None
    notes: tuple[str, ...] = ()


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def _owner(obj: dict[str, Any], kind: str) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return ref.get("name")
    return None


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    """As `kubectl rollout status` decides it (DeploymentStatusViewer)."""
    meta, spec, status = _meta(deployment), deployment.get("spec") or {}, deployment.get("status") or {}
    revision = _int((meta.get("annotations") or {}).get(REVISION), 1) or 1
    progressing = _condition(deployment, "Progressing") or {}
    since = parse_time(progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime"))
    reason, message = progressing.get("reason"), progressing.get("message")
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return RolloutState(status="progressing", reason=reason, revision=revision, since=since,
                            message="waiting for deployment spec update to be observed")
    if reason == "ProgressDeadlineExceeded":
        return RolloutState(status="failed", reason=reason, message=message, revision=revision, since=since)
    wanted = _int(spec.get("replicas"), 1)
    updated, total = _int(status.get("updatedReplicas")), _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    waiting = None
    if updated < wanted:
        waiting = f"{updated} out of {wanted} new replicas have been updated"
    elif total > updated:
        waiting = f"{total - updated} old replicas are pending termination"
    elif available < updated:
        waiting = f"{available} of {updated} updated replicas are available"
    if waiting:
        return RolloutState(status="progressing", reason=reason, message=waiting, revision=revision, since=since)
    return RolloutState(status="complete", reason=reason, message=message, revision=revision, since=since)


def _image(template: dict[str, Any]) -> str:
    """The first container's image: what a revision runs."""
    containers = (template.get("spec") or {}).get("containers") or []
    return containers[0].get("image", "") if containers else ""


def _template_facts(template: dict[str, Any]) -> dict[str, Any]:
    spec = template.get("spec") or {}
    containers = spec.get("containers") or []
    memory = 0
    for c in containers:
        req = ((c.get("resources") or {}).get("requests") or {}).get("memory") or \
            ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if req is not None:
            try:
                memory += gpu_parse.mib(req)
            except ValueError:
                pass
    return {
        "image": _image(template),
        "gpus": gpu_parse.pod_spec_gpus(spec),
        "memory_mib": memory or None,
        "annotations": (template.get("metadata") or {}).get("annotations") or {},
    }


def _requirement(*sources: dict[str, str]) -> GpuRequirement:
    width, coherent = None, False
    for annotations in sources:
        if width is None and annotations.get(MIN_LINK_WIDTH):
            width = _int(annotations[MIN_LINK_WIDTH]) or None
        coherent = coherent or str(annotations.get(COHERENT, "")).lower() == "true"
    return GpuRequirement(min_link_width=width if width and 1 <= width <= 32 else None, coherent=coherent)


def _history(replicasets: list[dict[str, Any]]) -> tuple[Revision, ...]:
    revisions = []
    for rs in replicasets:
        ann = _meta(rs).get("annotations") or {}
        number = _int(ann.get(REVISION))
        if number <= 0:
            continue
        revisions.append(Revision(
            revision=number,
            image=_image((rs.get("spec") or {}).get("template") or {}),
            created_at=parse_time(_meta(rs).get("creationTimestamp")),
            change_cause=ann.get(CHANGE_CAUSE),
        ))
    return tuple(sorted(revisions, key=lambda r: r.revision))


def _workload(obj: dict[str, Any], kind: str, owned_rs: list[dict[str, Any]], metrics: Metrics,
              util: dict[str, list[float]]) -> Workload:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ref = WorkloadRef(namespace=meta.get("namespace", ""), name=meta.get("name", ""), kind=kind)  # type: ignore[arg-type]
    facts = _template_facts(spec.get("template") or {})
    annotations = meta.get("annotations") or {}
    rollout = rollout_state(obj) if kind == "Deployment" else RolloutState(
        status="complete" if _int(status.get("updatedReplicas")) >= _int(spec.get("replicas"), 1) else "progressing",
        revision=1)
    rate = None if metrics.request_rate is None else metrics.request_rate.get(str(ref))
    busy = util.get(str(ref))
    return Workload(
        ref=ref,
        replicas=max(0, _int(spec.get("replicas"), 1)),
        ready_replicas=max(0, _int(status.get("readyReplicas"))),
        revision=rollout.revision,
        image=facts["image"],
        gpus_per_replica=facts["gpus"],
        memory_mib=facts["memory_mib"],
        gpu_requirement=_requirement(facts["annotations"], annotations),
        tensor_parallel=str(annotations.get(TENSOR_PARALLEL, facts["annotations"].get(TENSOR_PARALLEL, ""))).lower() == "true",
        labels=meta.get("labels") or {},
        annotations=annotations,
        request_rate=rate,
        gpu_utilization=(sum(busy) / len(busy)) if busy else (None if metrics.pod_gpu_utilization is None or not facts["gpus"] else 0.0),
        rollout=rollout,
        history=_history(owned_rs) if kind == "Deployment" else (),
    )


def _pod_state(pod: dict[str, Any]) -> tuple[str | None, str | None]:
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return waiting.get("reason"), waiting.get("message")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return scheduled.get("reason"), scheduled.get("message")
    if _meta(pod).get("deletionTimestamp"):
        return "Terminating", None
    return status.get("reason"), status.get("message")


def _pod(pod: dict[str, Any], workload: WorkloadRef | None, revision: int, gpu_ids: list[str]) -> Pod:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    reason, message = _pod_state(pod)
    ready = (_condition(pod, "Ready") or {}).get("status") == "True"
    return Pod(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), workload=workload,
        phase=phase if phase in ("Pending", "Running", "Succeeded", "Failed") else "Pending",
        reason=reason, message=message, node=spec.get("nodeName"), gpu_ids=tuple(gpu_ids),
        restarts=sum(_int(cs.get("restartCount")) for cs in status.get("containerStatuses") or []),
        ready=ready, revision=revision, started_at=parse_time(status.get("startTime")),
        labels=meta.get("labels") or {}, annotations=meta.get("annotations") or {},
    )


def _event(item: dict[str, Any]) -> Event | None:
    involved = item.get("involvedObject") or item.get("regarding") or {}
    when = parse_time(item.get("lastTimestamp") or item.get("eventTime") or item.get("firstTimestamp")
                      or _meta(item).get("creationTimestamp"))
    if when is None or not item.get("reason"):
        return None
    return Event(time=when, namespace=involved.get("namespace") or _meta(item).get("namespace", ""),
                 kind=involved.get("kind", ""), name=involved.get("name", ""),
                 type="Warning" if item.get("type") == "Warning" else "Normal",
                 reason=item["reason"], message=item.get("message") or item.get("note") or "")


def build_snapshot(raw: RawLists, *, now: datetime, metrics: Metrics | None = None) -> Snapshot:
    # Building tens of thousands of small objects triggers the cyclic GC over and over
    # (it scans the large raw JSON each time); none of them form cycles, so pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(raw, now=now, metrics=metrics)
    finally:
        if enabled:
            gc.enable()


def _build(raw: RawLists, *, now: datetime, metrics: Metrics | None) -> Snapshot:
    metrics = metrics or Metrics(notes=(NO_METRICS_NOTE,))
    # ReplicaSets: by (ns, name) -> (owning deployment, revision); by deployment -> list
    rs_owner: dict[tuple[str, str], tuple[str | None, int]] = {}
    rs_of: dict[str, list[dict[str, Any]]] = {}
    for rs in raw.replicasets:
        meta = _meta(rs)
        owner = _owner(rs, "Deployment")
        revision = _int((meta.get("annotations") or {}).get(REVISION))
        rs_owner[(meta.get("namespace", ""), meta.get("name", ""))] = (owner, revision)
        if owner:
            rs_of.setdefault(f"{meta.get('namespace', '')}/{owner}", []).append(rs)
    known = {f"{_meta(o).get('namespace', '')}/{_meta(o).get('name', '')}": "Deployment" for o in raw.deployments}
    known.update({f"{_meta(o).get('namespace', '')}/{_meta(o).get('name', '')}": "StatefulSet" for o in raw.statefulsets})

    # GPUs: DRA slices where a node publishes them, device-plugin counts elsewhere.
    dra = gpu_parse.slice_gpus(raw.resource_slices or [])
    node_devices: dict[str, list[GpuDevice]] = {}
    for node in raw.nodes:
        name = _meta(node).get("name", "")
        node_devices[name] = dra.get(name) or gpu_parse.node_gpus(node)
    claimed = gpu_parse.claim_assignments(raw.resource_claims or [], raw.resource_slices or [])
    plugin_nodes = {n: d for n, d in node_devices.items() if n not in dra}
    holders = []
    for pod in raw.pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        key = f"{_meta(pod).get('namespace', '')}/{_meta(pod).get('name', '')}"
        holders.append((key, (pod.get("spec") or {}).get("nodeName"), gpu_parse.pod_spec_gpus(pod.get("spec") or {})))
    assigned = gpu_parse.assign_plugin_gpus(plugin_nodes, holders)
    for key, ids in claimed.items():
        assigned[key] = assigned.get(key, []) + ids

    pods: list[Pod] = []
    holder_of: dict[str, tuple[str, datetime | None]] = {}
    util_by_workload: dict[str, list[float]] = {}
    pod_util = metrics.pod_gpu_utilization or {}
    for item in raw.pods:
        meta = _meta(item)
        ns = meta.get("namespace", "")
        workload, revision = None, 0
        rs_name = _owner(item, "ReplicaSet")
        sts_name = _owner(item, "StatefulSet")
        if rs_name and (ns, rs_name) in rs_owner:
            owner, revision = rs_owner[(ns, rs_name)]
            if owner and known.get(f"{ns}/{owner}") == "Deployment":
                workload = WorkloadRef(namespace=ns, name=owner)
        elif sts_name and known.get(f"{ns}/{sts_name}") == "StatefulSet":
            workload = WorkloadRef(namespace=ns, name=sts_name, kind="StatefulSet")
        key = f"{ns}/{meta.get('name', '')}"
        ids = assigned.get(key, [])
        pod = _pod(item, workload, revision, ids)
        pods.append(pod)
        for gid in ids:
            holder_of[gid] = (key, pod.started_at)
        if workload is not None and key in pod_util and ids:
            util_by_workload.setdefault(str(workload), []).append(pod_util[key])

    nodes = []
    for item in raw.nodes:
        meta = _meta(item)
        name = meta.get("name", "")
        devices = tuple(
            g.model_copy(update={
                "holder": holder_of.get(g.id, (None, None))[0],
                "held_since": holder_of.get(g.id, (None, None))[1],
                "utilization": max(0.0, min(100.0, pod_util.get(holder_of[g.id][0], 0.0))) if g.id in holder_of else 0.0,
            })
            for g in node_devices.get(name, [])
        )
        nodes.append(Node(
            name=name,
            ready=(_condition(item, "Ready") or {}).get("status") == "True",
            cordoned=bool((item.get("spec") or {}).get("unschedulable")),
            labels=meta.get("labels") or {},
            gpus=devices,
        ))

    workloads = [
        _workload(obj, "Deployment", rs_of.get(f"{_meta(obj).get('namespace', '')}/{_meta(obj).get('name', '')}", []),
                  metrics, util_by_workload)
        for obj in raw.deployments
    ] + [_workload(obj, "StatefulSet", [], metrics, util_by_workload) for obj in raw.statefulsets]

    events = sorted((e for e in map(_event, raw.events) if e is not None), key=lambda e: e.time)[-MAX_EVENTS:]
    notes = list(metrics.notes)
    for workload in workloads:
        problem = annotation_problem(workload)
        if problem is not None:
            notes.append(f"{problem}; its opsagent.dev intent annotations are ignored until this is fixed")
    if raw.dra_unreadable:
        notes.append(f"DRA objects not readable ({raw.dra_unreadable}); GPUs come from node allocatable and GFD labels")
    elif raw.resource_slices is None:
        notes.append("the API has no resource.k8s.io ResourceSlices: GPUs come from node allocatable and GFD labels")
    return Snapshot(
        time=now,
        workloads=tuple(sorted(workloads, key=lambda w: (w.ref.namespace, w.ref.name))),
        pods=tuple(sorted(pods, key=lambda p: p.key)),
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
        jobs=jobs_from_pods(raw.pods, pods),
        events=tuple(events),
        source="kube",
        notes=tuple(notes),
    )
