"""The typed tools the agent calls, in three risk classes: read, write, architectural.

`REGISTRY` maps each tool name to its definition; `get_tool(name)` looks one up.
Tools act only through the `Cluster` port in the `ToolContext` the gate gives
them. Nothing here decides whether a call may run: that is `opsagent.gate`.
"""

from tools.base import Outcome, Target, Tool, ToolContext, ToolInput
from tools.registry import REGISTRY, closest_names, get_tool, register, risk_table, schema_for

__all__ = ["REGISTRY", "Outcome", "Target", "Tool", "ToolContext", "ToolInput", "closest_names", "get_tool", "register",
           "risk_table", "schema_for"]
