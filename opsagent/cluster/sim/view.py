"""What the simulator shows: its mutable state copied into frozen domain types, and its figures.

Snapshots are built without re-validation (`_make`, a leaner `model_construct`
that takes every field): the engine's state is already consistent, and a
10,000-workload snapshot has to be cheap. The cyclic garbage collector is
paused while the ~50,000 small objects are made, which keeps the cost linear.
This module reads engine state and never changes it.
"""

from __future__ import annotations

import gc
from datetime import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from opsagent.cluster.sim import health
from opsagent.model import (
    Event,
    GpuDevice,
    Job,
    Node,
    NodeCondition,
    Pod,
    Revision,
    RolloutState,
    Snapshot,
    Workload,
    WorkloadRef,
)

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster


class SimStats(BaseModel):
    """Cumulative figures of a simulation run. Also readable as `stats["gpu_hours_idle"]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    gpu_total: int
    gpus_allocated: int = Field(description="held now, by pods or jobs")
    gpu_hours_allocated: float
    gpu_hours_busy: float = Field(description="utilisation-weighted")
    gpu_hours_idle: float = Field(description="held by a workload that had no requests")
    jobs_started: int
    jobs_finished: int
    jobs_waiting: int
    jobs_running: int
    pods_pending: int
    pending_requests: int = Field(description="requests waiting now for a workload with nothing ready")
    requests_total: int
    samples: tuple[dict[str, Any], ...] = Field(default=(), description="hourly: time, gpus_allocated, gpus_busy, ...")

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def build_stats(sim: "SimCluster") -> SimStats:
    acc = sim.acc
    return SimStats(
        time=sim.now, gpu_total=sum(len(n.gpus) for n in sim.nodes), gpus_allocated=sim.allocated,
        gpu_hours_allocated=round(acc["gpu_hours_allocated"], 4), gpu_hours_busy=round(acc["gpu_hours_busy"], 4),
        gpu_hours_idle=round(acc["gpu_hours_idle"], 4), jobs_started=acc["jobs_started"],
        jobs_finished=acc["jobs_finished"], jobs_waiting=sum(1 for j in sim.jobs if j.state == "queued"),
        jobs_running=sum(1 for j in sim.jobs if j.state == "running"),
        pods_pending=sum(1 for p in sim.pods.values() if p.phase == "Pending"),
        pending_requests=sum(w.pending_requests for w in sim.workloads.values()),
        requests_total=acc["requests_total"], samples=tuple(dict(s) for s in sim.samples),
    )


_set_attr = object.__setattr__
_FIELDS: dict[type, set[str]] = {}


def _make(cls: type[BaseModel], **values: Any) -> Any:
    """An instance from already-valid values for *every* field, skipping validation."""
    obj = cls.__new__(cls)
    _set_attr(obj, "__dict__", values)
    _set_attr(obj, "__pydantic_fields_set__", _FIELDS.get(cls) or _FIELDS.setdefault(cls, set(cls.model_fields)))
    _set_attr(obj, "__pydantic_extra__", None)
    _set_attr(obj, "__pydantic_private__", None)
    return obj


def events(sim: "SimCluster", since: datetime) -> list[Event]:
    return [
        _make(Event, time=t, namespace=ns, kind=kind, name=name, type=type_, reason=reason, message=message)
        for (t, ns, kind, name, type_, reason, message) in sim.events
        if t >= since
    ]


def _message(own: str | None, planted: str | None) -> str | None:
    if planted is None:
        return own
    return f"{own}; {planted}" if own else planted


def build_snapshot(sim: "SimCluster") -> Snapshot:
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build(sim)
    finally:
        if paused:
            gc.enable()


def _build(sim: "SimCluster") -> Snapshot:
    now = sim.now
    nodes = tuple(_node(n) for n in sim.nodes)
    workloads = []
    pods: list[Pod] = []
    for w in sim.workloads.values():
        workloads.append(_workload(w, pods))
    jobs = tuple(
        _make(Job, namespace=j.namespace, name=j.name, gpus=j.gpus, state=j.state, submitted_at=j.submitted_at,
                            started_at=j.started_at, finished_at=j.finished_at, duration_seconds=float(j.duration),
                            node=j.node, gpu_ids=tuple(g.id for g in j.devices))
        for j in sim.jobs
    )
    from opsagent.cluster.sim import autoscaling, disruption, needs
    from opsagent.cluster.sim.engine import EVENT_WINDOW

    return Snapshot.model_construct(
        time=now, workloads=tuple(workloads), pods=tuple(pods), nodes=nodes, jobs=jobs,
        events=tuple(events(sim, now - EVENT_WINDOW)), source="sim", notes=(),
        autoscalers=autoscaling.records(sim), disruption_budgets=disruption.budgets(sim),
        config_objects=sim.needs.config_objects(), volume_claims=sim.needs.volume_claims(),
        services=needs.services(sim),
    )


def _node(n: Any) -> Node:
    return _make(Node,
        name=n.name, ready=n.ready, cordoned=n.cordoned, labels=dict(n.labels),
        boot_id=n.boot_id, ready_transition_at=n.ready_transition_at,
        conditions=tuple(_make(NodeCondition, type=kind, reason=reason, message=message, since=since)
                         for kind, (reason, message, since) in sorted(n.conditions.items())),
        gpus=tuple(
            _make(GpuDevice,
                id=g.id, node=g.node, model=g.model, memory_mib=g.memory_mib, pcie_link_width=g.link,
                switch_group=g.switch, numa_node=g.numa, holder=g.holder, held_since=g.held_since,
                utilization=float(g.utilization),
            )
            for g in n.gpus
        ),
    )


def _workload(w: Any, pods: list[Pod]) -> Workload:
    """One workload's view; its pods are appended to `pods`."""
    ref = w.ref
    ready = 0
    held = 0
    util_sum = 0.0
    factor = 1.0
    for p in w.pods:
        ready += p.ready
        held += len(p.gpus)
        util_sum += sum(g.utilization for g in p.gpus)
        if p.gpus and w.tensor_parallel:
            factor = min(factor, p.factor)
        pods.append(_make(Pod,
            namespace=p.namespace, name=p.name, workload=ref, phase=p.phase, reason=p.reason,
            message=_message(p.message, w.planted_message), node=p.node, gpu_ids=tuple(g.id for g in p.gpus), restarts=p.restarts,
            ready=p.ready, revision=p.revision, started_at=p.started_at, labels=dict(p.labels), annotations={},
            terminations=health.terminations(p), running_since=p.running_since,
        ))
    return _make(Workload,
        ref=ref, replicas=w.replicas, ready_replicas=ready, revision=w.revision, image=w.image,
        gpus_per_replica=w.gpus, memory_mib=w.memory_mib, gpu_requirement=w.requirement,
        tensor_parallel=w.tensor_parallel, labels=dict(w.labels), annotations=dict(w.annotations),
        last_request_at=w.last_request_at, request_rate=float(w.rps), pending_requests=w.pending_requests,
        gpu_utilization=round(util_sum / held, 1) if held else (0.0 if w.gpus else None),
        throughput_factor=float(factor), low_gpu_since=None,
        rollout=_make(RolloutState, status=w.rollout_status, reason=w.rollout_reason,
                                             message=w.rollout_message, revision=w.revision, since=w.rollout_since),
        history=tuple(_make(Revision, revision=r.number, image=r.image, created_at=r.created_at,
                                               change_cause=r.change_cause) for r in w.revisions),
        containers=(health.container(w),),
    )


