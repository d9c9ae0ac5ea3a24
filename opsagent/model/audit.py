"""One line of the audit log, before it is stored (the store adds id and hashes).

Every proposal, decision, approval event, result and agent-run event becomes one
`AuditEntry`. Pure pydantic, no I/O: `opsagent.audit` stores and chains them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from opsagent.model.actions import Channel, Effect, Risk
from opsagent.model.cluster import Frozen

EntryKind = Literal[
    "proposal",   # a planner or person proposed a tool call
    "decision",   # the policy decided on it
    "approval",   # an approval changed state (requested, approved, rejected, expired)
    "result",     # the call ran (or failed) against the cluster
    "run",        # agent-run events: started, planner fallback, budget exhausted, finished
    "confirmation",  # a write waiting for the asker's yes changed state (proposed, confirmed, refused, expired)
    "lease",      # a time-boxed wake changed state (started, extended, cancelled, expired, ended)
]
Outcome = Literal["ok", "error", "denied", "pending", "expired", "approved", "rejected", "invalid", "info", "confirmed"]


class AuditEntry(Frozen):
    time: datetime
    kind: EntryKind
    actor: str
    channel: Channel | str = "cli"
    run_id: str | None = Field(default=None, description="agent run / graph thread this belongs to")
    finding_id: str | None = None
    message: str | None = Field(default=None, description="chat message that led to it")
    tool: str | None = None
    args: dict[str, Any] | None = None
    risk: Risk | None = None
    decision: Effect | None = None
    rule_file: str | None = None
    rule_name: str | None = None
    approval_id: int | None = None
    dry_run: bool = False
    outcome: Outcome | None = None
    summary: str | None = Field(default=None, description="result summary, reason or error text")
    duration_ms: float | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    idempotency_key: str | None = Field(default=None, description="one per action, so a restart can tell what already ran")
    data: dict[str, Any] | None = Field(default=None, description="small structured extras (e.g. gpus_freed)")
