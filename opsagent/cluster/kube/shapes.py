"""What the watched cache keeps of each kind: the fields the decoders read, nothing else. Pure, no I/O.

What it is for: `decoder_for(what)` parses one list page or one watch event of
a kind and cuts each object down to its *shape*, the part that read.py, gpus.py,
health.py, jobs.py, autoscalers.py, disruption.py, config.py, services.py and
the adapter's narrowed reads (owners, nodes, claims) and waits (resourceVersion,
ready replicas) look at. The cache then never holds whole objects: no
managedFields, no `kubectl.kubernetes.io/last-applied-configuration` (a copy of
the whole manifest, env values included), no volumes, env, tolerations, node
images or timestamps nobody reads. A ConfigMap or Secret keeps its name only
(config.py's `decode_names`), never data.

A shape is a dict of the keys to keep, each mapped to `KEEP` (the value as it
is), a nested shape (applied to a dict, or to each dict of a list), or a
function of (value, table). Lists become tuples. Equal strings and equal small
records (conditions, resource maps, owner references, label maps) within one
list call are kept once (`Table`): the decoders only read them.

Labels stay whole (policy scopes and Service selectors match any label), and so
do a workload's and a pod's annotations except last-applied-configuration (the
view shows them to policies and people; read.py drops that one too, so a
snapshot is the same whether built from whole or shaped objects: see
tests/test_kube_shapes.py). A pod template's annotations keep only the
`opsagent.dev/*` intents read from templates.

What it must not do: keep anything a decoder does not read, mutate its input,
or talk to the API server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opsagent.cluster.kube.config import decode_names
from opsagent.cluster.kube.gpus import GPU_RESOURCE
from opsagent.cluster.kube.read import (
    CHANGE_CAUSE, COHERENT, LAST_APPLIED, MIN_LINK_WIDTH, REVISION, TENSOR_PARALLEL,
)
from opsagent.cluster.kube.services import SERVICE_NAME
from opsagent.model import PAUSED_REPLICAS

KEEP = True
_SCALARS = (str, int, float, bool, type(None))


class Table:
    """Equal strings and equal records of one list call (all its pages), kept once."""

    __slots__ = ("values", "records")

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self.records: set[int] = set()   # ids of the records kept here (alive while the table is)

    def text(self, value: str) -> str:
        return self.values.setdefault(value, value)

    def record(self, out: dict[str, Any]) -> dict[str, Any]:
        """`out`, or an equal record already kept: one whose values are scalars or records kept here."""
        key: list[Any] = []
        for k, v in out.items():
            if type(v) in _SCALARS:
                key.append((k, type(v), v))
            elif id(v) in self.records:
                key.append((k, None, id(v)))
            else:
                return out
        found = self.values.setdefault(("\0", *key), out)
        if found is out:
            self.records.add(id(out))
        return found

    def seq(self, items: tuple[Any, ...]) -> tuple[Any, ...]:
        """`items`, or an equal tuple already kept, when each item is a scalar or a record kept here."""
        key: list[Any] = []
        for v in items:
            if type(v) in _SCALARS:
                key.append((type(v), v))
            elif id(v) in self.records:
                key.append((None, id(v)))
            else:
                return items
        found = self.values.setdefault(("\1", *key), items)
        if found is items:
            self.records.add(id(items))
        return found


Shape = dict[str, Any]


def _leaf(value: Any, table: Table) -> Any:
    """A value kept as it is: strings shared, a flat map (labels) copied in its order and shared."""
    kind = type(value)
    if kind is str:
        return table.text(value)
    if kind is dict:
        return table.record({table.text(k) if type(k) is str else k: _leaf(v, table) for k, v in value.items()})
    if kind is list:
        return table.seq(tuple([_leaf(v, table) for v in value]))
    return value


def shape(value: Any, spec: Any, table: Table) -> Any:
    """`value` cut down to `spec` (see the module docstring)."""
    if spec is KEEP:
        return _leaf(value, table)
    if callable(spec):
        return spec(value, table)
    kind = type(value)
    if kind is dict:
        out = {}
        for key, sub in spec.items():
            if key in value:
                out[key] = shape(value[key], sub, table)
        return table.record(out)
    if kind is list:
        return table.seq(tuple([shape(v, spec, table) for v in value]))
    return _leaf(value, table)


def only(*keys: str) -> Callable[[Any, Table], Any]:
    """A map cut down to `keys`, in its own order (annotations, resource lists)."""
    wanted = frozenset(keys)

    def keep(value: Any, table: Table) -> Any:
        if type(value) is not dict:
            return _leaf(value, table)
        return table.record({table.text(k): _leaf(v, table) for k, v in value.items() if k in wanted})
    return keep


def _visible_annotations(value: Any, table: Table) -> Any:
    """Annotations without kubectl's last-applied-configuration."""
    if type(value) is not dict:
        return _leaf(value, table)
    return table.record({table.text(k): _leaf(v, table) for k, v in value.items() if k != LAST_APPLIED})


