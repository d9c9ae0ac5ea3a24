"""Assemble a `ChatService` from settings: the shared runtime (opsagent.runtime) plus an agent.

Used by `opsagent ask`, `opsagent chat` and `opsagent slack`, so every chat
front end runs with the same parts the daemon uses. Opening files and building
clients happens here (an edge of the system); errors come back as
`WiringError` with a message that names what to fix. It must not parse chat
text or talk to Slack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.chat.service import ActorResolver, ChatService, cli_actor
from opsagent.clock import Clock
from opsagent.cluster.port import ClusterReader
from opsagent.gate import Gate
from opsagent.runtime import RuntimeError_, build_agent, open_runtime


class WiringError(Exception):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class ChatRuntime:
    service: ChatService
    gate: Gate
    approvals: ApprovalQueue
    store: AuditStore
    cluster: ClusterReader  # read-only: only the gate writes
    policy: Any
    clock: Clock
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def build_runtime(*, cluster: str, policies: Path, db: Path, model: str | None = None, playbooks: Path | None = None,
                  base_url: str | None = None,
                  actor_resolver: ActorResolver = cli_actor, agent_factory: Callable[..., Any] | None = None,
                  watch: bool = False) -> ChatRuntime:
    """Open everything a chat front end needs. The caller closes it with `.close()`. `watch`: a long-running
    front end (a chat session, Slack) reads one watched cache on a real cluster (see `open_cluster`)."""
    try:
        rt = open_runtime(cluster=cluster, policies=Path(policies), db=db, watch=watch)
    except RuntimeError_ as exc:
        raise WiringError(str(exc), hint=exc.hint) from exc
    closers: list[Callable[[], None]] = [rt.audit.close]
    if agent_factory is not None:
        agent = agent_factory(model=model, gate=rt.gate, approvals=rt.approvals, store=rt.audit, policy=rt.policy,
                              cluster=rt.cluster, clock=rt.clock, db=db, playbooks=playbooks)
    else:
        # The agent plans with the LLM when `model` is set; offline it only resumes waiting runs.
        books = playbooks if playbooks is not None and Path(playbooks).is_dir() else None
        try:
            agent = build_agent(rt, db=db, playbooks=books, model=model, base_url=base_url)
        except ValueError as exc:
            raise WiringError(f"agent settings: {exc}") from exc
    if callable(getattr(agent, "close", None)):
        closers.insert(1, agent.close)
    service = ChatService(gate=rt.gate, approvals=rt.approvals, agent=agent, actor_resolver=actor_resolver,
                          clock=rt.clock, recorder=rt.audit)
    return ChatRuntime(service=service, gate=rt.gate, approvals=rt.approvals, store=rt.audit, cluster=rt.cluster,
                       policy=rt.policy, clock=rt.clock, closers=closers)
