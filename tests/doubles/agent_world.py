"""A small, complete world for agent tests and evals: tiny cluster, real gate, real audit.

`tiny_world(tmp_path, ...)` wires a `TinyCluster` (wrapped to record writes)
to the real `Gate`, a real `AuditStore` and `ApprovalQueue` on a SQLite file,
the shipped playbooks, and a toy idle detector (request rate zero while
holding GPUs), with policy decisions from a tool-name table. It builds the
`Agent` on request. For tests and evals only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsagent.agent import Agent, AgentConfig
from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.clock import VirtualClock
from opsagent.gate import Gate
from opsagent.model import Finding, Snapshot
from opsagent.playbooks import load_playbooks
from doubles.cluster import RecordingCluster, TinyCluster, decide_by_table

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TABLE = {
    "get_workload": "allow", "list_pods": "allow", "describe_pod": "allow", "list_workloads": "allow",
    "gpu_inventory": "allow", "get_rollout_history": "allow",
    "sleep_workload": "allow", "scale_workload": "allow", "restart_rollout": "allow", "undo_rollout": "allow",
    "set_resources": "require_approval", "delete_workload": "require_approval",
}


class Approvers:
    """The slice of a policy the gate and the queue ask about approvers."""

    max_workloads_per_run = None

    def actor_matches(self, actor: str, name: str) -> bool:
        return actor == name or (name == "group:sre" and actor in {"carol"})

    def intent_for(self, workload: object) -> None:
        return None  # the tiny world declares no intents

    def summary(self) -> str:
        return "mode: enforce\nrules: read tools allowed; sleep/scale/restart/undo allowed; architectural tools need group:sre."


def idle_findings(snapshot: Snapshot) -> list[Finding]:
    """Toy detector: a workload with replicas, GPUs and no traffic is idle."""
    return [Finding(kind="idle_gpu", subject=w.key, summary=f"{w.key} holds GPUs with no traffic",
                    details={"gpus_held": snapshot.gpus_held_by(w.ref)})
            for w in snapshot.workloads if w.replicas > 0 and w.gpus_per_replica > 0 and w.request_rate == 0]


@dataclass
class TinyWorld:
    tmp: Path
    clock: VirtualClock
    tiny: TinyCluster
    cluster: RecordingCluster
    store: AuditStore
    queue: ApprovalQueue
    gate: Gate
    playbooks: Any
    policy: Any = field(default_factory=Approvers)

    def agent(self, planner: Any = "offline", *, config: AgentConfig | None = None, **kw: Any) -> Agent:
        return Agent(gate=self.gate, policy=self.policy, playbooks=self.playbooks, observe=self.cluster.snapshot,
                     detect_fn=kw.pop("detect_fn", idle_findings), planner=planner,
                     checkpoint_path=self.tmp / "checkpoints.db", recorder=self.store, clock=self.clock,
                     config=config or AgentConfig(), approvals=self.queue, **kw)

    def close(self) -> None:
        self.queue.close() if hasattr(self.queue, "close") else None
        self.store.close()


def tiny_world(tmp: Path, *, table: dict[str, str] | None = None, db: str = "ops.db") -> TinyWorld:
    clock = VirtualClock()
    tiny = TinyCluster(clock=clock)
    tiny.add_node("gpu-1", gpus=8)
    tiny.add_workload("ml", "llm", replicas=2, gpus=1, request_rate=0.0)
    tiny.add_workload("ml", "chat", replicas=1, gpus=1, request_rate=3.0)
    tiny.add_workload("kube-system", "coredns", replicas=2, gpus=0, request_rate=50.0)
    cluster = RecordingCluster(tiny)
    store = AuditStore(tmp / db)
    policy = Approvers()
    queue = ApprovalQueue(store, clock=clock, is_member=policy.actor_matches)
    decide = decide_by_table(table or DEFAULT_TABLE, approvers=("group:sre",))
    gate = Gate(policy=policy, cluster=cluster, clock=clock, recorder=store, approvals=queue, decide=decide)
    return TinyWorld(tmp=tmp, clock=clock, tiny=tiny, cluster=cluster, store=store, queue=queue, gate=gate,
                     playbooks=load_playbooks(REPO / "playbooks"), policy=policy)


# --- the simulator, with the shipped policy and playbooks -------------------------

PEOPLE = ("alice", "bob", "carol", "dave")


@dataclass
class SimWorld:
    tmp: Path
    sim: Any
    policy: Any
    store: AuditStore
    queue: ApprovalQueue
    gate: Gate
    playbooks: Any

    def detect(self, snapshot: Snapshot) -> list[Finding]:
        from opsagent.detect import detect

        return detect(snapshot, intents=self.policy.intent_book, now=self.sim.clock.now())

    def agent(self, planner: Any = "offline", *, config: AgentConfig | None = None) -> Agent:
        return Agent(gate=self.gate, policy=self.policy, playbooks=self.playbooks, observe=self.sim.snapshot,
                     detect_fn=self.detect, planner=planner, checkpoint_path=self.tmp / "checkpoints.db",
                     recorder=self.store, clock=self.sim.clock, config=config or AgentConfig(),
                     approvals=self.queue, settle=lambda: self.sim.advance(120))

    def approve_waiting(self, agent: Agent) -> list[Any]:
        """A person approves every waiting run's request (someone the policy allows), then it resumes."""
        reports = []
        for thread_id, approval_id in agent.waiting():
            approval = self.queue.get(approval_id)
            if approval is None or approval.state != "pending":
                continue
            person = next((p for p in PEOPLE if any(self.policy.actor_matches(p, a) for a in approval.approvers)), None)
            if person is None:
                continue
            self.queue.approve(approval_id, by=person)
            reports.append(agent.resume(thread_id, approval_id=approval_id, decided_state="approved", approver=person))
        return reports

    def run(self, agent: Agent, *, hours: float = 24, step_seconds: float = 300, approve: bool = True) -> list[Any]:
        """Advance the simulation, reconcile every step, approve what waits; all run reports, in order."""
        reports: list[Any] = []
        for _ in range(int(hours * 3600 / step_seconds)):
            self.sim.advance(step_seconds)
            reports.extend(agent.reconcile_once())
            if approve:
                reports.extend(self.approve_waiting(agent))
        return reports

    def close(self) -> None:
        self.store.close()


def sim_world(tmp: Path, *, scenario: Any = "demo") -> SimWorld:
    from opsagent.cluster.sim import SimCluster, builtin_scenario
    from opsagent.policy import load_policy
    from tools.registry import risk_table

    sim = SimCluster(builtin_scenario(scenario) if isinstance(scenario, str) else scenario)
    policy = load_policy(REPO / "policies", tool_risks=risk_table())
    store = AuditStore(tmp / "ops.db")
    queue = ApprovalQueue(store, clock=sim.clock, is_member=policy.actor_matches)
    gate = Gate(policy=policy, cluster=sim, clock=sim.clock, recorder=store, approvals=queue, wait=sim.advance)
    return SimWorld(tmp=tmp, sim=sim, policy=policy, store=store, queue=queue, gate=gate,
                    playbooks=load_playbooks(REPO / "playbooks"))
