"""Read tools: look at the cluster, change nothing.

Each tool reads one snapshot through `ctx.observe()` (or findings through
`ctx.findings()`) and returns a small typed summary a model can act on. They
must never call a write method of the port; the gate hands them a read-only
view of the cluster to make sure.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import Field

from opsagent.cluster.port import NotFound
from opsagent.model import FindingKind, GpuRequirement, PodPhase, ToolResult

from tools.args import (
    Name,
    Namespace,
    NodeName,
    WorkloadArgs,
    capped,
    find_workload,
    is_idle,
    pod_summary,
    seconds_since,
    workload_summary,
)
from tools.base import Outcome, ResultData, Target, Tool, ToolContext, ToolInput
from tools.show import MAX_ROWS, ago, given, more, pct, phrased, plain, quoted


class ListWorkloadsIn(ToolInput):
    namespace: Namespace | None = Field(default=None, description="Only this namespace; omit for all.")
    only_gpu: bool = Field(default=False, description="Only workloads that request GPUs.")
    only_idle: bool = Field(default=False, description="Only workloads holding GPUs with no traffic or near-zero GPU use.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


def list_workloads(ctx: ToolContext, args: ListWorkloadsIn) -> Outcome:
    snap = ctx.observe()
    rows = []
    for w in snap.workloads:
        if args.namespace and w.ref.namespace != args.namespace:
            continue
        if args.only_gpu and w.gpus_per_replica == 0:
            continue
        if args.only_idle and not is_idle(w):
            continue
        rows.append(workload_summary(w, snap))
    if not rows:
        return Outcome(status="no_data", message="no workloads match", data={"workloads": [], "count": 0})
    return Outcome(message=f"{len(rows)} workload(s)", data=capped(rows, "workloads"))


class GetWorkloadIn(WorkloadArgs):
    pass


# kubectl's copy of the whole manifest a person applied, env values included: never handed on.
ANNOTATIONS_LEFT_OUT = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
ANNOTATION_VALUE_LIMIT = 256  # characters of one annotation value get_workload returns
MAX_ANNOTATIONS = 64


def shown_annotations(annotations: dict[str, str]) -> tuple[dict[str, str], int]:
    """The annotations `get_workload` returns (the first `MAX_ANNOTATIONS` by key, each value cut to
    `ANNOTATION_VALUE_LIMIT` characters, saying so), and how many others it leaves out."""
    kept = sorted((k, v) for k, v in annotations.items() if k not in ANNOTATIONS_LEFT_OUT)
    out = {}
    for key, value in kept[:MAX_ANNOTATIONS]:
        text = str(value)
        out[key] = text if len(text) <= ANNOTATION_VALUE_LIMIT else f"{text[:ANNOTATION_VALUE_LIMIT]}… (cut, {len(text)} chars)"
    return out, len(kept) - len(out)


def get_workload(ctx: ToolContext, args: GetWorkloadIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    data = workload_summary(w, snap)
    annotations, left_out = shown_annotations(w.annotations)
    data.update(
        memory_mib=w.memory_mib,
        gpu_requirement=w.gpu_requirement.model_dump(),
        tensor_parallel=w.tensor_parallel,
        throughput_factor=w.throughput_factor,
        labels=dict(w.labels),
        annotations=annotations,
        rollout_reason=w.rollout.reason,
        pods=[pod_summary(p) for p in snap.pods_of(w.ref)][:50],
    )
    if left_out:
        data["annotations_left_out"] = left_out
    owner = snap.autoscaler_of(w.ref)
    if owner is not None:  # its replicas are the autoscaler's: say so, with what it reports
        data["autoscaler"] = {"kind": owner.kind, "name": owner.key, "min_replicas": owner.min_replicas,
                              "max_replicas": owner.max_replicas, "paused_replicas": owner.paused_replicas,
                              "able_to_scale": owner.able_to_scale, "scaling_active": owner.scaling_active,
                              "reason": owner.reason, "message": (owner.message or "")[:300] or None}
    budgets = {b.key: b for p in snap.pods_of(w.ref) for b in snap.budgets_for(p)}
    if budgets:
        data["disruption_budgets"] = [{"name": b.key, "disruptions_allowed": b.disruptions_allowed,
                                       "current_healthy": b.current_healthy, "desired_healthy": b.desired_healthy}
                                      for b in budgets.values()]
    why = ctx.explain_not_ready(snap, w) if w.ready_replicas < w.replicas else None
    if why is not None:  # why its pods are not ready: still loading, a broken probe, out of memory, ...
        data["not_ready"] = why
    scaled = f"; replicas owned by {owner.label}" if owner is not None else ""
    return Outcome(message=f"{w.key}: {w.ready_replicas}/{w.replicas} ready{scaled}", data=data)


class ListPodsIn(ToolInput):
    namespace: Namespace | None = Field(default=None, description="Only this namespace; omit for all.")
    workload: Name | None = Field(default=None, description="Only pods of this workload (name within `namespace`).")
    phase: PodPhase | None = Field(default=None, description="Only pods in this phase.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


def list_pods(ctx: ToolContext, args: ListPodsIn) -> Outcome:
    snap = ctx.observe()
    rows = []
    for p in snap.pods:
        if args.namespace and p.namespace != args.namespace:
            continue
        if args.workload and (p.workload is None or p.workload.name != args.workload):
            continue
        if args.phase and p.phase != args.phase:
            continue
        rows.append(pod_summary(p))
    if not rows:
        return Outcome(status="no_data", message="no pods match", data={"pods": [], "count": 0})
    return Outcome(message=f"{len(rows)} pod(s)", data=capped(rows, "pods"))


class DescribePodIn(ToolInput):
    namespace: Namespace
    name: Name = Field(description="Pod name.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


def describe_pod(ctx: ToolContext, args: DescribePodIn) -> Outcome:
    snap = ctx.observe()
    pod = snap.pod(args.namespace, args.name)
    if pod is None:
        raise NotFound(f"no pod {args.namespace}/{args.name}")
    data = pod_summary(pod)
    data.update(
        message=pod.message,
        started_at=pod.started_at.isoformat() if pod.started_at else None,
        running_since=pod.running_since.isoformat() if pod.running_since else None,
        last_terminations=[  # how each container last ended; its message is the container's text, data only
            {"container": t.container, "reason": t.reason, "exit_code": t.exit_code, "message": (t.message or "")[:300] or None,
             "finished_at": t.finished_at.isoformat() if t.finished_at else None} for t in pod.terminations],
        events=[
            {"time": e.time.isoformat(), "type": e.type, "reason": e.reason, "message": e.message[:300]}
            for e in snap.events_for(pod.namespace, pod.name)[-20:]
        ],
    )
    why = f" ({pod.reason})" if pod.reason else ""
    return Outcome(message=f"{pod.key}: {pod.phase}{why}", data=data)


class GpuInventoryIn(ToolInput):
    node: NodeName | None = Field(default=None, description="Only GPUs on this node.")
    only_free: bool = Field(default=False, description="Only GPUs no pod holds.")

    def target(self) -> Target:
        return Target(node=self.node)


def gpu_inventory(ctx: ToolContext, args: GpuInventoryIn) -> Outcome:
    snap = ctx.observe()
    now = snap.time
    holders = {}
    for pod in snap.pods:
        for gid in pod.gpu_ids:
            holders[gid] = pod
    devices: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for node in snap.nodes:
        if args.node and node.name != args.node:
            continue
        for g in node.gpus:
            if args.only_free and g.holder:
                continue
            holder = holders.get(g.id)
            workload = snap.workload(holder.workload) if holder is not None and holder.workload else None
            idle_for = None
            if g.holder and g.utilization < 5.0:
                idle_for = seconds_since(workload.last_request_at if workload else None, now)
                if idle_for is None:
                    idle_for = seconds_since(g.held_since, now)
            devices.append({
                "id": g.id, "node": g.node, "model": g.model, "memory_mib": g.memory_mib,
                "link_width": g.pcie_link_width, "switch_group": g.switch_group, "numa_node": g.numa_node,
                "holder": g.holder, "workload": str(holder.workload) if holder is not None and holder.workload else None,
                "held_seconds": seconds_since(g.held_since, now) if g.holder else None,
                "utilization": g.utilization, "idle_seconds": idle_for,
                "node_cordoned": node.cordoned,
            })
            grp = groups.setdefault(f"{g.node}/{g.switch_group}", {"group": f"{g.node}/{g.switch_group}", "gpus": 0, "free": 0, "min_link_width": 32})
            grp["gpus"] += 1
            grp["free"] += 0 if g.holder else 1
            grp["min_link_width"] = min(grp["min_link_width"], g.pcie_link_width)
    if not devices:
        return Outcome(status="no_data", message="no GPUs match", data={"devices": [], "count": 0})
    data = capped(devices, "devices")
    data["switch_groups"] = list(groups.values())
    held = sum(1 for d in devices if d["holder"])
    data["held"] = held
    data["free"] = len(devices) - held
    return Outcome(message=f"{len(devices)} GPU(s), {held} held, {len(devices) - held} free", data=data)


class ListFindingsIn(ToolInput):
    kind: FindingKind | None = Field(default=None, description="Only findings of this kind.")
    subject: str | None = Field(default=None, max_length=300, description="Only findings about this subject (namespace/name, node, or 'cluster').")


def list_findings(ctx: ToolContext, args: ListFindingsIn) -> Outcome:
    rows = [
        {"id": f.id, "kind": f.kind, "subject": f.subject, "severity": f.severity, "summary": f.summary}
        for f in ctx.findings()
        if (args.kind is None or f.kind == args.kind) and (args.subject is None or f.subject == args.subject)
    ]
    if not rows:
        return Outcome(status="no_data", message="no findings", data={"findings": [], "count": 0})
    return Outcome(message=f"{len(rows)} finding(s)", data=capped(rows, "findings"))


class GetRolloutHistoryIn(WorkloadArgs):
    pass


def get_rollout_history(ctx: ToolContext, args: GetRolloutHistoryIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    revisions = [
        {"revision": r.revision, "image": r.image, "created_at": r.created_at.isoformat() if r.created_at else None,
         "change_cause": r.change_cause, "current": r.revision == w.revision}
        for r in w.history
    ][-20:]
    data = {
        "workload": w.key, "revision": w.revision, "image": w.image,
        "rollout": w.rollout.status, "reason": w.rollout.reason, "message": w.rollout.message,
        "revisions": revisions,
    }
    return Outcome(message=f"{w.key}: revision {w.revision}, rollout {w.rollout.status}", data=data)


class GetJobIn(ToolInput):
    namespace: Namespace
    name: Name = Field(description="GPU job name inside the namespace, e.g. 'finetune-7'.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


def get_job(ctx: ToolContext, args: GetJobIn) -> Outcome:
    """A GPU job and, while it is queued, what keeps it from starting."""
    snap = ctx.observe()
    key = f"{args.namespace}/{args.name}"
    job = next((j for j in snap.jobs if j.key == key), None)
    if job is None:
        known = sorted(j.name for j in snap.jobs if j.namespace == args.namespace)
        hint = f"; jobs in {args.namespace}: {', '.join(known[:20])}" if known else f"; namespace {args.namespace!r} has no GPU jobs"
        raise NotFound(f"no job {key}{hint}")
    now = snap.time
    data = {
        "job": key, "state": job.state, "gpus_wanted": job.gpus,
        "submitted_at": job.submitted_at.isoformat() if job.submitted_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "node": job.node, "gpu_ids": list(job.gpu_ids),
    }
    if job.state != "queued":
        where = f" on {job.node}" if job.node else ""
        return Outcome(message=f"{key}: {job.state}{where}", data=data)
    waited = seconds_since(job.submitted_at, now)
    free_by_node = snap.free_gpus_by_node()
    widest = max(free_by_node.values(), default=0)
    waiting = next((f for f in ctx.findings() if f.kind == "jobs_waiting" and key in f.details.get("jobs", ())), None)
    holders = list(waiting.details.get("idle_holders", ())) if waiting is not None else []
    data.update(
        waited_seconds=waited,
        free_gpus_by_node=free_by_node,
        most_free_on_one_node=widest,
        fits_now=widest >= job.gpus,
        idle_holders=holders,
        finding=waiting.id if waiting is not None else None,
    )
    if widest >= job.gpus:
        why = f"{widest} free GPU(s) on one node are enough; it should start at the next scheduling pass"
    else:
        why = f"wants {job.gpus} GPU(s) on one node, at most {widest} free on any node"
        if holders:
            why += "; idle holders: " + ", ".join(f"{h['namespace']}/{h['name']} ({h['gpus_held']} GPU(s))" for h in holders)
    minutes = f", waited {waited / 60:.0f} min" if waited is not None else ""
    return Outcome(message=f"{key}: queued{minutes}; {why}", data=data)


RETURNS: dict[str, str] = {
    'list_workloads': '`workloads` (workload, replicas, ready_replicas, gpus_held, gpu_utilization, request_rate, idle_seconds, idle, image, revision, rollout), `count`.',
    'get_workload': 'The list_workloads fields plus memory_mib, gpu_requirement, tensor_parallel, labels, annotations (at most 64, each value cut to 256 characters; never kubectl last-applied-configuration), `annotations_left_out` when more, rollout_reason, `pods`, and `autoscaler` (kind, name, bounds, paused_replicas, conditions), `disruption_budgets` and `not_ready` (reading, says, pod, probe, proposal) when they apply.',
    'list_pods': '`pods` (pod, workload, phase, ready, reason, node, gpu_ids, restarts, revision), `count`.',
    'describe_pod': "The pod's fields plus message, started_at, running_since, `last_terminations` (container, reason such as OOMKilled, exit_code, message, finished_at) and its last 20 `events` (time, type, reason, message).",
    'gpu_inventory': '`devices` (id, node, model, memory_mib, link_width, switch_group, holder, workload, held_seconds, utilization, idle_seconds), `switch_groups`, `held`, `free`.',
    'list_findings': '`findings` (id, kind, subject, severity, summary), `count`.',
    'get_job': 'job, state, gpus_wanted, submitted_at, started_at, finished_at, node, gpu_ids; while queued also waited_seconds, free_gpus_by_node, most_free_on_one_node, fits_now, idle_holders (namespace, name, gpus_held, idle_minutes) and finding.',
    'get_rollout_history': 'revision, image, rollout, reason, message and `revisions` (revision, image, created_at, change_cause, current).',
}


class Listed(ResultData):
    """A list result's size: `count` of all that matched, `truncated` when only the first ones are listed."""

    count: int | None = None
    truncated: bool = False