def _first_of(*types: str, fields: Shape) -> Callable[[Any, Table], Any]:
    """A conditions list cut down to the first condition of each of `types` (the decoders read no other)."""
    def keep(value: Any, table: Table) -> Any:
        if type(value) is not list:
            return _leaf(value, table)
        seen: set[Any] = set()
        out = []
        for cond in value:
            kind = cond.get("type") if type(cond) is dict else None
            if kind in types and kind not in seen:
                seen.add(kind)
                out.append(shape(cond, fields, table))
        return table.seq(tuple(out))
    return keep


def _container_ports(value: Any, table: Table) -> Any:
    """A container's declared ports as their numbers (health.container reads nothing else)."""
    if type(value) is not list:
        return _leaf(value, table)
    numbers = (p.get("containerPort") if type(p) is dict else p for p in value)
    return table.seq(tuple([n for n in numbers if isinstance(n, int)]))


def _first_image(value: Any, table: Table) -> Any:
    """A ReplicaSet template's containers: the first one's image only (what a revision runs)."""
    if type(value) is not list or not value:
        return _leaf(value, table)
    first = value[0]
    return table.seq((shape(first, {"image": KEEP}, table) if type(first) is dict else _leaf(first, table),))


_ENDED_FIELDS: Shape = {"reason": KEEP, "exitCode": KEEP, "message": KEEP, "finishedAt": KEEP}


def _ended(value: Any, table: Table) -> Any:
    """A terminated state; one that says something the decoders do not read still counts as there."""
    out = shape(value, _ENDED_FIELDS, table)
    if type(value) is dict and value and not out:
        out = table.record({"exitCode": None})
    return out


META: Shape = {"name": KEEP, "namespace": KEEP, "resourceVersion": KEEP}
OWNERS: Shape = {"apiVersion": KEEP, "kind": KEEP, "name": KEEP, "uid": KEEP, "controller": KEEP}
PROBE: Shape = {"httpGet": {"path": KEEP, "port": KEEP}, "tcpSocket": {"port": KEEP}, "grpc": {"port": KEEP},
                "initialDelaySeconds": KEEP, "periodSeconds": KEEP, "timeoutSeconds": KEEP, "failureThreshold": KEEP}
