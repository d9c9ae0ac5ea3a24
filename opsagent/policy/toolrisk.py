"""The tool names and risk classes the policy knows without importing `tools`.

The policy layer must not import the tools package (it stays pure and below
it), yet the loader must refuse a rule that would allow an architectural
tool. This table mirrors the agreed tool catalogue; `policy lint` checks it
against `tools.REGISTRY` when that is importable, and callers may pass their
own table. Pure data.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable, Mapping

READ_TOOLS = ("list_workloads", "get_workload", "list_pods", "describe_pod", "gpu_inventory", "list_findings", "get_rollout_history",
              "get_job")
WRITE_TOOLS = ("scale_workload", "wake_workload", "sleep_workload", "restart_rollout", "undo_rollout", "cordon_node", "uncordon_node", "delete_pod")
ARCHITECTURAL_TOOLS = ("set_resources", "set_gpu_placement", "set_replica_bounds", "create_workload", "delete_workload", "change_policy")

# Tools whose `namespace` and `name` arguments name a pod: their CEL `target.pod` holds that pod's facts.
POD_TOOLS = frozenset({"describe_pod", "delete_pod"})

KNOWN_TOOL_RISKS: Mapping[str, str] = {
    **{name: "read" for name in READ_TOOLS},
    **{name: "write" for name in WRITE_TOOLS},
    **{name: "architectural" for name in ARCHITECTURAL_TOOLS},
}


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(p == name or (is_glob(p) and fnmatchcase(name, p)) for p in patterns)


def tools_matched(patterns: Iterable[str], tool_risks: Mapping[str, str]) -> list[str]:
    """The known tools a list of names/globs covers."""
    pats = tuple(patterns)
    return [name for name in tool_risks if matches_any(name, pats)]
