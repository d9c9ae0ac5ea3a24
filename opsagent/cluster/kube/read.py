"""Build a `Snapshot` from the raw JSON of one list call per kind. Pure, no I/O.

What it is for: mapping Deployments, StatefulSets, ReplicaSets, Pods, Nodes,
Events (and DRA ResourceSlices / ResourceClaims when the cluster has them)
plus optional metrics into opsagent's domain types. GPU Jobs come from the
pods Jobs own (jobs.py), so they cost no list call of their own. Rollout state is read the
way `kubectl rollout status` reads it; history the way `kubectl rollout
history` does (ReplicaSets owned by the Deployment, by their revision
annotation).

The objects come shaped (shapes.py keeps only the fields read here and in the
modules this calls); whole objects give the same Snapshot. Neither shows
kubectl's `last-applied-configuration` annotation: it is a copy of the whole
manifest (env values included), not something a policy or a person reads here.

What it must not do: talk to the API server or Prometheus (the adapter fetches
and hands the parsed JSON in), or mutate its inputs.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from pydantic import BaseModel
from opsagent.cluster.kube import autoscalers as autoscaler_parse
from opsagent.cluster.kube import config as config_parse
from opsagent.cluster.kube import services as service_parse
from opsagent.cluster.kube import disruption as disruption_parse
from opsagent.cluster.kube import gpus as gpu_parse
from opsagent.cluster.kube import health as health_parse
from opsagent.cluster.kube.jobs import BATCH_API, JobMember, jobs_from_members
from opsagent.cluster.kube.timestamps import parse_time
from opsagent.model import (
    Event, GpuDevice, GpuRequirement, Node, NodeCondition, Pod, Revision, RolloutState, Snapshot, Workload, WorkloadRef,
)
from opsagent.policy.intents import annotation_problem

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
MIN_LINK_WIDTH = "opsagent.dev/gpu-min-link-width"
COHERENT = "opsagent.dev/gpu-coherent"
TENSOR_PARALLEL = "opsagent.dev/tensor-parallel"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_EVENTS = 500
_PHASES = ("Pending", "Running", "Succeeded", "Failed")
_FINISHED = ("Succeeded", "Failed")
_UNHELD = {"holder": None, "held_since": None, "utilization": 0.0}

# The domain records are built from a dict of their fields by the model's own validator: the same
# validation as `Model(**fields)` and `Model.model_validate(fields)` (same values, same fields set),
# without their Python-side wrapping, which shows over the tens of thousands of records of a large cluster.
# Records with equal `model_fields_set`s share one set (a set of 16 names costs more than the record's own
# fields): records are frozen, so nothing adds to a record's set in place, and pydantic copies it before a
# `model_copy` changes it.
_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def _lean(record: Any) -> Any:
    """`record` holding the shared set of the fields it was built with."""
    names = record.__pydantic_fields_set__
    shared = _FIELD_SETS.setdefault(frozenset(names), names)
    if shared is not names:
        object.__setattr__(record, "__pydantic_fields_set__", shared)
    return record


def _validator(model: type[BaseModel]) -> Any:
    validate = model.__pydantic_validator__.validate_python
    return lambda fields: _lean(validate(fields))


_new_pod = _validator(Pod)
_new_workload = _validator(Workload)
_new_ref = _validator(WorkloadRef)
_new_rollout = _validator(RolloutState)
_new_revision = _validator(Revision)
_new_gpu = _validator(GpuDevice)

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
    # Autoscalers: HPAs always; KEDA's kinds None when the cluster has no KEDA CRDs (`keda_missing` says which).
    hpas: list[dict[str, Any]] = field(default_factory=list)
    scaled_objects: list[dict[str, Any]] | None = None
    http_scaled_objects: list[dict[str, Any]] | None = None
    keda_missing: tuple[str, ...] = ()
    disruption_budgets: list[dict[str, Any]] = field(default_factory=list)
    # What pods need (needs.py): ConfigMaps and Secrets as names only, PVCs, Services and their EndpointSlices.
    config_maps: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    volume_claims: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    config_unreadable: str | None = None   # why ConfigMaps/Secrets could not be listed (403), if so


@dataclass
class Metrics:
    """What Prometheus said, keyed 'namespace/name'. None means not measured."""

    pod_gpu_utilization: dict[str, float] | None = None
    request_rate: dict[str, float] | None = None
    notes: tuple[str, ...] = ()


def _int(value: Any, default: int = 0) -> int:
    if value is None:  # common (absent field) and cheaper to test than to raise TypeError for
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON number too large for a float (1e400)
        return default


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _visible(annotations: dict[str, Any] | None) -> dict[str, Any]:
    """Annotations as the view shows them: without kubectl's last-applied-configuration."""
    if not annotations:
        return {}
    if LAST_APPLIED not in annotations:
        return annotations
    return {k: v for k, v in annotations.items() if k != LAST_APPLIED}


