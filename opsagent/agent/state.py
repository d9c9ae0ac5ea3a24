"""The agent graph's state: JSON-friendly, so checkpoints round-trip without custom types.

Only plain values and LangChain messages live here (a finding is a dict, a
result is a small dict). Planners and nodes convert to domain types at their
edges. No logic beyond the reducers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

RunKind = Literal["finding", "message"]
RunStatus = Literal["running", "done", "waiting_approval", "budget_exhausted", "failed"]


def _append(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    return list(left or []) + list(right or [])


class AgentState(TypedDict, total=False):
    run_id: str
    kind: RunKind
    finding: dict[str, Any] | None
    message: str | None
    actor: str
    actor_groups: list[str]           # the actor's cluster groups (policy: cluster-group:NAME)
    channel: str
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    failures: int                     # unusable model turns in a row (len(streak))
    streak: list[str]                 # why each of those turns was unusable
    step_base: int                    # `steps` when the current planner took over (its step budget counts from here)
    proposed: list[dict[str, Any]]    # calls planned for the next act: {tool, args, id, key}
    results: Annotated[list[dict[str, Any]], _append]  # {step, tool, args, status, message, key, approval_id}
    pending_approval: int | None
    planner: str
    fell_back: bool
    resolved: bool | None
    verify_waits: int                 # re-checks done after the planner finished
    planner_done: bool                # the planner said it has nothing more to do
    started_at: str                   # ISO time the run began
    spent_seconds: float              # clock time spent inside the graph's nodes (the time budget)
    finished_at: str | None           # ISO time the run ended (for the playbook's retry backoff)
    playbook: str | None              # the playbook chosen when a finding's run started
    status: RunStatus
    report: str
    compacted: bool                   # the run's checkpoints were pruned; this one keeps its outcome (see Agent.prune)


def initial_state(*, run_id: str, kind: RunKind, finding: dict[str, Any] | None, message: str | None,
                  actor: str, channel: str, planner: str, started_at: str, playbook: str | None = None,
                  actor_groups: tuple[str, ...] = ()) -> AgentState:
    return AgentState(
        run_id=run_id, kind=kind, finding=finding, message=message, actor=actor, actor_groups=list(actor_groups),
        channel=channel,
        messages=[], steps=0, llm_calls=0, prompt_tokens=0, completion_tokens=0, failures=0, streak=[], step_base=0,
        proposed=[], results=[], pending_approval=None, planner=planner, fell_back=False,
        resolved=None, planner_done=False, verify_waits=0, started_at=started_at, spent_seconds=0.0, status="running", report="",
        playbook=playbook,
    )
