"""Autoscalers in the simulator: HPAs and KEDA ScaledObjects / HTTPScaledObjects that own replicas.

What it is for: each tick, an autoscaler sets its workload's `replicas` from the load
(`ceil(rate / target_rps)` between its bounds), the way the HPA controller and KEDA's
operator do: whatever else wrote `replicas` is overwritten on the next tick, so an agent that
scales an owned workload fights it and loses. KEDA objects honour the
`autoscaling.keda.sh/paused-replicas` annotation (replicas held at that count) and, with
`min_replicas: 0`, scale to zero after `cooldown` without requests and back to one on the
first request (requests waiting count as load, as the HTTP add-on's interceptor counts them).
Declared failures keep it from acting and show in its conditions as the real controllers
report them.

What it must not do: read the system clock, or change anything but the target's replicas.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsagent.cluster.sim.scenario import AutoscalerDecl
from opsagent.model import Autoscaler, WorkloadRef

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster

# (reason, message) of the failing condition, as the HPA controller and KEDA write them.
FAILURES: dict[str, tuple[str, str]] = {
    "missing_metrics": ("FailedGetResourceMetric",
                        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
                        "metrics for resource cpu: no metrics returned from resource metrics API"),
    "no_resource_requests": ("FailedGetResourceMetric",
                             "the HPA was unable to compute the replica count: failed to get cpu utilization: "
                             "missing request for cpu in container server"),
    "cannot_scale": ("FailedGetScale",
                     "the HPA controller was unable to get the target's current scale: deployments/scale is forbidden"),
}


@dataclass(slots=True)
class SimAutoscaler:
    kind: str
    namespace: str
    name: str
    target: WorkloadRef
    min_replicas: int
    max_replicas: int
    target_rps: float
    cooldown: timedelta
    failure: str | None
    paused: int | None
    hosts: tuple[str, ...]
    desired: int | None = None
    wanted: int | None = None  # what the load asks for, before the bounds

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def from_decl(decl: AutoscalerDecl) -> SimAutoscaler:
    ref = WorkloadRef.parse(decl.workload)
    return SimAutoscaler(kind=decl.kind, namespace=ref.namespace, name=decl.name or ref.name, target=ref,
                         min_replicas=decl.min_replicas, max_replicas=decl.max_replicas, target_rps=decl.target_rps,
                         cooldown=decl.cooldown, failure=decl.failure, paused=decl.paused_replicas, hosts=decl.hosts)


def _wanted(sim: "SimCluster", a: SimAutoscaler, now: datetime) -> int:
    w = sim.workloads[str(a.target)]
    load = math.ceil(w.rps / a.target_rps) if w.rps > 0 else 0
    if a.kind != "HorizontalPodAutoscaler":
        recent = w.last_request_at is not None and now - w.last_request_at < a.cooldown
        if load == 0 and (w.pending_requests or (recent and w.replicas > 0)):
            load = 1  # KEDA activates on any request and keeps one replica until the cooldown passes
    return load


def step(sim: "SimCluster", now: datetime) -> None:
    """Let every autoscaler set its target's replicas for this tick."""
    from opsagent.cluster.sim import lifecycle

    for a in sim.autoscalers:
        w = sim.workloads.get(str(a.target))
        if w is None:
            continue
        if a.paused is not None:
            want = a.paused
        elif a.failure is not None:
            a.desired = a.wanted = None
            continue
        else:
            a.wanted = _wanted(sim, a, now)
            want = max(a.min_replicas, min(a.max_replicas, a.wanted))
        a.desired = want
        if w.replicas != want:
            before = w.replicas
            w.replicas = want
            sim.emit(now, a.namespace, a.kind, a.name, "SuccessfulRescale",
                     f"New size: {want}; reason: {'paused' if a.paused is not None else 'load'} (was {before})")
            lifecycle.reconcile(sim, w, now)


def records(sim: "SimCluster", namespaces: Collection[str] | None = None) -> tuple[Autoscaler, ...]:
    """The autoscalers as the view shows them; only those in `namespaces` when given."""
    out = []
    for a in sim.autoscalers:
        if namespaces is not None and a.namespace not in namespaces:
            continue
        w = sim.workloads.get(str(a.target))
        reason = message = None
        able = active = True
        if a.failure is not None:
            reason, message = FAILURES[a.failure]
            if a.failure == "cannot_scale":
                able = False
            else:
                active = False
        limited = a.wanted is not None and a.wanted > a.max_replicas
        if limited and reason is None:
            reason, message = "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        is_hpa = a.kind == "HorizontalPodAutoscaler"
        out.append(Autoscaler(
            kind=a.kind, namespace=a.namespace, name=a.name, target=a.target,  # type: ignore[arg-type]
            min_replicas=a.min_replicas, max_replicas=a.max_replicas,
            current_replicas=w.replicas if w is not None else None, desired_replicas=a.desired,
            paused_replicas=a.paused, able_to_scale=able, scaling_active=active if is_hpa else None,
            scaling_limited=limited, reason=reason, message=message, hosts=a.hosts))
    return tuple(out)


def find(sim: "SimCluster", kind: str, namespace: str, name: str) -> SimAutoscaler | None:
    return next((a for a in sim.autoscalers if (a.kind, a.namespace, a.name) == (kind, namespace, name)), None)