class WorkloadRow(ResultData):
    workload: str
    kind: str
    replicas: int
    ready_replicas: int
    gpus_per_replica: int = 0
    gpus_held: int = 0
    gpu_utilization: float | None = None
    request_rate: float | None = None
    idle_seconds: float | None = None
    idle: bool = False
    image: str
    revision: int
    rollout: str | None = None


class WorkloadList(Listed):
    workloads: list[WorkloadRow] = []


class PodRow(ResultData):
    pod: str
    workload: str | None = None
    phase: str
    ready: bool = False
    reason: str | None = None
    node: str | None = None
    gpu_ids: list[str] = []
    restarts: int = 0
    revision: int | None = None


class PodList(Listed):
    pods: list[PodRow] = []


class Termination(ResultData):
    container: str
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None
    finished_at: str | None = None


class EventRow(ResultData):
    time: str
    type: str
    reason: str
    message: str


class PodDetail(PodRow):
    message: str | None = None
    started_at: str | None = None
    running_since: str | None = None
    last_terminations: list[Termination] = []
    events: list[EventRow] = []


class GpuRow(ResultData):
    id: str
    node: str
    model: str
    memory_mib: int
    link_width: int
    switch_group: str
    numa_node: int | None = None
    holder: str | None = None
    workload: str | None = None
    held_seconds: float | None = None
    utilization: float = 0.0
    idle_seconds: float | None = None
    node_cordoned: bool = False


