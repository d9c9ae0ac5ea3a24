"""The registry's tools as MCP tools: name, description, input schema, and hints from the risk class.

Pure: no I/O. The registry stays the only source of tools; this module only
describes them for MCP clients. Two MCP-only tools answer writes held for
the caller's yes (`confirm_call`, `refuse_call`); they run nothing
themselves (the service hands a confirmed call to the gate).
"""

from __future__ import annotations

from typing import Any

from mcp_types import Tool as McpTool
from mcp_types import ToolAnnotations

from tools import REGISTRY, Tool

CONFIRM_TOOL = "confirm_call"
REFUSE_TOOL = "refuse_call"

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


def mcp_tools(registry: dict[str, Tool] = REGISTRY) -> list[McpTool]:
    """Every registry tool, in name order, then the two answer tools."""
    return [describe(registry[name]) for name in sorted(registry)] + answer_tools()


__all__ = ["CONFIRM_TOOL", "REFUSE_TOOL", "annotations_for", "describe", "mcp_tools"]
