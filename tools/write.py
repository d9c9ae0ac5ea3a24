"""Write tools: the routine changes the agent may make when the policy allows.

Each acts only through `ctx.cluster`, passes `dry_run=ctx.dry_run` to every
port write, and returns what changed (or would change) in a few fields. They
never decide whether they may run: the gate has done that before calling them.
Only `wake_workload` waits: on an adapter that can watch (`WaitsReady`) it waits
on the workload's change events; otherwise (the simulator) through `ctx.pause`,
so the simulation moves time forward between looks.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import Field

from opsagent.cluster.port import DisruptionBlocked, NotFound, WaitsReady, WriteResult
from opsagent.model import Autoscaler, Pod, ReplicaWrite, Snapshot, ToolResult
from opsagent.model.images import rollback_bounce

from tools.args import Name, Namespace, NodeName, Replicas, WorkloadArgs, find_workload
from tools import effects, images
from tools.base import ChatForm, Outcome, ResultData, Target, Tool, ToolContext, ToolInput, WriteData
from tools.show import ago, arrow, phrased, plain, quoted, shows


def _done(result: WriteResult, message: str, **data: Any) -> Outcome:
    prefix = "dry run: would " if result.dry_run else ""
    data.update(dry_run=result.dry_run)
    if result.message:
        data["cluster_message"] = result.message[:300]
    if not result.ok:
        return Outcome(status="error", message=f"{prefix}{message} failed: {result.message}", data=data)
    return Outcome(message=prefix + message, data=data)


class ScaleWorkloadIn(WorkloadArgs):
    replicas: Replicas


class Scaled(WriteData):
    workload: str
    replicas_before: int
    replicas: int
    gpus_freed: int = 0


def scale_workload(ctx: ToolContext, args: ScaleWorkloadIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    result = ctx.cluster.scale(ref=w.ref, replicas=args.replicas, dry_run=ctx.dry_run)
    return _done(result, f"scale {w.key} from {w.replicas} to {args.replicas}",
                 workload=w.key, replicas_before=w.replicas, replicas=args.replicas,
                 gpus_freed=w.gpus_per_replica * max(0, w.replicas - args.replicas))


class WakeWorkloadIn(WorkloadArgs):
    replicas: int | None = Field(default=None, ge=1, le=1000, description="Replicas to wake to; omit for the intent's warm_replicas.")
    wait: bool = Field(default=True, description="Wait until the replicas are ready (bounded by the wake timeout).")


class Woken(WriteData):
    """A wake: `state` ready, timed_out or requested; `autoscaler` when one scales it (resumed, or refused `replicas`)."""

    workload: str
    replicas_before: int | None = None
    replicas: int | None = None
    state: str | None = None
    ready_replicas: int | None = None
    waited_seconds: float | None = None
    autoscaler: str | None = None
    paused_replicas: int | None = None


def _through_autoscaler(ctx: ToolContext, owner: Autoscaler, replicas: int | None, message: str, **data: Any) -> Outcome:
    """Sleep or wake a KEDA-owned workload by pausing (at `replicas`) or resuming its autoscaler, never by scaling it."""
    result = ctx.cluster.pause_autoscaler(kind=owner.kind, namespace=owner.namespace, name=owner.name,
                                          replicas=replicas, dry_run=ctx.dry_run)
    return _done(result, message, autoscaler=owner.label, paused_replicas=replicas, **data)


def wake_workload(ctx: ToolContext, args: WakeWorkloadIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    owner = snap.autoscaler_of(w.ref)
    if owner is not None:
        if args.replicas is not None:
            return Outcome(status="error", message=f"{w.key} is scaled by {owner.label}: it decides the replicas; "
                                                   "wake it without `replicas`", data={"workload": w.key, "autoscaler": owner.label})
        if owner.paused_replicas is None:
            return Outcome(message=f"{w.key} is not paused: {owner.label} scales it ({w.replicas} replica(s) now)",
                           data={"workload": w.key, "autoscaler": owner.label, "state": "requested", "replicas": w.replicas})
        return _through_autoscaler(ctx, owner, None, f"resume {owner.label}, which scales {w.key} from its load again",
                                   workload=w.key, replicas_before=w.replicas, state="requested")
    want = args.replicas or max(1, ctx.warm_replicas(w.ref))
    base = {"workload": w.key, "replicas_before": w.replicas, "replicas": want}
    if w.ready_replicas >= want and w.replicas >= want:
        return Outcome(message=f"{w.key} already awake: {w.ready_replicas} ready", data={**base, "state": "ready", "waited_seconds": 0.0})
    if w.replicas < want:
        result = ctx.cluster.scale(ref=w.ref, replicas=want, dry_run=ctx.dry_run)
        if not result.ok or result.dry_run or ctx.dry_run:
            return _done(result, f"wake {w.key} to {want} replica(s)", **base, state="requested")
    if not args.wait:
        return Outcome(message=f"woke {w.key} to {want} replica(s); not waiting", data={**base, "state": "requested"})
    start = ctx.clock.monotonic()
    if ctx.wait is None and isinstance(ctx.cluster, WaitsReady):   # real time: wait on the workload's changes
        ready = ctx.cluster.wait_ready(ref=w.ref, replicas=want, timeout=ctx.wake_timeout_seconds)
        return _waited(w.key, base, ready, want, ctx.clock.monotonic() - start)
    while True:
        waited = ctx.clock.monotonic() - start
        current = ctx.observe().workload(w.ref)
        if current is None:
            raise NotFound(f"workload {w.key} disappeared while waking")
        if current.ready_replicas >= want or waited >= ctx.wake_timeout_seconds:
            return _waited(w.key, base, current.ready_replicas, want, waited)
        step = min(ctx.poll_seconds, max(ctx.wake_timeout_seconds - waited, 0.001))
        ctx.pause(step)


def _waited(key: str, base: dict[str, Any], ready: int, want: int, waited: float) -> Outcome:
    if ready >= want:
        return Outcome(message=f"{key} ready: {ready}/{want} after {waited:.0f}s",
                       data={**base, "state": "ready", "ready_replicas": ready, "waited_seconds": round(waited, 1)})
    return Outcome(status="error", message=f"{key} not ready after {waited:.0f}s: {ready}/{want} ready",
                   data={**base, "state": "timed_out", "ready_replicas": ready, "waited_seconds": round(waited, 1)})


class SleepWorkloadIn(WorkloadArgs):
    pass


class Slept(WriteData):
    """A sleep; without `replicas_before` it was already at zero. `autoscaler` when one was paused instead."""

    workload: str
    replicas_before: int | None = None
    gpus_freed: int = 0
    gpu_ids: list[str] = []
    autoscaler: str | None = None
    paused_replicas: int | None = None


def sleep_workload(ctx: ToolContext, args: SleepWorkloadIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    gpu_ids = sorted(g for p in snap.pods_of(w.ref) for g in p.gpu_ids)
    owner = snap.autoscaler_of(w.ref)
    if owner is not None:
        if owner.paused_replicas == 0:
            return Outcome(message=f"{owner.label} already holds {w.key} at zero",
                           data={"workload": w.key, "autoscaler": owner.label, "gpus_freed": 0, "gpu_ids": []})
        return _through_autoscaler(ctx, owner, 0, f"pause {owner.label} at zero replicas, freeing {len(gpu_ids)} GPU(s) of {w.key}",
                                   workload=w.key, replicas_before=w.replicas, gpus_freed=len(gpu_ids), gpu_ids=gpu_ids)
    if w.replicas == 0:
        return Outcome(message=f"{w.key} is already at zero", data={"workload": w.key, "gpus_freed": 0, "gpu_ids": []})
    result = ctx.cluster.scale(ref=w.ref, replicas=0, dry_run=ctx.dry_run)
    return _done(result, f"scale {w.key} to zero, freeing {len(gpu_ids)} GPU(s)",
                 workload=w.key, replicas_before=w.replicas, gpus_freed=len(gpu_ids), gpu_ids=gpu_ids)


class RestartRolloutIn(WorkloadArgs):
    pass


class Restarted(WriteData):
    workload: str
    revision_before: int
    image: str


def restart_rollout(ctx: ToolContext, args: RestartRolloutIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    result = ctx.cluster.restart_rollout(ref=w.ref, dry_run=ctx.dry_run)
    return _done(result, f"restart the rollout of {w.key} (revision {w.revision})",
                 workload=w.key, revision_before=w.revision, image=w.image)


class UndoRolloutIn(WorkloadArgs):
    to_revision: int | None = Field(default=None, ge=1, le=100000, description="Revision to go back to; omit for the previous one.")


class RolledBack(WriteData):
    """An undo: before and (when it ran) after; `revisions` when the asked one is unknown, `why` when refused."""

    workload: str
    revision_before: int | None = None
    image_before: str | None = None
    revision: int | None = None
    image: str | None = None
    revisions: list[int] | None = None
    why: str | None = None


def undo_rollout(ctx: ToolContext, args: UndoRolloutIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    if args.to_revision is not None and w.history and all(r.revision != args.to_revision for r in w.history):
        known = ", ".join(str(r.revision) for r in w.history)
        return Outcome(status="error", message=f"{w.key} has no revision {args.to_revision}; known: {known}",
                       data={"workload": w.key, "revisions": [r.revision for r in w.history]})
    bounce = rollback_bounce(w, args.to_revision)
    if bounce is not None:
        return Outcome(status="error", message=f"{w.key} is not rolled back: {bounce}",
                       data={"workload": w.key, "revision_before": w.revision, "image_before": w.image, "why": bounce})
    result = ctx.cluster.undo_rollout(ref=w.ref, to_revision=args.to_revision, dry_run=ctx.dry_run)
    where = f"revision {args.to_revision}" if args.to_revision else "the previous revision"
    data: dict[str, Any] = {"workload": w.key, "revision_before": w.revision, "image_before": w.image}
    if result.ok and not result.dry_run:
        after = ctx.observe().workload(w.ref)
        if after is not None:
            data.update(revision=after.revision, image=after.image)
    return _done(result, f"roll {w.key} back to {where}", **data)


class CordonNodeIn(ToolInput):
    node: NodeName
    reason: str | None = Field(default=None, max_length=300, description="Why, for the audit log.")

    def target(self) -> Target:
        return Target(node=self.node)


def _node_exists(ctx: ToolContext, node: str) -> None:
    snap = ctx.observe()
    if snap.node(node) is None:
        known = ", ".join(sorted(n.name for n in snap.nodes)[:20])
        raise NotFound(f"no node {node}; nodes: {known}")


def cordon_node(ctx: ToolContext, args: CordonNodeIn) -> Outcome:
    _node_exists(ctx, args.node)
    result = ctx.cluster.cordon(node=args.node, cordoned=True, dry_run=ctx.dry_run)
    return _done(result, f"cordon {args.node}", node=args.node, cordoned=True)


class Cordoned(WriteData):
    node: str
    cordoned: bool


class UncordonNodeIn(ToolInput):
    node: NodeName

    def target(self) -> Target:
        return Target(node=self.node)


def uncordon_node(ctx: ToolContext, args: UncordonNodeIn) -> Outcome:
    _node_exists(ctx, args.node)
    result = ctx.cluster.cordon(node=args.node, cordoned=False, dry_run=ctx.dry_run)
    return _done(result, f"uncordon {args.node}", node=args.node, cordoned=False)


class DeletePodIn(ToolInput):
    namespace: Namespace
    name: Name = Field(description="Pod name.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


def delete_pod(ctx: ToolContext, args: DeletePodIn) -> Outcome:
    pod = ctx.observe().pod(args.namespace, args.name)
    if pod is None:
        raise NotFound(f"no pod {args.namespace}/{args.name}")
    result = ctx.cluster.delete_pod(namespace=args.namespace, name=args.name, dry_run=ctx.dry_run)
    return _done(result, f"delete pod {pod.key}", pod=pod.key,
                 workload=str(pod.workload) if pod.workload else None, gpu_ids=list(pod.gpu_ids))


class EvictPodIn(ToolInput):
    namespace: Namespace
    name: Name = Field(description="Pod name.")

    def target(self) -> Target:
        return Target(namespace=self.namespace)


class BudgetBlock(ResultData):
    budget: str | None
    disruptions_allowed: int | None = None
    current_healthy: int | None = None
    desired_healthy: int | None = None


class Blocked(ResultData):
    """What keeps a pod from being evicted: the budgets that select it, and the first one's words."""

    pod: str
    budgets: list[BudgetBlock]
    message: str