class SwitchGroup(ResultData):
    group: str
    gpus: int
    free: int
    min_link_width: int


class GpuList(Listed):
    devices: list[GpuRow] = []
    switch_groups: list[SwitchGroup] = []
    held: int | None = None
    free: int | None = None


class FindingRow(ResultData):
    id: str
    kind: str
    subject: str
    severity: str
    summary: str


class FindingList(Listed):
    findings: list[FindingRow] = []


class NotReady(ResultData):
    reading: str
    says: str
    pod: str | None = None
    probe: str | None = None
    proposal: dict[str, Any] | None = None


class AutoscalerView(ResultData):
    kind: str
    name: str
    min_replicas: int | None = None
    max_replicas: int | None = None
    paused_replicas: int | None = None
    able_to_scale: bool | None = None
    scaling_active: bool | None = None
    reason: str | None = None
    message: str | None = None


class BudgetRow(ResultData):
    name: str
    disruptions_allowed: int
    current_healthy: int | None = None
    desired_healthy: int | None = None


class WorkloadDetail(WorkloadRow):
    memory_mib: int | None = None
    gpu_requirement: GpuRequirement | None = None
    tensor_parallel: bool = False
    throughput_factor: float | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    annotations_left_out: int | None = None
    rollout_reason: str | None = None
    pods: list[PodRow] = []
    autoscaler: AutoscalerView | None = None
    disruption_budgets: list[BudgetRow] | None = None
    not_ready: NotReady | None = None


