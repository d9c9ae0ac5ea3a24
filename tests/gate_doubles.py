"""Collaborators for gate tests: a real but empty policy, and an approval sink that keeps requests in memory.

The gate refuses to start without each of its ports, so tests that decide by
a table (`doubles.cluster.decide_by_table`) still hand it a real `Policy`: one
with no rules, no intents and no groups, whose answers to the gate's own
questions (who matches an approver, which intent applies, the blast radius)
are those of a policy that declares nothing.
"""

from __future__ import annotations

from datetime import timedelta

from opsagent.clock import Clock
from opsagent.model import Approval, Decision, ToolCall
from opsagent.policy.policy import Policy
from tools import risk_table


def bare_policy(*, max_workloads_per_run: int | None = None, groups: dict[str, tuple[str, ...]] | None = None) -> Policy:
    return Policy(files=(), scopes=(), groups=groups or {}, intents=(), rules=(), limits=(), mode="enforce",
                  approval_ttl=timedelta(hours=1), max_workloads_per_run=max_workloads_per_run, default_approvers=(),
                  tool_risks=risk_table())


class MemorySink:
    """An approval sink that keeps requests in memory (ids from 1)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.requested: list[Approval] = []

    def request(self, *, call: ToolCall, decision: Decision, run_id: str | None) -> Approval:
        now = self.clock.now()
        approval = Approval(id=len(self.requested) + 1, call=call, args_hash=call.args_hash(), requested_by=call.actor,
                            approvers=decision.approvers, rule=decision.rule, created_at=now, expires_at=now + timedelta(hours=1),
                            thread_id=run_id)
        self.requested.append(approval)
        return approval