class PodRemoved(WriteData):
    """A deleted or evicted pod; `blocked` when a disruption budget refused the eviction."""

    pod: str
    workload: str | None = None
    node: str | None = None
    gpu_ids: list[str] = []
    blocked: Blocked | None = None


def _blocked(snap: Snapshot, pod: Pod, exc: DisruptionBlocked) -> dict[str, Any]:
    """What blocks an eviction: the budgets that select the pod and allow no disruption now, with their numbers."""
    budgets = [b for b in snap.budgets_for(pod) if b.disruptions_allowed < 1] or snap.budgets_for(pod)
    return {"pod": pod.key, "budgets": [{"budget": b.key, "disruptions_allowed": b.disruptions_allowed,
                                         "current_healthy": b.current_healthy, "desired_healthy": b.desired_healthy}
                                        for b in budgets] or [{"budget": exc.budget or None}],
            "message": (budgets[0].describe() if budgets else exc.message)[:300]}


def evict_pod(ctx: ToolContext, args: EvictPodIn) -> Outcome:
    snap = ctx.observe()
    pod = snap.pod(args.namespace, args.name)
    if pod is None:
        raise NotFound(f"no pod {args.namespace}/{args.name}")
    try:
        result = ctx.cluster.evict_pod(namespace=args.namespace, name=args.name, dry_run=ctx.dry_run)
    except DisruptionBlocked as exc:
        blocked = _blocked(snap, pod, exc)
        return Outcome(status="error", message=f"eviction of {pod.key} refused: {blocked['message']}; try later or ask a person",
                       data={"pod": pod.key, "blocked": blocked})
    return _done(result, f"evict pod {pod.key}", pod=pod.key, workload=str(pod.workload) if pod.workload else None,
                 node=pod.node, gpu_ids=list(pod.gpu_ids))