class IdleHolder(ResultData):
    namespace: str
    name: str
    gpus_held: int | float
    idle_minutes: float


class JobDetail(ResultData):
    job: str
    state: str | None = None
    gpus_wanted: int | None = None
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    node: str | None = None
    gpu_ids: list[str] = []
    waited_seconds: float | None = None
    fits_now: bool | None = None
    free_gpus_by_node: dict[str, int] | None = None
    most_free_on_one_node: int | None = None
    idle_holders: list[IdleHolder] = []
    finding: str | None = None


class RevisionRow(ResultData):
    revision: int
    image: str | None = None
    created_at: str | None = None
    change_cause: str | None = None
    current: bool = False


class RolloutHistory(ResultData):
    workload: str
    revision: int
    image: str | None = None
    rollout: str | None = None
    reason: str | None = None
    message: str | None = None
    revisions: list[RevisionRow] = []


def _show_workloads(result: ToolResult) -> list[str]:
    data = result.data or {}
    rows = data.get("workloads", [])
    if not rows:
        return ["no workloads match"]
    lines = [f"{len(rows)} workload(s):" if data.get("count", len(rows)) == len(rows) else f"{data['count']} workload(s):"]
    for w in rows[:MAX_ROWS]:
        idle = f", idle {ago(w.get('idle_seconds'))}" if w.get("idle") else ""
        lines.append(f"  `{w['workload']}` {w.get('ready_replicas', '?')}/{w.get('replicas', '?')} ready, "
                     f"{w.get('gpus_held', 0)} GPU(s) held, util {pct(w.get('gpu_utilization'))}{idle}")
    return lines + more(rows, data.get("count"))


