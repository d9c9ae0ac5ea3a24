"""Did an interrupted write reach the cluster? Judged from the cluster as it is now.

A process can die after the gate let a write through and before the gate
recorded its result. On restart the gate must neither run the call again nor
leave it without a result: it looks at the cluster and records what it sees.
This module holds that judgement; each tool declares its own check (`Tool.effect`,
see tools/effects.py) as a pure function of the call's arguments, the target as it was when the policy decided (`before`,
stored with the decision) and a snapshot taken now.

The verdicts are deliberately modest: `in_effect` when the cluster shows the
change the call asked for, `not_in_effect` when the target looks exactly as it
did before the call, and `unknown` otherwise (no check for the tool, the
target is gone, or someone else may have changed it since). Nothing here
writes, records or decides policy.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import Snapshot
from tools.effects import Observed, Verdict, workload_of
from tools.registry import get_tool

__all__ = ["Observed", "Verdict", "before_of", "observed_effect"]


def before_of(args: dict[str, Any], snapshot: Snapshot | None) -> dict[str, Any] | None:
    """The few fields of a write's target that its effect check compares against, or None."""
    if snapshot is None:
        return None
    workload = workload_of(snapshot, args)
    if workload is not None:
        main = workload.main_container
        return {"replicas": workload.replicas, "revision": workload.revision, "image": workload.image,
                "main_container": None if main is None else {
                    "gpus": main.gpus, "memory_limit_mib": main.memory_limit_mib, "memory_request_mib": main.memory_request_mib}}
    node = snapshot.node(str(args.get("node"))) if args.get("node") else None
    if node is not None:
        return {"cordoned": node.cordoned}
    return None


def observed_effect(tool: str, args: dict[str, Any], before: dict[str, Any] | None, snapshot: Snapshot) -> Observed:
    """Whether the change `tool(args)` asks for shows in `snapshot`."""
    declared = get_tool(tool)
    check = declared.effect if declared is not None else None
    if check is None:
        return Observed("unknown", f"{tool} has no check of its effect on the cluster")
    return check(args, before or {}, snapshot)