def _first_condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The first entry of `status.conditions` of type `kind`."""
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def controller_ref(meta: dict[str, Any], kind: str) -> tuple[str, str | None] | None:
    """(name, uid) of the object's controller when it is a `kind`: the ownerReference marked `controller: true`.

    Only the controller's reference says who made the object. A reference without the flag, or labels that match
    a selector, say nothing: anyone who may create a ReplicaSet can write them."""
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller") is True:
            name = ref.get("name")
            return (name, ref.get("uid")) if ref.get("kind") == kind and isinstance(name, str) else None
    return None


def same_owner(ref: tuple[str, str | None] | None, name: str, uid: str | None) -> bool:
    """Does controller reference `ref` name this owner: its name, and its uid whenever the owner has one
    (the API server always gives one; a reference by name alone could be to any object that had the name)."""
    return ref is not None and ref[0] == name and (uid is None or ref[1] == uid)


def owned_history(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(revision, ReplicaSet) of the Deployment's rollout history, oldest first: the ReplicaSets it controls
    (by uid, see `same_owner`) with a revision it could have given them (`plausible_revisions`)."""
    meta = _meta(deployment)
    name, uid = meta.get("name", ""), meta.get("uid")
    entries = []
    for rs in replicasets:
        rs_meta = _meta(rs)
        if same_owner(controller_ref(rs_meta, "Deployment"), name, uid):
            entries.append((_int((rs_meta.get("annotations") or {}).get(REVISION)), rs))
    return plausible_revisions(entries, (meta.get("annotations") or {}).get(REVISION))


def plausible_revisions(entries: list[Any], current: Any) -> list[Any]:
    """`entries` (each starting with its revision number) that a Deployment at revision `current` can have made,
    oldest first. A revision above the Deployment's own (its controller numbers each new ReplicaSet one above
    the highest) or one two ReplicaSets claim is written by hand: it steers no rollback, so it is left out."""
    cap = _int(current, 0) if current is not None else 0
    counts: dict[int, int] = {}
    for entry in entries:
        counts[entry[0]] = counts.get(entry[0], 0) + 1
    kept = [e for e in entries if e[0] > 0 and counts[e[0]] == 1 and (cap <= 0 or e[0] <= cap)]
    kept.sort(key=itemgetter(0))
    return kept


_UNSET: Any = object()