class DrainNodeIn(ToolInput):
    node: NodeName
    reason: str | None = Field(default=None, max_length=300, description="Why, for the audit log.")

    def target(self) -> Target:
        return Target(node=self.node)


class Skipped(ResultData):
    pod: str
    why: str


class Drained(WriteData):
    node: str
    cordoned: bool
    evicted: list[str] = []
    blocked: list[Blocked] = []
    skipped: list[Skipped] = []


def drain_node(ctx: ToolContext, args: DrainNodeIn) -> Outcome:
    """`kubectl drain` within budgets: cordon, then evict each pod through the Eviction API, reporting what blocks."""
    _node_exists(ctx, args.node)
    snap = ctx.observe()
    node = snap.node(args.node)
    assert node is not None
    if not node.cordoned:
        ctx.cluster.cordon(node=args.node, cordoned=True, dry_run=ctx.dry_run)
    evicted: list[str] = []
    blocked: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for pod in sorted(snap.pods_on(args.node), key=lambda p: p.key):
        if pod.workload is None:  # kubectl drain refuses these too: nothing would recreate them
            skipped.append({"pod": pod.key, "why": "no workload owns it; evicting it would lose it"})
            continue
        try:
            ctx.cluster.evict_pod(namespace=pod.namespace, name=pod.name, dry_run=ctx.dry_run)
        except DisruptionBlocked as exc:
            blocked.append(_blocked(snap, pod, exc))
            continue
        evicted.append(pod.key)
    prefix = "dry run: would " if ctx.dry_run else ""
    data = {"node": args.node, "cordoned": True, "evicted": evicted, "blocked": blocked, "skipped": skipped,
            "dry_run": ctx.dry_run}
    if blocked or skipped:
        why = "; ".join([f"{b['pod']}: {b['message']}" for b in blocked] + [f"{s['pod']}: {s['why']}" for s in skipped])
        return Outcome(status="error", message=f"{prefix}drain {args.node}: evicted {len(evicted)} pod(s), "
                                               f"{len(blocked) + len(skipped)} left ({why[:600]}); a person decides the rest",
                       data=data)
    return Outcome(message=f"{prefix}drain {args.node}: cordoned, evicted {len(evicted)} pod(s)", data=data)


