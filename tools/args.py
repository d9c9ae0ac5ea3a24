"""Argument building blocks shared by the tool families, and small lookups.

Field types here carry the bounds and name patterns a model reads in each
tool's JSON schema (Kubernetes DNS names, replica bounds). The lookups turn a
snapshot into the short, typed summaries tools return. Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from opsagent.cluster.port import NotFound
from opsagent.model import Pod, Snapshot, Workload, WorkloadRef

from tools.base import Target, ToolInput

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

Namespace = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Kubernetes namespace, e.g. 'inference'."),
]
Name = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Workload name inside the namespace, e.g. 'llm'."),
]
NodeName = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Node name, e.g. 'gpu-node-1'."),
]
Replicas = Annotated[int, Field(ge=0, le=1000, description="Number of replicas, 0..1000.")]

MAX_ITEMS = 200


class WorkloadArgs(ToolInput):
    """Arguments naming one workload: `namespace` + `name`."""

    namespace: Namespace
    name: Name

    def target(self) -> Target:
        return Target(namespace=self.namespace, workload=WorkloadRef(namespace=self.namespace, name=self.name))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def find_workload(snapshot: Snapshot, namespace: str, name: str) -> Workload:
    """The workload, or `NotFound` naming the workloads that do exist there."""
    workload = snapshot.workload(f"{namespace}/{name}")
    if workload is not None:
        return workload
    known = sorted(w.ref.name for w in snapshot.workloads if w.ref.namespace == namespace)
    hint = f"; workloads in {namespace}: {', '.join(known[:20])}" if known else f"; namespace {namespace!r} has no workloads"
    raise NotFound(f"no workload {namespace}/{name}{hint}")


def seconds_since(then: datetime | None, now: datetime) -> float | None:
    if then is None:
        return None
    return round(max(0.0, (now - then).total_seconds()), 1)


def is_idle(workload: Workload) -> bool:
    """Holds GPUs while nothing uses them: no requests, or GPUs nearly unused."""
    if workload.replicas == 0 or workload.gpus_per_replica == 0:
        return False
    if workload.request_rate is not None and workload.request_rate == 0:
        return True
    return workload.gpu_utilization is not None and workload.gpu_utilization < 5.0


def workload_summary(workload: Workload, snapshot: Snapshot) -> dict[str, Any]:
    return {
        "workload": workload.key,
        "kind": workload.ref.kind,
        "replicas": workload.replicas,
        "ready_replicas": workload.ready_replicas,
        "gpus_per_replica": workload.gpus_per_replica,
        "gpus_held": snapshot.gpus_held_by(workload.ref),
        "gpu_utilization": workload.gpu_utilization,
        "request_rate": workload.request_rate,
        "idle_seconds": seconds_since(workload.last_request_at, snapshot.time),
        "idle": is_idle(workload),
        "image": workload.image,
        "revision": workload.revision,
        "rollout": workload.rollout.status,
    }


def pod_summary(pod: Pod) -> dict[str, Any]:
    return {
        "pod": pod.key,
        "workload": str(pod.workload) if pod.workload else None,
        "phase": pod.phase,
        "ready": pod.ready,
        "reason": pod.reason,
        "node": pod.node,
        "gpu_ids": list(pod.gpu_ids),
        "restarts": pod.restarts,
        "revision": pod.revision,
    }


def capped(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Wrap a list for a result, keeping it small: at most MAX_ITEMS, says if cut."""
    data: dict[str, Any] = {key: items[:MAX_ITEMS], "count": len(items)}
    if len(items) > MAX_ITEMS:
        data["truncated"] = True
    return data