def build_narrow(sim: "SimCluster", refs: Sequence[WorkloadRef | str]) -> Snapshot:
    """The snapshot `build_snapshot` makes, narrowed to `refs` (see `ReadsWorkloads`): the workloads, their pods,
    the nodes those run on, and the events, autoscalers and budgets of their namespaces; point lookups in the
    engine's state, no pass over the workloads."""
    from opsagent.cluster.sim import autoscaling, disruption
    from opsagent.cluster.sim.engine import EVENT_WINDOW

    found = [w for w in (sim.workloads.get(str(ref)) for ref in dict.fromkeys(refs)) if w is not None]
    namespaces = {w.ref.namespace for w in found}
    workloads: list[Workload] = []
    pods: list[Pod] = []
    for w in found:
        workloads.append(_workload(w, pods))
    hosts = {p.node for p in pods if p.node}
    nodes = tuple(_node(sim.node(name)) for name in sorted(hosts, key=lambda name: sim.node(name).index))
    scalers = autoscaling.records(sim, namespaces)
    budgets = disruption.budgets(sim, namespaces)
    seen = tuple(e for e in events(sim, sim.now - EVENT_WINDOW) if e.namespace in namespaces)
    return Snapshot.model_construct(
        time=sim.now, workloads=tuple(workloads), pods=tuple(pods), nodes=nodes, jobs=(), events=seen, source="sim",
        notes=(), autoscalers=scalers, disruption_budgets=budgets,
    )