RETURNS: dict[str, str] = {
    'scale_workload': 'workload, replicas_before, replicas, `gpus_freed` (GPUs per replica times the replicas removed), dry_run.',
    'wake_workload': 'workload, replicas, `state` (ready, timed_out, requested), ready_replicas, waited_seconds. Timing out is an error result. A KEDA-owned workload is woken by resuming its autoscaler (`autoscaler`, state requested).',
    'sleep_workload': 'workload, replicas_before, `gpus_freed`, `gpu_ids`, dry_run; `autoscaler` and `paused_replicas` when a KEDA autoscaler was paused instead.',
    'restart_rollout': 'workload, revision_before, image, dry_run.',
    'undo_rollout': 'workload, revision_before, image_before, revision and image after, dry_run.',
    'cordon_node': 'node, cordoned, dry_run.',
    'uncordon_node': 'node, cordoned, dry_run.',
    'delete_pod': 'pod, workload, gpu_ids, dry_run.',
    'evict_pod': 'pod, workload, node, gpu_ids, dry_run; refused by a disruption budget: error with `blocked` (budget, disruptions_allowed, current_healthy, desired_healthy).',
    'drain_node': 'node, cordoned, `evicted` pods, `blocked` (pod, budgets with disruptions_allowed, message), `skipped` (pods no workload owns), dry_run. Anything left is an error result.',
    'set_image': images.RETURNS,
}