_AMOUNTS = only("memory", GPU_RESOURCE)
TEMPLATE_CONTAINER: Shape = {
    "name": KEEP, "image": KEEP, "resources": {"limits": _AMOUNTS, "requests": _AMOUNTS},
    "ports": _container_ports, "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE}
_CONDITION: Shape = {"type": KEEP, "status": KEEP, "reason": KEEP, "message": KEEP}

WORKLOAD: Shape = {
    "metadata": {**META, "uid": KEEP, "generation": KEEP, "labels": KEEP, "annotations": _visible_annotations},
    "spec": {"replicas": KEEP, "template": {
        "metadata": {"labels": KEEP, "annotations": only(MIN_LINK_WIDTH, COHERENT, TENSOR_PARALLEL)},
        "spec": {"containers": TEMPLATE_CONTAINER}}},
    "status": {"observedGeneration": KEEP, "replicas": KEEP, "updatedReplicas": KEEP, "availableReplicas": KEEP,
               "readyReplicas": KEEP,
               "conditions": _first_of("Progressing", fields={**_CONDITION, "lastUpdateTime": KEEP,
                                                               "lastTransitionTime": KEEP})},
}
REPLICA_SET: Shape = {
    "metadata": {**META, "creationTimestamp": KEEP, "ownerReferences": OWNERS,
                 "annotations": only(REVISION, CHANGE_CAUSE)},
    "spec": {"template": {"spec": {"containers": _first_image}}},
}
_GPUS = only(GPU_RESOURCE)
POD: Shape = {
    "metadata": {**META, "creationTimestamp": KEEP, "deletionTimestamp": KEEP, "ownerReferences": OWNERS,
                 "labels": KEEP, "annotations": _visible_annotations},
    "spec": {"nodeName": KEEP, "containers": {"name": KEEP, "resources": {"limits": _GPUS, "requests": _GPUS}}},
    "status": {
        "phase": KEEP, "reason": KEEP, "message": KEEP, "startTime": KEEP,
        "conditions": _first_of("Ready", "PodScheduled", fields=_CONDITION),
        "containerStatuses": {
            "name": KEEP, "restartCount": KEEP,
            "state": {"waiting": {"reason": KEEP, "message": KEEP}, "running": {"startedAt": KEEP}, "terminated": _ended},
            "lastState": {"terminated": _ended}},
        "initContainerStatuses": {"state": {"waiting": {"reason": KEEP, "message": KEEP}}},
    },
}
NODE: Shape = {
    "metadata": {**META, "labels": KEEP},
    "spec": {"unschedulable": KEEP},
    "status": {"allocatable": _GPUS, "capacity": _GPUS, "nodeInfo": {"bootID": KEEP},
               "conditions": {**_CONDITION, "lastTransitionTime": KEEP}},
}
_INVOLVED: Shape = {"namespace": KEEP, "kind": KEEP, "name": KEEP}
EVENT: Shape = {
    "metadata": {**META, "creationTimestamp": KEEP},
    "involvedObject": _INVOLVED, "regarding": _INVOLVED, "lastTimestamp": KEEP, "eventTime": KEEP,
    "firstTimestamp": KEEP, "reason": KEEP, "type": KEEP, "message": KEEP, "note": KEEP,
}
_TARGET: Shape = {"name": KEEP, "deployment": KEEP, "kind": KEEP}
HPA: Shape = {
    "metadata": {**META, "ownerReferences": OWNERS},
    "spec": {"scaleTargetRef": _TARGET, "minReplicas": KEEP, "maxReplicas": KEEP},
    "status": {"currentReplicas": KEEP, "desiredReplicas": KEEP, "conditions": _CONDITION},
}
SCALED_OBJECT: Shape = {
    "metadata": {**META, "annotations": only(PAUSED_REPLICAS)},
    "spec": {"scaleTargetRef": _TARGET, "minReplicaCount": KEEP, "maxReplicaCount": KEEP,
             "replicas": {"min": KEEP, "max": KEEP}, "hosts": KEEP},
    "status": {"conditions": _CONDITION},
}
DISRUPTION_BUDGET: Shape = {
    "metadata": META,
    "spec": {"selector": {"matchLabels": KEEP}, "minAvailable": KEEP, "maxUnavailable": KEEP},
    "status": {"disruptionsAllowed": KEEP, "currentHealthy": KEEP, "desiredHealthy": KEEP, "expectedPods": KEEP},
}
VOLUME_CLAIM: Shape = {
    "metadata": {**META, "creationTimestamp": KEEP},
    "spec": {"resources": {"requests": only("storage")}, "storageClassName": KEEP, "volumeName": KEEP},
    "status": {"phase": KEEP},
}
SERVICE: Shape = {
    "metadata": META,
    "spec": {"type": KEEP, "selector": KEEP, "clusterIP": KEEP,
             "ports": {"name": KEEP, "port": KEEP, "targetPort": KEEP, "protocol": KEEP}},
}
ENDPOINT_SLICE: Shape = {
    "metadata": {**META, "labels": only(SERVICE_NAME)},
    "endpoints": {"conditions": {"ready": KEEP}},
}
_DEVICE_FACTS: Shape = {"attributes": KEEP, "capacity": KEEP}
RESOURCE_SLICE: Shape = {
    "metadata": META,
    "spec": {"nodeName": KEEP, "driver": KEEP, "pool": {"name": KEEP},
             "devices": {"name": KEEP, **_DEVICE_FACTS, "basic": _DEVICE_FACTS}},
}
RESOURCE_CLAIM: Shape = {
    "metadata": META,
    "status": {"allocation": {"devices": {"results": {"driver": KEEP, "pool": KEEP, "device": KEEP}}},
               "reservedFor": {"resource": KEEP, "name": KEEP}},
}

# By the kind's name in the adapter's list calls ('pods', or 'pods in NAMESPACE' when restricted).
SHAPES: dict[str, Shape] = {
    "deployments": WORKLOAD, "statefulsets": WORKLOAD, "replicasets": REPLICA_SET, "pods": POD, "nodes": NODE,
    "events": EVENT, "horizontalpodautoscalers": HPA, "scaledobjects.keda.sh": SCALED_OBJECT,
    "httpscaledobjects.http.keda.sh": SCALED_OBJECT, "poddisruptionbudgets": DISRUPTION_BUDGET,
    "persistentvolumeclaims": VOLUME_CLAIM, "services": SERVICE, "endpointslices": ENDPOINT_SLICE,
    "resourceslices": RESOURCE_SLICE, "resourceclaims": RESOURCE_CLAIM,
}
NAMES_ONLY = frozenset({"configmaps", "secrets"})

Decode = Callable[..., Any]


def kind_of(what: str) -> str:
    return what.split(" in ", 1)[0]


def decode_shaped(body: bytes | str, spec: Shape, table: Table | None = None) -> Any:
    """One list page ({'metadata', 'items'}) or one watch event ({'type', 'object'}) with each object shaped.

    A list keeps its resourceVersion and continue token; a watch ERROR keeps its Status whole."""
    table = table if table is not None else Table()
    doc = json.loads(body)
    if not isinstance(doc, dict):
        return doc
    if "items" in doc:
        meta = doc.get("metadata") or {}
        return {"metadata": {k: meta[k] for k in ("resourceVersion", "continue") if k in meta},
                "items": [shape(item, spec, table) for item in doc.get("items") or ()]}
    obj = doc.get("object")
    if doc.get("type") in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") and isinstance(obj, dict):
        return {"type": doc["type"], "object": shape(obj, spec, table)}
    return doc


def decoder_for(what: str) -> Decode:
    """The decoder of one kind: `decode(body, table=None)` (see `decode_shaped`). KeyError for a kind without one."""
    kind = kind_of(what)
    if kind in NAMES_ONLY:
        return lambda body, table=None: decode_names(body)
    spec = SHAPES[kind]
    return lambda body, table=None: decode_shaped(body, spec, table)


__all__ = ["KEEP", "NAMES_ONLY", "SHAPES", "Table", "decode_shaped", "decoder_for", "kind_of", "shape"]
