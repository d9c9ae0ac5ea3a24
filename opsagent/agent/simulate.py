"""Run the agent against the simulator for a while: the `opsagent agent run` library call.

Wires the shipped pieces (policy, playbooks, detectors, gate, audit store,
approval queue) to a `SimCluster`, reconciles every `step_seconds` of
simulated time, and returns every run report. With `approve_as`, that person
approves each request they are allowed to approve (a demo stand-in for a
human; nobody is impersonated: the audit log names them as the approver).
It never touches a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsagent.agent.config import AgentConfig
from opsagent.agent.runner import Agent, RunReport
from opsagent.approvals import ApprovalQueue
from opsagent.cluster.sim import SimCluster


@dataclass
class SimulationResult:
    reports: list[RunReport] = field(default_factory=list)
    waiting: list[tuple[str, int]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def run_on_simulator(*, scenario: Any, policies: Path, playbooks: Path, db: Path, hours: float, step_seconds: float,
                     planner: str, config: AgentConfig, approve_as: str | None = None,
                     seed: int | None = None) -> SimulationResult:
    from opsagent.runtime import build_agent, open_runtime  # the runtime builds agents itself: import late

    sim = SimCluster(scenario, seed=seed)
    runtime = open_runtime(cluster_obj=sim, clock=sim.clock, policies=policies, db=db)
    store, queue, policy = runtime.audit, runtime.approvals, runtime.policy
    try:
        agent = build_agent(runtime, db=db, playbooks=playbooks, model=config.model if planner == "llm" else None, base_url=config.base_url,
                            config=config, planner=planner)
        result, seen = SimulationResult(), set()
        with agent:
            for _ in range(max(1, int(hours * 3600 / step_seconds))):
                sim.advance(step_seconds)
                batch = agent.reconcile_once() + (_approve(agent, queue, policy, approve_as) if approve_as else [])
                for report in batch:  # a waiting or held run reports the same thing every cycle: show it once
                    key = (report.run_id, report.status, len(report.actions), report.summary)
                    if key not in seen:
                        seen.add(key)
                        result.reports.append(report)
            result.waiting = agent.waiting()
        stats = sim.stats()
        result.stats = {k: v for k, v in stats.model_dump(mode="json").items() if k != "samples"} if hasattr(stats, "model_dump") else {}
        return result
    finally:
        store.close()


def _approve(agent: Agent, queue: ApprovalQueue, policy: Any, person: str) -> list[RunReport]:
    reports = []
    for thread_id, approval_id in agent.waiting():
        approval = queue.get(approval_id)
        if approval is None or approval.state != "pending":
            continue
        if not any(policy.actor_matches(person, name) for name in approval.approvers):
            continue
        queue.approve(approval_id, by=person)
        reports.append(agent.resume(thread_id, approval_id=approval_id, decided_state="approved", approver=person))
    return reports


def checkpoint_path_for(db: Path) -> Path:
    """Agent checkpoints live in the same SQLite file as the audit log and approvals (their own tables)."""
    return db