EFFECTS: dict[str, effects.EffectCheck] = {
    "scale_workload": effects.replicas(lambda a: int(a.get("replicas", -1))),
    "sleep_workload": effects.replicas(lambda a: 0),
    "wake_workload": effects.replicas(lambda a: int(a.get("replicas") or 1), at_least=True),
    "restart_rollout": effects.new_revision,
    "undo_rollout": effects.new_revision,
    "cordon_node": effects.cordoned(True),
    "uncordon_node": effects.cordoned(False),
    "delete_pod": effects.gone,
    "evict_pod": effects.gone,
    "drain_node": effects.drained,
    "set_image": effects.image_set,
}

def _to_revision(args: dict[str, Any]) -> str:
    return f" to revision {plain(args['to_revision'], 12)}" if args.get("to_revision") else " to the previous revision"


def _why(args: dict[str, Any]) -> str:
    return f" ({plain(args['reason'], 120)})" if args.get("reason") else ""


# How a pending call reads in an approval request or a proposal: what it would change, and where.
PHRASES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "scale_workload": phrased("scale", details=lambda a: f" to {plain(a.get('replicas'), 12)}"),
    "wake_workload": phrased("wake", details=lambda a: f" to {plain(a['replicas'], 12)} replica(s)" if a.get("replicas") else ""),
    "sleep_workload": phrased("sleep"),
    "restart_rollout": phrased("restart the rollout of"),
    "undo_rollout": phrased("roll back", details=_to_revision),
    "cordon_node": phrased("cordon node", details=_why),
    "uncordon_node": phrased("uncordon node"),
    "delete_pod": phrased("delete pod"),
    "evict_pod": phrased("evict pod"),
    "drain_node": phrased("drain node", details=lambda a: " (cordon it, evict its pods within their budgets)" + _why(a)),
    "set_image": images.phrase,
}