def _pod_owners(meta: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(ReplicaSet, StatefulSet, batch Job) owner names of a pod in one pass over its ownerReferences.

    Each is taken from the first reference that matches, as `_owner` and `jobs.job_owner` take it."""
    rs = sts = job = _UNSET
    for ref in meta.get("ownerReferences") or ():
        kind = ref.get("kind")
        if kind == "ReplicaSet":
            if rs is _UNSET:
                rs = ref.get("name")
        elif kind == "StatefulSet":
            if sts is _UNSET:
                sts = ref.get("name")
        elif kind == "Job" and job is _UNSET and str(ref.get("apiVersion", "")).startswith(BATCH_API):
            job = ref.get("name")
    return (None if rs is _UNSET else rs, None if sts is _UNSET else sts, None if job is _UNSET else job)


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    """As `kubectl rollout status` decides it (DeploymentStatusViewer)."""
    return _rollout(_meta(deployment), deployment.get("spec") or {}, deployment.get("status") or {})


def _rollout(meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> RolloutState:
    revision = _int((meta.get("annotations") or {}).get(REVISION), 1) or 1
    progressing = _first_condition(status, "Progressing") or {}
    since = parse_time(progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime"))
    reason, message = progressing.get("reason"), progressing.get("message")
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        state, message = "progressing", "waiting for deployment spec update to be observed"
    elif reason == "ProgressDeadlineExceeded":
        state = "failed"
    else:
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
        state, message = ("progressing", waiting) if waiting else ("complete", message)
    return _new_rollout(
        {"status": state, "reason": reason, "message": message, "revision": revision, "since": since})


def _image(template: dict[str, Any]) -> str:
    """The first container's image: what a revision runs."""
    containers = (template.get("spec") or {}).get("containers") or []
    return containers[0].get("image", "") if containers else ""


def _template_facts(template: dict[str, Any], where: str,
                    unreadable: dict[str, str]) -> tuple[str, int, int | None, dict[str, str]]:
    """What a pod template says: (image, GPUs per replica, memory MiB requested or None, its annotations).

    Memory counts each container's request, else its limit; a quantity that does not parse counts as none.
    A GPU count that does not read counts as 0, noted under `where` in `unreadable` (see `readable_gpus`)."""
    spec = template.get("spec") or {}
    memory = 0
    for c in spec.get("containers") or ():
        resources = c.get("resources") or {}
        req = (resources.get("requests") or {}).get("memory") or (resources.get("limits") or {}).get("memory")
        if req is not None:
            try:
                memory += max(0, gpu_parse.mib(req))  # a negative size counts as none
            except ValueError:
                pass
    return (_image(template), gpu_parse.readable_gpus(spec, where, unreadable), memory or None,
            (template.get("metadata") or {}).get("annotations") or {})


# GpuRequirement values are few (a width of 1-32 or none, coherent or not) and frozen: share one per value.
_REQUIREMENTS: dict[tuple[int | None, bool], GpuRequirement] = {}


def _requirement(template_annotations: dict[str, str], annotations: dict[str, str]) -> GpuRequirement:
    """The GPU requirement the intent annotations state; the template's width wins over the workload's."""
    width, coherent = None, False
    for source in (template_annotations, annotations):
        if not source:
            continue
        if width is None and source.get(MIN_LINK_WIDTH):
            width = _int(source[MIN_LINK_WIDTH]) or None
        coherent = coherent or str(source.get(COHERENT, "")).lower() == "true"
    key = (width if width and 1 <= width <= 32 else None, coherent)
    found = _REQUIREMENTS.get(key)
    if found is None:
        found = _REQUIREMENTS[key] = GpuRequirement(min_link_width=key[0], coherent=coherent)
    return found


def _history(owned: list[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]], current: Any) -> tuple[Revision, ...]:
    """`kubectl rollout history`: the controlled ReplicaSets with a plausible revision, oldest first.

    `owned` holds (revision, ReplicaSet, its metadata, its annotations) as the ReplicaSet pass read them;
    `current` is the Deployment's own revision annotation (see `plausible_revisions`)."""
    entries = plausible_revisions(owned, current)
    return tuple([
        _new_revision({"revision": number, "image": _image((rs.get("spec") or {}).get("template") or {}),
                       "created_at": parse_time(meta.get("creationTimestamp")), "change_cause": ann.get(CHANGE_CAUSE)})
        for number, rs, meta, ann in entries
    ])


def _workload(obj: dict[str, Any], ref: WorkloadRef, key: str, owned_rs: list, metrics: Metrics,
              util: dict[str, list[float]], shared: health_parse.Shared, unreadable: dict[str, str]) -> Workload:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    deployment = ref.kind == "Deployment"
    image, gpus, memory, template_annotations = _template_facts(spec.get("template") or {}, f"{ref.kind} {key}",
                                                                unreadable)
    annotations = _visible(meta.get("annotations"))
    rollout = _rollout(meta, spec, status) if deployment else _new_rollout({
        "status": "complete" if _int(status.get("updatedReplicas")) >= _int(spec.get("replicas"), 1) else "progressing",
        "revision": 1})
    rate = None if metrics.request_rate is None else metrics.request_rate.get(key)
    busy = util.get(key)
    tensor_parallel = annotations.get(TENSOR_PARALLEL, template_annotations.get(TENSOR_PARALLEL, ""))
    return _new_workload({
        "ref": ref,
        "replicas": max(0, _int(spec.get("replicas"), 1)),
        "ready_replicas": max(0, _int(status.get("readyReplicas"))),
        "revision": rollout.revision,
        "image": image,
        "gpus_per_replica": gpus,
        "memory_mib": memory,
        "gpu_requirement": _requirement(template_annotations, annotations),
        "tensor_parallel": str(tensor_parallel).lower() == "true",
        "labels": meta.get("labels") or {},
        "annotations": annotations,
        "request_rate": rate,
        "gpu_utilization": (sum(busy) / len(busy)) if busy else (
            None if metrics.pod_gpu_utilization is None or not gpus else 0.0),
        "rollout": rollout,
        "history": _history(owned_rs, annotations.get(REVISION)) if deployment else (),
        "containers": health_parse.containers((spec.get("template") or {}).get("spec") or {}, shared),
    })