def _show_gpus(result: ToolResult) -> list[str]:
    data = result.data or {}
    rows = data.get("devices", [])
    if not rows:
        return ["no GPUs match"]
    lines = [result.message + ":"]
    for g in rows[:MAX_ROWS]:
        who = f"held by `{g['workload'] or g['holder']}`, util {pct(g.get('utilization'))}" if g.get("holder") else "free"
        idle = f", idle {ago(g['idle_seconds'])}" if g.get("idle_seconds") is not None else ""
        lines.append(f"  {g['id']} on {g['node']} ({g['model']}): {who}{idle}")
    return lines + more(rows, data.get("count"))


def _show_findings(result: ToolResult) -> list[str]:
    data = FindingList.of(result)
    rows = data.findings
    if not rows:
        return ["no findings"]
    return [f"{len(rows)} finding(s):"] + [f"  [{f.severity}] {f.id}: {f.summary}" for f in rows[:MAX_ROWS]] + more(rows, data.count)


def _show_pods(result: ToolResult) -> list[str]:
    rows = PodList.of(result).pods
    if not rows:
        return ["no pods"]
    return [f"  pod `{p.pod}` {p.phase}" + (f" ({p.reason})" if p.reason else "")
            + (f", {p.restarts} restart(s)" if p.restarts else "") for p in rows[:MAX_ROWS]]


def _show_pod(result: ToolResult) -> list[str]:
    data = result.data or {}
    # The pod's, its containers' and its events' messages are the cluster's words: quoted, one line each.
    lines = [f"  {plain(result.message, 300)}" + (f" says {quoted(data['message'])}" if data.get("message") else "")]
    for t in (data.get("last_terminations") or [])[:MAX_ROWS]:
        lines.append(f"    last ended: {plain(t['container'], 63)} {plain(t['reason'], 60)} (exit {t['exit_code']})"
                     + (f" saying {quoted(t['message'], 120)}" if t.get("message") else ""))
    for e in (data.get("events") or [])[-5:]:
        lines.append(f"    {plain(e['type'], 10)} {plain(e['reason'], 60)}: {quoted(e['message'])}")
    return lines


def _show_job(result: ToolResult) -> list[str]:
    data = JobDetail.of(result)
    lines = [result.message]
    if data.free_gpus_by_node:
        lines.append("  free GPUs per node: " + ", ".join(f"{node} {n}" for node, n in sorted(data.free_gpus_by_node.items())))
    for h in data.idle_holders:
        lines.append(f"  idle holder `{h.namespace}/{h.name}`: {h.gpus_held} GPU(s), idle {h.idle_minutes:.0f} min")
    return lines