def _woken(d: Woken) -> tuple[str, str]:
    if d.autoscaler and d.state == "requested" and d.replicas_before is not None:
        return d.workload, f"{plain(d.autoscaler)} resumed; it scales the workload from its load again"
    if d.autoscaler:
        return d.workload, f"scaled by {plain(d.autoscaler)}, {d.replicas} replica(s) now"
    if d.state == "ready":
        return d.workload, f"awake: {d.ready_replicas or d.replicas}/{d.replicas} ready after {ago(d.waited_seconds)}"
    if d.state == "timed_out":
        return d.workload, f"not ready after {ago(d.waited_seconds)}: {d.ready_replicas}/{d.replicas} ready"
    return d.workload, f"replicas {arrow(d.replicas_before, d.replicas)}, waking (not waited for)"


def _slept(d: Slept) -> tuple[str, str]:
    freed = f", {d.gpus_freed} GPU(s) freed" + (f" ({', '.join(plain(g, 40) for g in d.gpu_ids[:8])})" if d.gpu_ids else "")
    if d.replicas_before is None:
        return d.workload, "already asleep" + (f" ({plain(d.autoscaler)} holds it at zero)" if d.autoscaler else "")
    if d.autoscaler:
        return d.workload, f"asleep: {plain(d.autoscaler)} paused at zero replicas (had {d.replicas_before}){freed}"
    return d.workload, f"asleep: replicas {arrow(d.replicas_before, 0)}{freed}"


def _rolled_back(d: RolledBack) -> tuple[str, str]:
    image = f", image {quoted(d.image_before)} → {quoted(d.image)}" if d.image and d.image != d.image_before else ""
    return d.workload, f"rolled back: revision {arrow(d.revision_before, d.revision)}{image}"


def _pod_removed(verb: str) -> Callable[[PodRemoved], tuple[str, str]]:
    def describe(d: PodRemoved) -> tuple[str, str]:
        owner = f"; `{plain(d.workload, 253)}` starts a replacement" if d.workload else "; no workload replaces it"
        held = f", releasing {len(d.gpu_ids)} GPU(s)" if d.gpu_ids else ""
        return d.pod, f"{verb}{held}{owner}"
    return describe


def _drained(d: Drained) -> tuple[str, str] | tuple[str, str, str]:
    said = f"drained: cordoned, {len(d.evicted)} pod(s) evicted"
    left = [b.pod for b in d.blocked] + [s.pod for s in d.skipped]
    if left:
        return d.node, said, f"left on it: {', '.join(plain(p, 253) for p in left[:8])}"
    return d.node, said


# What a person sees in chat after an ok result: the object and the change.
SHOWS: dict[str, Callable[[ToolResult], list[str]]] = {
    "scale_workload": shows(Scaled, lambda d: (d.workload, f"replicas {arrow(d.replicas_before, d.replicas)}"
                                                + (f", {d.gpus_freed} GPU(s) freed" if d.gpus_freed else ""))),
    "wake_workload": shows(Woken, _woken),
    "sleep_workload": shows(Slept, _slept),
    "restart_rollout": shows(Restarted, lambda d: (d.workload, f"rollout restarted from revision {d.revision_before} "
                                                               f"(image {quoted(d.image)})")),
    "undo_rollout": shows(RolledBack, _rolled_back),
    "cordon_node": shows(Cordoned, lambda d: (d.node, "cordoned: no new pods are scheduled on it; running pods stay")),
    "uncordon_node": shows(Cordoned, lambda d: (d.node, "uncordoned: schedulable again")),
    "delete_pod": shows(PodRemoved, _pod_removed("deleted")),
    "evict_pod": shows(PodRemoved, _pod_removed("evicted")),
    "drain_node": shows(Drained, _drained),
    "set_image": images.show,
}


