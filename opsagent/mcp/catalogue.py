"""The registry's tools as MCP tools: name, description, input schema, and hints from the risk class.

Pure: no I/O. The registry stays the only source of tools; this module only
describes them for MCP clients. Two MCP-only tools answer writes held for
the caller's yes (`confirm_call`, `refuse_call`); they run nothing
themselves (the service hands a confirmed call to the gate).

Four more are time-boxed wakes (`start_lease`, `extend_lease`,
`cancel_lease`, `list_leases`): a lease is not a cluster call but a record
over one (opsagent.leases runs the wake through the gate and keeps the
lease in the audit log), so it is no registry tool. Each takes its hints
from the risk class of the registry tool whose authority it needs:
`wake_workload` to start or extend, `sleep_workload` to cancel (it hands the
workload back to its idle rule); listing is a read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_types import Tool as McpTool
from mcp_types import ToolAnnotations
from pydantic import Field

from tools import REGISTRY, Tool
from tools.args import WorkloadArgs
from tools.base import ToolInput

CONFIRM_TOOL = "confirm_call"
REFUSE_TOOL = "refuse_call"
START_LEASE, EXTEND_LEASE, CANCEL_LEASE, LIST_LEASES = "start_lease", "extend_lease", "cancel_lease", "list_leases"
DURATION_PATTERN = r"^([0-9]{1,6}[smhd]){1,4}$"

# Annotations are hints for the client's own prompts; what may run is decided by the gate.
_HINTS: dict[str, dict[str, bool]] = {
    "read": {"read_only_hint": True, "destructive_hint": False, "idempotent_hint": True},
    "write": {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False},
    "architectural": {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False},
}

_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["confirmation_id"],
    "properties": {"confirmation_id": {"type": "integer", "minimum": 1,
                                       "description": "the id a held write came back with"}},
}


def annotations_for(risk: str) -> ToolAnnotations:
    """MCP hints for a risk class; an unknown class gets the most careful ones."""
    hints = _HINTS.get(risk, _HINTS["architectural"])
    return ToolAnnotations(open_world_hint=False, **hints)


def describe(tool: Tool) -> McpTool:
    text = tool.description
    if tool.risk != "read":
        text += (f" [{tool.risk}: runs only if the opsagent policy allows it for you; it may instead return a pending "
                 "approval id or a confirmation id]")
    return McpTool(name=tool.name, description=text, input_schema=tool.input_model.model_json_schema(),
                   annotations=annotations_for(tool.risk))


def answer_tools() -> list[McpTool]:
    hints = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
    return [
        McpTool(name=CONFIRM_TOOL, input_schema=_ANSWER_SCHEMA, annotations=hints,
                description="Say yes to a write held for your confirmation: it then goes through the gate as you."),
        McpTool(name=REFUSE_TOOL, input_schema=_ANSWER_SCHEMA,
                annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                            open_world_hint=False),
                description="Say no to a write held for your confirmation: it will not run."),
    ]


class LeaseTarget(WorkloadArgs):
    """The workload whose lease to cancel (names checked as Kubernetes names: no look-alike letters)."""


class LeaseSpan(WorkloadArgs):
    duration: str = Field(pattern=DURATION_PATTERN, description="How long from now, e.g. 2h, 90m or 1h30m. The intent's "
                                                                "max_wake caps it, counted from the lease's start.")


class LeaseFilter(ToolInput):
    include_ended: bool = Field(default=False, description="Also list leases that expired, ended or were cancelled.")


@dataclass(frozen=True)
class LeaseTool:
    name: str
    input_model: type[ToolInput]
    authority: str | None   # the registry tool whose risk class gives the hints; None: a read
    description: str


LEASE_TOOLS: dict[str, LeaseTool] = {t.name: t for t in (
    LeaseTool(START_LEASE, LeaseSpan, "wake_workload",
              "Time-boxed wake: wake the workload through the gate as you, then keep it up for `duration` whatever its "
              "idle rule says; the daemon puts it back to sleep when the lease ends. Refused past the intent's "
              "max_wake, on a workload whose intent sets none, and when the wake would wait for an approval."),
    LeaseTool(EXTEND_LEASE, LeaseSpan, "wake_workload",
              "Move the end of a workload's active lease to `duration` from now, within max_wake of the lease's "
              "start. Needs the policy to let you wake the workload."),
    LeaseTool(CANCEL_LEASE, LeaseTarget, "sleep_workload",
              "End a workload's active lease now: it stays up and its idle rule applies again. Your own lease "
              "always; someone else's only if the policy lets you put the workload to sleep."),
    LeaseTool(LIST_LEASES, LeaseFilter, None,
              "Time-boxed wakes, newest first: workload, state, who started it, start and end (active ones only "
              "unless include_ended)."),
)}


def lease_tools(registry: dict[str, Tool] = REGISTRY) -> list[McpTool]:
    out = []
    for tool in LEASE_TOOLS.values():
        risk = (registry.get(tool.authority) or REGISTRY[tool.authority]).risk if tool.authority else "read"
        out.append(McpTool(name=tool.name, description=tool.description, annotations=annotations_for(risk),
                           input_schema=tool.input_model.model_json_schema()))
    return out


def mcp_tools(registry: dict[str, Tool] = REGISTRY) -> list[McpTool]:
    """Every registry tool, in name order, then the lease tools and the two answer tools."""
    return [describe(registry[name]) for name in sorted(registry)] + lease_tools(registry) + answer_tools()


__all__ = ["CANCEL_LEASE", "CONFIRM_TOOL", "EXTEND_LEASE", "LEASE_TOOLS", "LIST_LEASES", "REFUSE_TOOL", "START_LEASE",
           "annotations_for", "describe", "lease_tools", "mcp_tools"]