def _waiting(statuses: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The first container `waiting` state with a reason other than PodInitializing."""
    for cs in statuses or ():
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return waiting
    return None


def _pod(meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], workload: WorkloadRef | None,
         revision: int, gpu_ids: tuple[str, ...], shared: health_parse.Shared) -> Pod:
    phase = status.get("phase") or "Pending"
    ready = scheduled = None  # the first Ready and PodScheduled conditions
    for cond in status.get("conditions") or ():
        kind = cond.get("type")
        if kind == "Ready":
            if ready is None:
                ready = cond
        elif kind == "PodScheduled" and scheduled is None:
            scheduled = cond
    containers = status.get("containerStatuses")
    # Why the pod is not running, most specific first: a container waiting (init containers
    # first), not scheduled, being deleted, else what the pod status says.
    init = status.get("initContainerStatuses")
    waiting = (_waiting(init) if init else None) or (_waiting(containers) if containers else None)
    if waiting:
        reason, message = waiting.get("reason"), waiting.get("message")
    elif scheduled and scheduled.get("status") == "False":
        reason, message = scheduled.get("reason"), scheduled.get("message")
    elif meta.get("deletionTimestamp"):
        reason, message = "Terminating", None
    else:
        reason, message = status.get("reason"), status.get("message")
    restarts = 0
    for cs in containers or ():
        restarts += max(0, _int(cs.get("restartCount")))
    fields = {
        "namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "workload": workload,
        "phase": phase if phase in _PHASES else "Pending",
        "reason": reason, "message": message, "node": spec.get("nodeName"), "gpu_ids": gpu_ids,
        "restarts": restarts, "ready": (ready or {}).get("status") == "True", "revision": revision,
        "started_at": parse_time(status.get("startTime")),
        "labels": meta.get("labels") or {}, "annotations": _visible(meta.get("annotations")),
    }
    if containers:  # set only when the pod says something, so records without them stay as they were built
        ended = health_parse.terminations(containers, shared)
        if ended:
            fields["terminations"] = ended
        first = next(iter(spec.get("containers") or ()), None)
        since = health_parse.running_since(containers, first.get("name") if isinstance(first, dict) else None)
        if since is not None:
            fields["running_since"] = since
    return _new_pod(fields)


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


def _node(item: dict[str, Any], devices: dict[str, list[dict[str, Any]]],
          holder_of: dict[str, tuple[str, datetime | None]], pod_util: dict[str, float]) -> Node:
    """A node with its GPUs (`devices`: GpuDevice fields by node name), each with its holder if any."""
    meta = _meta(item)
    name = meta.get("name", "")
    gpus = []
    for fields in devices.get(name, ()):
        held = holder_of.get(fields["id"])
        gpus.append(_new_gpu({**fields, "holder": held[0], "held_since": held[1],
                              "utilization": max(0.0, min(100.0, pod_util.get(held[0], 0.0)))}
                             if held else {**fields, **_UNHELD}))
    status = item.get("status") or {}
    ready = _first_condition(status, "Ready") or {}
    info = status.get("nodeInfo")
    boot_id = info.get("bootID") if isinstance(info, dict) else None
    return Node(
        name=name,
        ready=ready.get("status") == "True",
        cordoned=bool((item.get("spec") or {}).get("unschedulable")),
        labels=meta.get("labels") or {},
        gpus=tuple(gpus),
        conditions=_problem_conditions(status),
        boot_id=boot_id[:200] if isinstance(boot_id, str) and boot_id else None,
        ready_transition_at=parse_time(ready.get("lastTransitionTime")),
    )


# Node condition types that report a problem when True: the kubelet's own pressure conditions and
# what node-problem-detector and GPU health monitors set. Others (k3s's EtcdIsVoter, say) are facts.
_PROBLEM_WORDS = ("pressure", "unavailable", "deadlock", "readonly", "frequent", "corrupt", "problem", "error",
                  "fail", "xid", "ecc", "unhealthy", "fault")


def _problem_conditions(status: dict[str, Any]) -> tuple[NodeCondition, ...]:
    """Node conditions that report a problem and hold now (True): pressure, or one a node-problem detector set."""
    found = []
    for cond in status.get("conditions") or ():
        kind = str(cond.get("type") or "")
        if not kind or cond.get("status") != "True" or not any(w in kind.lower() for w in _PROBLEM_WORDS):
            continue
        found.append(NodeCondition(type=kind[:100], reason=(cond.get("reason") or None),
                                   message=(str(cond.get("message"))[:1000] if cond.get("message") else None),
                                   since=parse_time(cond.get("lastTransitionTime"))))
    return tuple(sorted(found, key=lambda c: c.type))


def _share_field_sets(snapshot: Snapshot) -> Snapshot:
    """`snapshot` with each of its records (nested ones too) holding the one shared set of its fields set."""
    seen: set[int] = set()
    stack: list[BaseModel] = [snapshot]
    while stack:
        record = stack.pop()
        if id(record) in seen:
            continue
        seen.add(id(record))
        _lean(record)
        for value in record.__dict__.values():
            if isinstance(value, BaseModel):
                stack.append(value)
            elif type(value) is tuple:
                stack.extend([v for v in value if isinstance(v, BaseModel)])
    return snapshot


def _sorted_by(keys: list[Any], records: list[Any]) -> tuple[Any, ...]:
    """`records` ordered by `keys` (one per record); records with equal keys keep their order."""
    return tuple([record for _, record in sorted(zip(keys, records), key=itemgetter(0))])


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
    # Workloads: (object, kind, namespace, name, 'ns/name'), and the kind each 'ns/name' names
    # (a StatefulSet wins over a Deployment of the same name).
    listed = []
    known: dict[str, str] = {}
    uids: dict[str, str | None] = {}   # a Deployment's uid by 'ns/name': what its ReplicaSets' controller refs name
    for objects, kind in ((raw.deployments, "Deployment"), (raw.statefulsets, "StatefulSet")):
        for obj in objects:
            meta = _meta(obj)
            ns, name = meta.get("namespace", ""), meta.get("name", "")
            key = f"{ns}/{name}"
            known[key] = kind
            uids[key] = meta.get("uid")
            listed.append((obj, kind, ns, name, key))
    # The pods of one workload share one WorkloadRef (it is frozen), built once per (namespace, name, kind).
    pod_refs: dict[tuple[str, str, str], WorkloadRef] = {}

    def pod_ref(namespace: str, name: str, kind: str) -> WorkloadRef:
        ref = pod_refs.get((namespace, name, kind))
        if ref is None:
            fields = {"namespace": namespace, "name": name}
            if kind != "Deployment":  # a Deployment's kind stays the default, unset, as pods' refs always had it
                fields["kind"] = kind
            ref = pod_refs[namespace, name, kind] = _new_ref(fields)
        return ref

    # ReplicaSets: by (ns, name) -> (the Deployment workload its pods belong to, revision);
    # by owning Deployment 'ns/name' -> (revision, ReplicaSet, metadata, annotations) for history.
    rs_owner: dict[tuple[str, str], tuple[WorkloadRef | None, int]] = {}
    rs_of: dict[str, list[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]]] = {}
    for rs in raw.replicasets:
        meta = rs.get("metadata") or {}
        ns = meta.get("namespace", "")
        controller = controller_ref(meta, "Deployment")
        annotations = meta.get("annotations") or {}
        revision = _int(annotations.get(REVISION))
        workload = None
        if controller is not None:
            owner_key = f"{ns}/{controller[0]}"
            if known.get(owner_key) == "Deployment" and same_owner(controller, controller[0], uids.get(owner_key)):
                rs_of.setdefault(owner_key, []).append((revision, rs, meta, annotations))
                workload = pod_ref(ns, controller[0], "Deployment")
        rs_owner[(ns, meta.get("name", ""))] = (workload, revision)

    # GPUs: DRA slices where a node publishes them, device-plugin counts elsewhere.
    # Devices stay field dicts until their holder is known, so each GpuDevice is built once.
    dra = gpu_parse.slice_gpu_fields(raw.resource_slices or [])
    node_devices: dict[str, list[dict[str, Any]]] = {}
    for node in raw.nodes:
        name = _meta(node).get("name", "")
        node_devices[name] = dra.get(name) or gpu_parse.node_gpu_fields(node)
    claimed = gpu_parse.claim_assignments(raw.resource_claims or [], raw.resource_slices or [])
    plugin_nodes = {n: [g["id"] for g in d] for n, d in node_devices.items() if n not in dra}

    # First pass over pods: what each asks for. Finished pods hold no device, so their
    # request is only read (later) when a Job owns them.
    rows = []
    holders = []
    unreadable: dict[str, str] = {}  # 'Kind ns/name' -> why its GPU count was read as 0
    for item in raw.pods:
        meta = item.get("metadata") or {}
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        requested = None
        if status.get("phase") not in _FINISHED:
            requested = gpu_parse.readable_gpus(spec, f"Pod {key}", unreadable)
            node = spec.get("nodeName")
            if requested > 0 and node:  # assign_plugin_gpus passes over the others anyway
                holders.append((key, node, requested))
        rows.append((item, meta, spec, status, key, requested))
    assigned = gpu_parse.assign_plugin_gpus(plugin_nodes, holders)
    for key, ids in claimed.items():
        assigned[key] = assigned.get(key, []) + ids

    shared: health_parse.Shared = {}  # equal container specs and container ends, kept once in this snapshot
    pods: list[Pod] = []
    pod_keys: list[str] = []
    job_members: list[JobMember] = []
    holder_of: dict[str, tuple[str, datetime | None]] = {}
    util_by_workload: dict[str, list[float]] = {}
    pod_util = metrics.pod_gpu_utilization or {}
    for item, meta, spec, status, key, requested in rows:
        ns = meta.get("namespace", "")
        workload, revision = None, 0
        rs_name, sts_name, job_name = _pod_owners(meta)
        owned_by = rs_owner.get((ns, rs_name)) if rs_name else None
        if owned_by is not None:
            workload, revision = owned_by
        elif sts_name and known.get(f"{ns}/{sts_name}") == "StatefulSet":
            workload = pod_ref(ns, sts_name, "StatefulSet")
        ids = assigned.get(key)
        pod = _pod(meta, spec, status, workload, revision, tuple(ids) if ids else (), shared)
        pods.append(pod)
        pod_keys.append(key)
        if ids:
            for gid in ids:
                holder_of[gid] = (key, pod.started_at)
            if workload is not None and key in pod_util:
                util_by_workload.setdefault(str(workload), []).append(pod_util[key])
        if job_name is not None:
            if requested is None:
                requested = gpu_parse.readable_gpus(spec, f"Pod {key}", unreadable)
            job_members.append((job_name, item, pod, requested))

    nodes = [_node(item, node_devices, holder_of, pod_util) for item in raw.nodes]

    workloads = []
    workload_order: list[tuple[str, str]] = []  # (namespace, name) of each, to sort them by
    for obj, kind, ns, name, key in listed:
        owned = rs_of.get(key, []) if kind == "Deployment" else []
        ref = _new_ref({"namespace": ns, "name": name, "kind": kind})
        workloads.append(_workload(obj, ref, key, owned, metrics, util_by_workload, shared, unreadable))
        workload_order.append((ns, name))

    events = sorted((e for e in map(_event, raw.events) if e is not None), key=lambda e: e.time)[-MAX_EVENTS:]
    notes = list(metrics.notes)
    gpu_note = gpu_parse.unreadable_note(unreadable)
    if gpu_note is not None:
        notes.append(gpu_note)
    for workload in workloads:
        problem = annotation_problem(workload)
        if problem is not None:
            notes.append(f"{problem}; its opsagent.dev intent annotations are ignored until this is fixed")
    if raw.dra_unreadable:
        notes.append(f"DRA objects not readable ({raw.dra_unreadable}); GPUs come from node allocatable and GFD labels")
    elif raw.resource_slices is None:
        notes.append("the API has no resource.k8s.io ResourceSlices: GPUs come from node allocatable and GFD labels")
    if raw.config_unreadable:
        notes.append(f"ConfigMaps and Secrets not readable ({raw.config_unreadable}): a missing one is named from "
                     "the kubelet's message only")
    for missing in raw.keda_missing:
        notes.append(f"the API has no {missing}: workloads it would scale are not seen as autoscaler-owned")
    return _share_field_sets(Snapshot(
        time=now,
        # Sorted by keys read along the way (the same as the records' own), stable for equal keys.
        workloads=_sorted_by(workload_order, workloads),
        pods=_sorted_by(pod_keys, pods),
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
        jobs=jobs_from_members(job_members),
        events=tuple(events),
        source="kube",
        notes=tuple(notes),
        autoscalers=autoscaler_parse.autoscalers(raw.hpas, raw.scaled_objects, raw.http_scaled_objects),
        disruption_budgets=disruption_parse.budgets(raw.disruption_budgets),
        config_objects=config_parse.all_config(raw.config_maps, raw.secrets),
        volume_claims=config_parse.volume_claims(raw.volume_claims),
        services=service_parse.services(raw.services, raw.endpoint_slices,
                                        [(kind, obj) for obj, kind, *_ in listed]),
    ))
