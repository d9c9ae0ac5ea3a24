"""Who may run an approved call is decided by the policy in force when it runs.

Spec: a request is made under policy P1, whose rule names group:a as the
approvers. The policy then changes to P2, which names group:b for the same
call. When the approved call runs, the gate decides it again under P2, and
the approver must be one of P2's approvers: alice (group:a) is refused, the
refusal is in the audit log (a `decision` denied by the built-in
approval-invalid rule, naming both sets of approvers, and a `denied` result),
the approval is marked failed, and nothing reaches the cluster; bob
(group:b) runs the call, once. When P2 would run the call without anyone's
approval, the approvers stored with the request still apply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.gate import Gate
from opsagent.model import ToolCall, WorkloadRef
from opsagent.policy import load_policy
from doubles.cluster import RecordingCluster
from tools import risk_table

sim_mod = pytest.importorskip("opsagent.cluster.sim")

LLM = WorkloadRef(namespace="inference", name="llm")
SCENARIO = """
name: approvers
start: 2026-01-06T10:00:00Z
nodes:
  - name: gpu-node
    gpus: [{count: 4, link: 16, switch: "0"}]
workloads:
  - {namespace: inference, name: llm, image: "llm:1", replicas: 1, gpus: 1}
"""
POLICY = """
mode: enforce
groups:
  a: [alice]
  b: [bob]
rules:
  - name: scaling-llm
    tools: [scale_workload]
    namespaces: [inference]
    effect: {effect}
    approvers: [{approvers}]
    reason: scaling the model server is signed off by its owners
"""


def policy(tmp_path: Path, name: str, *, approvers: str, effect: str = "require_approval"):
    folder = tmp_path / name
    folder.mkdir()
    text = POLICY.replace("{effect}", effect).replace("{approvers}", approvers)
    if effect != "require_approval":
        text = text.replace(f"    approvers: [{approvers}]\n", "")
    (folder / "policy.yaml").write_text(text)
    return load_policy(folder, tool_risks=risk_table())


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.sim = sim_mod.SimCluster(sim_mod.parse_scenario(SCENARIO))
        self.cluster = RecordingCluster(self.sim)
        self.p1 = policy(tmp_path, "p1", approvers="group:a")
        self.store = AuditStore(tmp_path / "audit.db")
        self.queue = ApprovalQueue(self.store, clock=self.sim.clock, is_member=self.p1.actor_matches)

    def gate(self, policy) -> Gate:
        return Gate(policy=policy, cluster=self.cluster, clock=self.sim.clock, recorder=self.store, approvals=self.queue)

    def request(self):
        call = ToolCall(tool="scale_workload", args={"namespace": "inference", "name": "llm", "replicas": 2},
                        actor="mallory", channel="cli")
        pending = self.gate(self.p1).submit(call)
        assert pending.status == "pending_approval"
        approval = self.queue.get(pending.approval_id)
        assert approval.approvers == ("group:a",)
        return approval


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


def test_an_approver_named_only_by_the_old_policy_is_refused_and_audited(world, tmp_path):
    approval = world.request()
    p2 = policy(tmp_path, "p2", approvers="group:b")
    approved = world.queue.approve(approval.id, by="alice")  # the queue still holds P1's approvers
    gate = world.gate(p2)
    result = world.queue.execute(approved.id, run=lambda a: gate.run_approved(a, approver="alice"))
    assert result.status == "denied"
    assert "alice is not one of the approvers the policy in force names" in result.message
    assert "group:b" in result.message and "group:a" in result.message
    assert world.cluster.writes == []
    assert world.queue.get(approved.id).state == "failed"
    rows = [r for r in world.store.list(limit=1000) if r.approval_id == approved.id]
    decision = next(r for r in rows if r.kind == "decision")
    assert (decision.decision, decision.rule_name, decision.actor) == ("deny", "approval-invalid", "mallory")
    assert "group:b" in decision.summary
    ran = [r for r in world.store.list(kind="result", limit=1000) if (r.data or {}).get("approver")]
    assert [(r.outcome, r.data["approver"], r.data["approval_id"]) for r in ran] == [("denied", "alice", approved.id)]
    assert world.store.verify().ok


def test_an_approver_named_by_the_policy_in_force_runs_the_call_once(world, tmp_path):
    approval = world.request()
    gate = world.gate(policy(tmp_path, "p2", approvers="group:b"))
    # bob approved under P2 (the request still lists P1's approvers; the gate judges by the policy in force)
    by_bob = approval.model_copy(update={"state": "approved", "decided_by": "bob"})
    result = gate.run_approved(by_bob, approver="bob")
    assert result.ok, result.message
    assert world.cluster.writes == [("scale", {"ref": LLM, "replicas": 2, "dry_run": False})]
    assert gate.run_approved(by_bob, approver="bob").data.get("replayed") is True
    assert len(world.cluster.writes) == 1


def test_an_unchanged_policy_still_refuses_someone_it_does_not_name(world):
    approval = world.request()
    by_bob = approval.model_copy(update={"state": "approved", "decided_by": "bob"})
    result = world.gate(world.p1).run_approved(by_bob, approver="bob")
    assert result.status == "denied" and result.message.endswith("bob is not one of the approvers: group:a")
    assert world.cluster.writes == []


def test_when_the_policy_in_force_needs_no_approval_the_requests_approvers_still_apply(world, tmp_path):
    approval = world.request()
    gate = world.gate(policy(tmp_path, "p2", approvers="", effect="allow"))
    by_bob = approval.model_copy(update={"state": "approved", "decided_by": "bob"})
    assert gate.run_approved(by_bob, approver="bob").status == "denied"
    by_alice = approval.model_copy(update={"state": "approved", "decided_by": "alice"})
    assert gate.run_approved(by_alice, approver="alice").ok
    assert len(world.cluster.writes) == 1


def test_the_queue_asks_the_gate_who_may_approve_under_the_policy_in_force(world, tmp_path):
    from opsagent.approvals import NotAuthorized

    approval = world.request()
    gate = world.gate(policy(tmp_path, "p2", approvers="group:b"))
    world.queue.current_approvers = gate.approvers_now  # as the runtime wires it
    with pytest.raises(NotAuthorized, match="under the policy in force .*group:b.*made when they were group:a"):
        world.queue.approve(approval.id, by="alice")
    approved = world.queue.approve(approval.id, by="bob")
    result = world.queue.execute(approved.id, run=lambda a: gate.run_approved(a, approver="bob"))
    assert result.ok, result.message
    assert world.cluster.writes == [("scale", {"ref": LLM, "replicas": 2, "dry_run": False})]
    refusals = [r for r in world.store.list(kind="approval", limit=100) if r.outcome == "denied" or "refused" in (r.summary or "")]
    assert refusals and refusals[0].actor == "alice"
