"""Planners: given what the run knows so far, propose the next tool calls or say it is done.

Three kinds share one Protocol: the offline planner (a playbook's steps, in
order, no model), the LLM planner (ChatOllama or any chat model with
`bind_tools`), and anything a test scripts. A planner never runs a tool: it
only proposes; the graph hands proposals to the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from opsagent.model import Finding, Snapshot


@dataclass(frozen=True)
class ProposedCall:
    tool: str
    args: dict[str, Any]
    id: str


@dataclass(frozen=True)
class PlanInput:
    """Everything a planner may read for one planning round."""

    run_id: str
    kind: str
    actor: str
    finding: Finding | None
    message: str | None
    snapshot: Snapshot
    playbook: Any | None            # opsagent.playbooks.Playbook, when one matches
    results: list[dict[str, Any]]   # earlier results in this run (see AgentState.results)
    messages: list[BaseMessage]     # the conversation so far (LLM planners)
    policy_summary: str = ""


@dataclass(frozen=True)
class Plan:
    """A planner's answer. `failure` set means the output was unusable (counts toward fallback);
    `unreachable` that the model server could not be reached at all (falls back at once)."""

    calls: tuple[ProposedCall, ...] = ()
    done: bool = False
    text: str = ""
    new_messages: tuple[BaseMessage, ...] = ()
    failure: str | None = None
    unreachable: bool = False
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Planner(Protocol):
    name: str

    def plan(self, inp: PlanInput) -> Plan: ...


__all__ = ["Plan", "PlanInput", "Planner", "ProposedCall"]