# The typed view of each tool's result data.
RESULTS: dict[str, type[ResultData]] = {
    "scale_workload": Scaled, "wake_workload": Woken, "sleep_workload": Slept, "restart_rollout": Restarted,
    "undo_rollout": RolledBack, "cordon_node": Cordoned, "uncordon_node": Cordoned, "delete_pod": PodRemoved,
    "evict_pod": PodRemoved, "drain_node": Drained, "set_image": images.ImageSet,
}


def _rollback(ref: str, groups: dict[str, Any]) -> tuple[dict[str, Any], str]:
    rev = groups.get("rev")
    return ({"to_revision": int(rev)} if rev else {}), f"rollback {ref}" + (f" to {rev}" if rev else "")


CHAT: dict[str, ChatForm] = {
    "scale_workload": ChatForm(
        verb="scale", form="scale NS/NAME to N", pattern=r"^scale\s+(?:up\s+|down\s+)?{WL}\s+(?:to\s+)?{NUM}(?:\s+replicas?)?$",
        hint="scale NS/NAME to N, e.g. 'scale inference/llm to 2'", particles=("up", "down"),
        build=lambda ref, g: ({"replicas": g["n"]}, f"scale {ref} to {g['n']}")),
    "wake_workload": ChatForm(
        verb="wake", form="wake NS/NAME [for 2h]",
        pattern=r"^wake(?:\s+up)?\s+{WL}(?:\s+up)?(?:\s+for\s+(?P<span>\d{1,4}[hm](?:\d{1,2}m)?))?$",
        hint="wake NS/NAME [for 2h], e.g. 'wake inference/llm for 2h' (a time-boxed wake)", particles=("up", "down"),
        build=lambda ref, g: ({}, f"wake {ref}")),
    "sleep_workload": ChatForm(
        verb="sleep", form="sleep NS/NAME", pattern=r"^(?:sleep|put\s+to\s+sleep)\s+{WL}$",
        hint="sleep NS/NAME, e.g. 'sleep inference/llm'",
        build=lambda ref, g: ({}, f"sleep {ref}")),
    "restart_rollout": ChatForm(
        verb="restart", form="restart NS/NAME", pattern=r"^restart(?:\s+the\s+rollout\s+of)?\s+{WL}$",
        hint="restart NS/NAME, e.g. 'restart inference/llm'",
        build=lambda ref, g: ({}, f"restart {ref}")),
    # "rollback NS/NAME" without a revision is set_image's: back to the image it ran before (tools/images.py).
    "undo_rollout": ChatForm(
        verb="rollback", form="rollback NS/NAME to REV  |  undo NS/NAME [to REV]", aliases=("undo",),
        pattern=r"^(?:(?:rollback|roll\s+back)(?=\s+\S+\s+to\s)|undo)\s+{WL}(?:\s+to\s+(?:revision\s+|rev\s+|r)?(?P<rev>\d{1,6}))?$",
        hint="rollback NS/NAME to REV, e.g. 'rollback inference/llm to 3'; 'roll back NS/NAME' returns to the image it ran before",
        build=_rollback),
    "set_image": images.CHAT,
    "drain_node": ChatForm(
        verb="drain", form="drain NODE", pattern=r"^drain\s+(?:the\s+)?(?:node\s+)?{NODE}$",
        hint="drain NODE, e.g. 'drain gpu-b' (cordon it, then evict its pods within their disruption budgets)",
        build=lambda node, g: ({}, f"drain {node}")),
}


