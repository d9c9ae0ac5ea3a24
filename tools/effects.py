"""Effect checks: did a write's change reach the cluster? One builder per kind of change.

Each tool that writes declares its check next to its code (`Tool.effect`);
recovery after a crash asks the registry for it. A check is a pure function
of the call's arguments, the target as it was before the call (`before`) and
a snapshot taken now, and returns an `Observed` verdict: `in_effect` when the
cluster shows the change, `not_in_effect` when the target looks as it did
before, `unknown` otherwise. Nothing here writes, records or decides policy.
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


EffectCheck = Callable[[dict[str, Any], dict[str, Any], Snapshot], Observed]


def workload_of(snapshot: Snapshot, args: dict[str, Any]) -> Workload | None:
    if not args.get("namespace") or not args.get("name"):
        return None
    return snapshot.workload(f"{args['namespace']}/{args['name']}")


def replicas(want: Callable[[dict[str, Any]], int], *, at_least: bool = False) -> EffectCheck:
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        w = workload_of(snapshot, args)
        if w is None:
            return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
        target = want(args)
        if w.replicas == target or (at_least and w.replicas >= target):
            return Observed("in_effect", f"{w.key} has {w.replicas} replica(s), as the call asked")
        if before.get("replicas") == w.replicas:
            return Observed("not_in_effect", f"{w.key} still has {w.replicas} replica(s), as before the call")
        return Observed("unknown", f"{w.key} has {w.replicas} replica(s); the call asked for {target}")
    return check


def new_revision(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    w = workload_of(snapshot, args)
    if w is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
    if "revision" not in before:
        return Observed("unknown", f"{w.key} is at revision {w.revision}; its revision before the call was not recorded")
    if w.revision != before["revision"] or w.image != before.get("image", w.image):
        return Observed("in_effect", f"{w.key} moved from revision {before['revision']} to {w.revision}")
    return Observed("not_in_effect", f"{w.key} is still at revision {w.revision}, as before the call")


def template(fields: Callable[[dict[str, Any]], dict[str, Any]]) -> EffectCheck:
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        w = workload_of(snapshot, args)
        if w is None:
            return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
        wanted = fields(args)
        now = {"gpu_requirement": w.gpu_requirement.model_dump()}
        if all(now[k] == v for k, v in wanted.items()):
            return Observed("in_effect", f"{w.key}'s pod template shows {wanted}")
        return Observed("not_in_effect", f"{w.key}'s pod template does not show {wanted}")
    return check


def resources(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    """`set_resources`: the main container shows the GPUs and the memory limit and request the call wrote.

    Like with like: the container it changed, never the workload's sums (a sidecar adds to those)."""
    w = workload_of(snapshot, args)
    main = w.main_container if w is not None else None
    if w is None or main is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster, or shows no container")
    wanted: dict[str, Any] = {}
    if args.get("gpus_per_replica") is not None:
        wanted["gpus"] = args["gpus_per_replica"]
    if args.get("memory_mib") is not None:
        wanted["memory_limit_mib"] = wanted["memory_request_mib"] = args["memory_mib"]
    now = {"gpus": main.gpus, "memory_limit_mib": main.memory_limit_mib, "memory_request_mib": main.memory_request_mib}
    shown = ", ".join(f"{k} {now[k]}" for k in wanted)
    if all(now[k] == v for k, v in wanted.items()):
        return Observed("in_effect", f"{w.key}'s main container {main.name!r} shows {shown}, as the call asked")
    was = before.get("main_container")
    if not isinstance(was, dict) or all(was.get(k) == now[k] for k in wanted):
        return Observed("not_in_effect", f"{w.key}'s main container {main.name!r} shows {shown}, not what the call asked")
    return Observed("unknown", f"{w.key}'s main container {main.name!r} shows {shown}: neither what the call asked "
                               "nor what it had before")


def placement(args: dict[str, Any]) -> dict[str, Any]:
    return {"gpu_requirement": {"min_link_width": args.get("min_link_width"), "coherent": bool(args.get("coherent", False))}}