def _show_workload(result: ToolResult) -> list[str]:
    data = WorkloadDetail.of(result)
    extra = f", rollout {data.rollout}" + (f" ({data.rollout_reason})" if data.rollout_reason else "")
    lines = [f"{result.message}, {data.gpus_per_replica} GPU(s) per replica{extra}"]
    if data.not_ready is not None:
        lines.append(f"  not ready ({data.not_ready.reading.replace('_', ' ')}): {data.not_ready.says}")
    return lines


SHOWS: dict[str, Callable[[ToolResult], list[str]]] = {
    "list_workloads": _show_workloads, "gpu_inventory": _show_gpus, "list_findings": _show_findings,
    "list_pods": _show_pods, "describe_pod": _show_pod, "get_job": _show_job, "get_workload": _show_workload,
}


RESULTS: dict[str, type[ResultData]] = {
    "list_workloads": WorkloadList, "get_workload": WorkloadDetail, "list_pods": PodList, "describe_pod": PodDetail,
    "gpu_inventory": GpuList, "list_findings": FindingList, "get_job": JobDetail, "get_rollout_history": RolloutHistory,
}


def _narrowed(args: dict[str, Any]) -> str:
    said = given(args, "workload", "phase", "kind", "subject", limit=80)
    return f" ({said})" if said else ""


# How a call reads in an approval request or a chat reply.
PHRASES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "list_workloads": phrased("list workloads", where=" in", alone="list workloads",
                              details=lambda a: (" (GPU only)" if a.get("only_gpu") else "") + (" (idle only)" if a.get("only_idle") else "")),
    "get_workload": phrased("read workload"),
    "list_pods": phrased("list pods", where=" in", alone="list pods", details=_narrowed),
    "describe_pod": phrased("describe pod"),
    "gpu_inventory": phrased("list the GPUs", where=" on", alone="list the GPUs", details=lambda a: " (free only)" if a.get("only_free") else ""),
    "list_findings": phrased("list findings", details=_narrowed),
    "get_job": phrased("read job"),
    "get_rollout_history": phrased("read the rollout history of"),
}


def _tool(name: str, model: type[ToolInput], fn: Callable[[ToolContext, Any], Outcome], description: str, *examples: dict) -> Tool:
    return Tool(name=name, risk="read", input_model=model, run=fn, description=description,
                examples=tuple(examples), returns=RETURNS[name], show=SHOWS.get(name), result_model=RESULTS[name],
                phrase=PHRASES[name])


READ_TOOLS: tuple[Tool, ...] = (
    _tool("list_workloads", ListWorkloadsIn, list_workloads,
          "List workloads with replicas, GPUs held, utilisation, traffic and rollout state.",
          {"namespace": "inference", "only_idle": True}),
    _tool("get_workload", GetWorkloadIn, get_workload,
          "One workload in detail: replicas, GPUs, placement needs, labels, annotations, rollout, pods.",
          {"namespace": "inference", "name": "llm"}),
    _tool("list_pods", ListPodsIn, list_pods,
          "List pods with phase, readiness, reason, node and GPU ids.",
          {"namespace": "inference", "workload": "llm", "phase": "Pending"}),
    _tool("describe_pod", DescribePodIn, describe_pod,
          "One pod with its reason, message and recent events.",
          {"namespace": "inference", "name": "llm-7d9f-abcde"}),
    _tool("gpu_inventory", GpuInventoryIn, gpu_inventory,
          "Every GPU: model, memory, PCIe link width, switch group, who holds it and for how long, utilisation, idle time.",
          {"only_free": True}),
    _tool("list_findings", ListFindingsIn, list_findings,
          "Problems the detectors see now (idle GPUs, failed rollouts, drift, ...).",
          {"kind": "idle_gpu"}),
    _tool("get_job", GetJobIn, get_job,
          "One queued or running GPU job: state, GPUs wanted, wait, and what blocks it (free GPUs per node, idle holders).",
          {"namespace": "training", "name": "finetune-7"}),
    _tool("get_rollout_history", GetRolloutHistoryIn, get_rollout_history,
          "A workload's rollout revisions (image per revision) and current rollout state.",
          {"namespace": "inference", "name": "llm"}),
)
