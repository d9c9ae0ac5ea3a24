"""Did an interrupted write reach the cluster? Judged from the cluster as it is now.

A process can die after the gate let a write through and before the gate
recorded its result. On restart the gate must neither run the call again nor
leave it without a result: it looks at the cluster and records what it sees.
This module holds that judgement, one check per tool, as pure functions of
the call's arguments, the target as it was when the policy decided (`before`,
stored with the decision) and a snapshot taken now.

The verdicts are deliberately modest: `in_effect` when the cluster shows the
change the call asked for, `not_in_effect` when the target looks exactly as it
did before the call, and `unknown` otherwise (no check for the tool, the
target is gone, or someone else may have changed it since). Nothing here
writes, records or decides policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from opsagent.model import Snapshot, Workload

Verdict = Literal["in_effect", "not_in_effect", "unknown"]


@dataclass(frozen=True)
class Observed:
    verdict: Verdict
    detail: str


def before_of(args: dict[str, Any], snapshot: Snapshot | None) -> dict[str, Any] | None:
    """The few fields of a write's target that its effect check compares against, or None."""
    if snapshot is None:
        return None
    workload = _workload(snapshot, args)
    if workload is not None:
        return {"replicas": workload.replicas, "revision": workload.revision, "image": workload.image}
    node = snapshot.node(str(args.get("node"))) if args.get("node") else None
    if node is not None:
        return {"cordoned": node.cordoned}
    return None


def observed_effect(tool: str, args: dict[str, Any], before: dict[str, Any] | None, snapshot: Snapshot) -> Observed:
    """Whether the change `tool(args)` asks for shows in `snapshot`."""
    check = _CHECKS.get(tool)
    if check is None:
        return Observed("unknown", f"{tool} has no check of its effect on the cluster")
    return check(args, before or {}, snapshot)


def _workload(snapshot: Snapshot, args: dict[str, Any]) -> Workload | None:
    if not args.get("namespace") or not args.get("name"):
        return None
    return snapshot.workload(f"{args['namespace']}/{args['name']}")


def _replicas(want: Callable[[dict[str, Any]], int], *, at_least: bool = False):
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        w = _workload(snapshot, args)
        if w is None:
            return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
        target = want(args)
        if w.replicas == target or (at_least and w.replicas >= target):
            return Observed("in_effect", f"{w.key} has {w.replicas} replica(s), as the call asked")
        if before.get("replicas") == w.replicas:
            return Observed("not_in_effect", f"{w.key} still has {w.replicas} replica(s), as before the call")
        return Observed("unknown", f"{w.key} has {w.replicas} replica(s); the call asked for {target}")
    return check


def _new_revision(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    w = _workload(snapshot, args)
    if w is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
    if "revision" not in before:
        return Observed("unknown", f"{w.key} is at revision {w.revision}; its revision before the call was not recorded")
    if w.revision != before["revision"] or w.image != before.get("image", w.image):
        return Observed("in_effect", f"{w.key} moved from revision {before['revision']} to {w.revision}")
    return Observed("not_in_effect", f"{w.key} is still at revision {w.revision}, as before the call")


def _template(fields: Callable[[dict[str, Any]], dict[str, Any]]):
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        w = _workload(snapshot, args)
        if w is None:
            return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
        wanted = fields(args)
        now = {"gpus_per_replica": w.gpus_per_replica, "memory_mib": w.memory_mib,
               "gpu_requirement": w.gpu_requirement.model_dump()}
        if all(now[k] == v for k, v in wanted.items()):
            return Observed("in_effect", f"{w.key}'s pod template shows {wanted}")
        return Observed("not_in_effect", f"{w.key}'s pod template does not show {wanted}")
    return check


def _resources(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args[k] for k in ("gpus_per_replica", "memory_mib") if args.get(k) is not None}


def _placement(args: dict[str, Any]) -> dict[str, Any]:
    return {"gpu_requirement": {"min_link_width": args.get("min_link_width"), "coherent": bool(args.get("coherent", False))}}


def _bounds(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    w = _workload(snapshot, args)
    if w is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
    wanted = {"opsagent.dev/min-replicas": str(args.get("min")), "opsagent.dev/max-replicas": str(args.get("max"))}
    if all(w.annotations.get(k) == v for k, v in wanted.items()):
        return Observed("in_effect", f"{w.key} carries replica bounds {args.get('min')}..{args.get('max')}")
    return Observed("not_in_effect", f"{w.key} does not carry replica bounds {args.get('min')}..{args.get('max')}")


def _cordoned(wanted: bool):
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        node = snapshot.node(str(args.get("node")))
        if node is None:
            return Observed("unknown", f"node {args.get('node')} is not in the cluster any more")
        state = "cordoned" if node.cordoned else "schedulable"
        return Observed("in_effect" if node.cordoned == wanted else "not_in_effect", f"node {node.name} is {state}")
    return check


def _gone(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    pod = snapshot.pod(str(args.get("namespace")), str(args.get("name")))
    key = f"{args.get('namespace')}/{args.get('name')}"
    return Observed("not_in_effect", f"pod {key} still exists") if pod is not None else Observed("in_effect", f"pod {key} is gone")


def _exists(wanted: bool):
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        key = f"{args.get('namespace')}/{args.get('name')}"
        present = _workload(snapshot, args) is not None
        verdict: Verdict = "in_effect" if present == wanted else "not_in_effect"
        return Observed(verdict, f"workload {key} {'exists' if present else 'does not exist'}")
    return check


_CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any], Snapshot], Observed]] = {
    "scale_workload": _replicas(lambda a: int(a.get("replicas", -1))),
    "sleep_workload": _replicas(lambda a: 0),
    "wake_workload": _replicas(lambda a: int(a.get("replicas") or 1), at_least=True),
    "restart_rollout": _new_revision,
    "undo_rollout": _new_revision,
    "set_resources": _template(_resources),
    "set_gpu_placement": _template(_placement),
    "set_replica_bounds": _bounds,
    "cordon_node": _cordoned(True),
    "uncordon_node": _cordoned(False),
    "delete_pod": _gone,
    "create_workload": _exists(True),
    "delete_workload": _exists(False),
}