def probe(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    w = workload_of(snapshot, args)
    if w is None or not w.containers:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster, or shows no container")
    now = w.containers[0].probe(args.get("probe"))  # type: ignore[arg-type]
    wanted = {k: args[k] for k in ("path", "port", "period_seconds", "failure_threshold") if args.get(k) is not None}
    if now is not None and all(getattr(now, k) == v for k, v in wanted.items()):
        return Observed("in_effect", f"{w.key}'s {args.get('probe')} probe shows {wanted}")
    return Observed("not_in_effect", f"{w.key}'s {args.get('probe')} probe does not show {wanted}")


def bounds(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    w = workload_of(snapshot, args)
    if w is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
    wanted = {"opsagent.dev/min-replicas": str(args.get("min")), "opsagent.dev/max-replicas": str(args.get("max"))}
    if all(w.annotations.get(k) == v for k, v in wanted.items()):
        return Observed("in_effect", f"{w.key} carries replica bounds {args.get('min')}..{args.get('max')}")
    return Observed("not_in_effect", f"{w.key} does not carry replica bounds {args.get('min')}..{args.get('max')}")


def autoscaler_bounds(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    owner = snapshot.autoscaler_of(f"{args.get('namespace')}/{args.get('name')}")
    if owner is None:
        return Observed("unknown", f"no autoscaler owns {args.get('namespace')}/{args.get('name')} any more")
    if (owner.min_replicas, owner.max_replicas) == (args.get("min_replicas"), args.get("max_replicas")):
        return Observed("in_effect", f"{owner.label} has bounds {owner.min_replicas}..{owner.max_replicas}")
    return Observed("not_in_effect", f"{owner.label} still has bounds {owner.min_replicas}..{owner.max_replicas}")


def cordoned(wanted: bool) -> EffectCheck:
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        node = snapshot.node(str(args.get("node")))
        if node is None:
            return Observed("unknown", f"node {args.get('node')} is not in the cluster any more")
        state = "cordoned" if node.cordoned else "schedulable"
        return Observed("in_effect" if node.cordoned == wanted else "not_in_effect", f"node {node.name} is {state}")
    return check


def drained(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    node = snapshot.node(str(args.get("node")))
    if node is None:
        return Observed("unknown", f"node {args.get('node')} is not in the cluster any more")
    left = [p.key for p in snapshot.pods_on(node.name)]
    if node.cordoned and not left:
        return Observed("in_effect", f"node {node.name} is cordoned and runs no pods")
    if not node.cordoned:
        return Observed("not_in_effect", f"node {node.name} is schedulable")
    return Observed("unknown", f"node {node.name} is cordoned and still runs {len(left)} pod(s)")


def gone(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    pod = snapshot.pod(str(args.get("namespace")), str(args.get("name")))
    key = f"{args.get('namespace')}/{args.get('name')}"
    return Observed("not_in_effect", f"pod {key} still exists") if pod is not None else Observed("in_effect", f"pod {key} is gone")


def exists(wanted: bool) -> EffectCheck:
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        key = f"{args.get('namespace')}/{args.get('name')}"
        present = workload_of(snapshot, args) is not None
        verdict: Verdict = "in_effect" if present == wanted else "not_in_effect"
        return Observed(verdict, f"workload {key} {'exists' if present else 'does not exist'}")
    return check


def image_set(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
    """set_image: the first container's image as the call asked (or, for a rollback, other than before).

    The snapshot holds the first container's image only, so a call naming a container cannot be checked here."""
    w = workload_of(snapshot, args)
    if w is None:
        return Observed("unknown", f"{args.get('namespace')}/{args.get('name')} is not in the cluster any more")
    if args.get("container"):
        return Observed("unknown", f"{w.key} shows the first container's image only, not container {args['container']}'s")
    wanted, was = args.get("image"), before.get("image")
    if wanted is not None and w.image == wanted:
        return Observed("in_effect", f"{w.key} runs {w.image} (revision {w.revision}), as the call asked")
    if was is not None and w.image == was:
        return Observed("not_in_effect", f"{w.key} still runs {w.image}, as before the call")
    if wanted is None and was is not None:
        return Observed("in_effect", f"{w.key} moved from {was} to {w.image}")
    return Observed("unknown", f"{w.key} runs {w.image}; the call asked for {wanted or 'the image before ' + str(was)}")


def unchecked(why: Callable[[dict[str, Any]], str]) -> EffectCheck:
    """For a call whose change the cluster cannot show (it writes elsewhere): always `unknown`, saying
    (`why(args)`) where a person looks instead. Declared, so recovery says so rather than "no check"."""
    def check(args: dict[str, Any], before: dict[str, Any], snapshot: Snapshot) -> Observed:
        return Observed("unknown", why(args))
    return check