# Which tools write replicas (the gate keeps them off workloads an autoscaler owns, see ReplicaWrite).
REPLICAS: dict[str, ReplicaWrite] = {"scale_workload": "direct", "sleep_workload": "pausable", "wake_workload": "pausable"}


def _tool(name: str, model: type[ToolInput], fn: Callable[[ToolContext, Any], Outcome], description: str, *examples: dict) -> Tool:
    return Tool(name=name, risk="write", input_model=model, run=fn, description=description,
                examples=tuple(examples), returns=RETURNS[name], effect=EFFECTS[name], phrase=PHRASES[name],
                show=SHOWS[name], result_model=RESULTS[name], chat=CHAT.get(name), replicas=REPLICAS.get(name))


WRITE_TOOLS: tuple[Tool, ...] = (
    _tool("scale_workload", ScaleWorkloadIn, scale_workload,
          "Set a workload's replica count (0..1000); never for a workload an autoscaler owns.",
          {"namespace": "inference", "name": "llm", "replicas": 2}),
    _tool("wake_workload", WakeWorkloadIn, wake_workload,
          "Scale a workload up from zero to its warm replicas and wait until they are ready (or the wake timeout passes); "
          "a workload a KEDA autoscaler owns is woken by resuming the autoscaler.",
          {"namespace": "inference", "name": "llm"}),
    _tool("sleep_workload", SleepWorkloadIn, sleep_workload,
          "Scale a workload to zero to free its GPUs; reports the GPU ids freed. A workload a KEDA autoscaler owns is "
          "paused at zero through the autoscaler (autoscaling.keda.sh/paused-replicas), never scaled.",
          {"namespace": "inference", "name": "llm"}),
    _tool("restart_rollout", RestartRolloutIn, restart_rollout,
          "Restart a workload's pods with a new rollout of the same template.",
          {"namespace": "inference", "name": "llm"}),
    _tool("undo_rollout", UndoRolloutIn, undo_rollout,
          "Roll a workload back to the previous revision, or to `to_revision`.",
          {"namespace": "inference", "name": "llm"}, {"namespace": "inference", "name": "llm", "to_revision": 3}),
    _tool("cordon_node", CordonNodeIn, cordon_node,
          "Mark a node unschedulable; running pods stay.",
          {"node": "gpu-node-2", "reason": "GPU errors"}),
    _tool("uncordon_node", UncordonNodeIn, uncordon_node,
          "Mark a node schedulable again.",
          {"node": "gpu-node-2"}),
    _tool("delete_pod", DeletePodIn, delete_pod,
          "Delete one pod; its workload starts a replacement.",
          {"namespace": "inference", "name": "llm-7d9f-abcde"}),
    _tool("evict_pod", EvictPodIn, evict_pod,
          "Evict one pod through the Eviction API, which honours PodDisruptionBudgets; says which budget blocks it.",
          {"namespace": "inference", "name": "llm-7d9f-abcde"}),
    _tool("drain_node", DrainNodeIn, drain_node,
          "Cordon a node and evict its pods within their disruption budgets (kubectl drain); reports what blocks.",
          {"node": "gpu-node-2", "reason": "ECC errors, maintenance"}),
    _tool("set_image", images.SetImageIn, images.set_image,
          "Set one container's image (the first when `container` is omitted) to an exact tag or digest, never :latest; "
          "without `image`, roll back to the image the workload ran before the current one (its rollout history). "
          "The policy decides: going back to an image the workload ran is routine, any other image is a person's call.",
          {"namespace": "inference", "name": "embedder", "image": "registry.internal/inference/embedder:2.3.0"},
          {"namespace": "inference", "name": "embedder"},
          {"namespace": "inference", "name": "embedder", "container": "proxy", "image": "envoyproxy/envoy:v1.30.2"}),
)
