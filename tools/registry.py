"""The catalogue of tools, by name: what a planner may ask the gate to run.

Built once from the three families. It holds definitions only; running a tool
is the gate's job (`opsagent.gate.Gate`), never the registry's. Everything
else that must know the tools reads it from here: the policy loader its risk
table (`risk_table()`, handed over by whoever loads the policy), recovery its
effect checks, chat its rendering, docs/tools.md its text.
"""

from __future__ import annotations

import difflib
from typing import Any

from tools.architectural import ARCHITECTURAL_TOOLS
from tools.base import ResultData, Tool, ToolInput
from tools.read import READ_TOOLS
from tools.write import WRITE_TOOLS


RISKS = ("read", "write", "architectural")


def missing_parts(tool: Tool) -> list[str]:
    """The parts of a tool's bundle it fails to declare: every tool needs an input model (a ToolInput), a risk class,
    a typed result model (a ResultData) and a phrase; a tool that writes also an effect check and a chat rendering.
    (A chat form is optional: not every tool has a command people type.)"""
    missing = []
    if not (isinstance(tool.input_model, type) and issubclass(tool.input_model, ToolInput)):
        missing.append("input_model (a ToolInput subclass)")
    if tool.risk not in RISKS:
        missing.append(f"risk (one of {', '.join(RISKS)}; got {tool.risk!r})")
    if not (isinstance(tool.result_model, type) and issubclass(tool.result_model, ResultData)):
        missing.append("result_model (a ResultData subclass describing its result's data)")
    if tool.phrase is None:
        missing.append("phrase (how a pending call reads in an approval request)")
    if tool.risk != "read":
        if tool.effect is None:
            missing.append("effect (how recovery checks the change after a crash; tools.effects.unchecked when it cannot)")
        if tool.show is None:
            missing.append("show (what chat shows after an ok result)")
    return missing


def _admit(tool: Tool, registry: dict[str, Tool]) -> None:
    missing = missing_parts(tool)
    if missing:
        raise ValueError(f"tool {tool.name!r} is not declared whole: it lacks {'; '.join(missing)} (see tools/base.py, Tool)")
    if tool.name in registry:
        raise ValueError(f"tool {tool.name!r} is defined twice")


def _build(*families: tuple[Tool, ...]) -> dict[str, Tool]:
    registry: dict[str, Tool] = {}
    for family in families:
        for tool in family:
            _admit(tool, registry)
            registry[tool.name] = tool
    return registry


REGISTRY: dict[str, Tool] = _build(READ_TOOLS, WRITE_TOOLS, ARCHITECTURAL_TOOLS)


def register(tool: Tool) -> Tool:
    """Add one tool to the catalogue: declared whole (`missing_parts`), and a name only once."""
    _admit(tool, REGISTRY)
    REGISTRY[tool.name] = tool
    return tool


def risk_table(registry: dict[str, Tool] | None = None) -> dict[str, str]:
    """Tool name -> risk class: what the policy loader needs to know of the tools."""
    return {name: tool.risk for name, tool in (REGISTRY if registry is None else registry).items()}


def get_tool(name: str) -> Tool | None:
    return REGISTRY.get(name)


def closest_names(name: str, names: list[str] | None = None, *, limit: int = 3) -> list[str]:
    """Valid tool names that look like `name` (for 'did you mean' messages)."""
    pool = sorted(names if names is not None else REGISTRY)
    return difflib.get_close_matches(str(name)[:100], pool, n=limit, cutoff=0.5)


def schema_for(tool: Tool) -> dict[str, Any]:
    """The function schema a model sees: name, description, JSON-schema parameters."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.input_model.model_json_schema()}
