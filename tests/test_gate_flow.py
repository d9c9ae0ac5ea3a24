"""The gate end to end: shipped policies, the simulator, the real audit store and approval queue.

A table of calls that must run, go to a person or be refused (with the rule
that says so); then the approval path: a person approves exactly one call, it
runs once, and nothing else (other arguments, an expired approval, a policy
that now denies it) gets through. The audit log holds proposal → decision →
result for every call, and its hash chain verifies.
"""

from __future__ import annotations

import hashlib

from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.audit import AuditStore
from opsagent.approvals import ApprovalQueue
from opsagent.gate import Gate
from opsagent.model import ToolCall, WorkloadRef, canonical_json
from opsagent.policy import load_policy
from doubles.cluster import RecordingCluster
from tools import risk_table

sim_mod = pytest.importorskip("opsagent.cluster.sim")

POLICIES = Path(__file__).resolve().parent.parent / "policies"
LLM = WorkloadRef(namespace="inference", name="llm")
SCENARIO = """
name: gate
start: 2026-01-06T10:00:00Z
nodes:
  - name: gpu-node
    gpus: [{count: 8, link: 16, switch: "0"}]
workloads:
  - {namespace: render, name: render-ui, image: "render:1", replicas: 1, gpus: 1, traffic: {peak_rps: 0, curve: none}}
  - {namespace: inference, name: llm, image: "llm:1", replicas: 1, gpus: 2}
  - {namespace: training, name: trainer, image: "train:1", replicas: 1, gpus: 2}
  - {namespace: kube-system, name: coredns, image: "dns:1", replicas: 2}
"""


class World:
    def __init__(self, tmp_path: Path, policies: Path = POLICIES) -> None:
        self.sim = sim_mod.SimCluster(sim_mod.parse_scenario(SCENARIO))
        self.cluster = RecordingCluster(self.sim)
        self.policy = load_policy(policies, tool_risks=risk_table())
        self.store = AuditStore(tmp_path / "audit.db")
        self.queue = ApprovalQueue(self.store, clock=self.sim.clock, is_member=self.policy.actor_matches)
        self.gate = self.gate_for(self.policy)

    def gate_for(self, policy) -> Gate:
        return Gate(policy=policy, cluster=self.cluster, clock=self.sim.clock, recorder=self.store,
                    approvals=self.queue, wait=self.sim.advance)

    def kinds(self, run_id: str | None = None) -> list[str]:
        return [r.kind for r in sorted(self.store.list(limit=10_000), key=lambda r: r.id) if r.kind != "approval" and (run_id is None or r.run_id == run_id)]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


def call(tool: str, actor: str, channel: str = "cli", **args) -> ToolCall:
    return ToolCall(tool=tool, args=args, actor=actor, channel=channel)


TABLE = [
    # (tool, actor, args, expected status, rule named in the message or decision)
    ("list_workloads", "mallory", {}, "ok", "read-anything"),
    ("get_workload", "alice", {"namespace": "kube-system", "name": "coredns"}, "denied", "out-of-scope"),
    ("scale_workload", "carol", {"namespace": "kube-system", "name": "coredns", "replicas": 0}, "denied", "out-of-scope"),
    ("scale_workload", "carol", {"namespace": "inference", "name": "llm", "replicas": 2}, "ok", "oncall-may-operate"),
    ("scale_workload", "mallory", {"namespace": "inference", "name": "llm", "replicas": 2}, "pending_approval", "other-writes-need-oncall"),
    ("scale_workload", "daemon", {"namespace": "inference", "name": "llm", "replicas": 2}, "ok", "daemon-scales-within-bounds"),
    ("scale_workload", "daemon", {"namespace": "inference", "name": "llm", "replicas": 5}, "denied", "outside-intent-bounds"),
    ("scale_workload", "carol", {"namespace": "inference", "name": "llm", "replicas": 5}, "denied", "outside-intent-bounds"),
    ("scale_workload", "daemon", {"namespace": "training", "name": "trainer", "replicas": 0}, "denied", "daemon-leaves-training-alone"),
    ("sleep_workload", "erin", {"namespace": "render", "name": "render-ui"}, "ok", "render-team-runs-render"),
    ("set_resources", "alice", {"namespace": "inference", "name": "llm", "gpus_per_replica": 4}, "pending_approval", "architecture-needs-a-lead"),
    ("delete_workload", "daemon", {"namespace": "inference", "name": "llm"}, "pending_approval", "architecture-needs-a-lead"),
    ("change_policy", "carol", {"file": "x.yaml", "content": "rules: []", "reason": "r"}, "pending_approval", "architecture-needs-a-lead"),
    ("scale_workload", "carol", {"namespace": "inference", "name": "llm", "replicas": 5000}, "invalid", None),
    ("scale_workload", "carol", {"namespace": "inference", "name": "llm", "replicas": "2; rm -rf"}, "invalid", None),
    ("drop_database", "carol", {}, "invalid", None),
]


@pytest.mark.parametrize("tool,actor,args,status,rule", TABLE, ids=[f"{r[0]}-{r[1]}-{r[3]}" for r in TABLE])
def test_table_of_calls(world, tool, actor, args, status, rule):
    result = world.gate.submit(call(tool, actor, **args), run_id="table")
    assert result.status == status, result.message
    if rule is not None:
        assert result.decision is not None and result.decision.rule.name == rule
    if status in ("ok",):
        assert result.audit_id is not None
    else:
        assert [w for w in world.cluster.writes if w[0] != "snapshot"] == []
    expected = ["proposal", "result"] if status == "invalid" else ["proposal", "decision", "result"]
    assert world.kinds("table") == expected
    outcome = next(r for r in world.store.list(limit=100) if r.run_id == "table" and r.kind == "result")
    assert outcome.rule_name == rule  # the result row names the rule that let it through (or refused it)
    if status == "pending_approval":
        approval = world.queue.get(result.approval_id)
        assert approval.state == "pending" and approval.args_hash == call(tool, actor, **args).args_hash()
        assert str(result.approval_id) in result.message


def test_invalid_arguments_name_each_field(world):
    result = world.gate.submit(call("scale_workload", "carol", namespace="Inference!", name="llm", replicas=-1, force=True))
    assert result.status == "invalid"
    for field in ("namespace", "replicas", "force: unknown field"):
        assert field in result.message


def test_unknown_tool_suggests_the_closest(world):
    result = world.gate.submit(call("scale_workloads", "carol"))
    assert result.status == "invalid" and "did you mean: scale_workload" in result.message


def test_oversized_arguments_are_refused_unparsed(world):
    result = world.gate.submit(call("scale_workload", "carol", namespace="inference", name="llm", replicas=1, pad="x" * 20_000))
    assert result.status == "invalid" and "16384 bytes" in result.message
    proposal = world.store.list(limit=10)[0]
    args = {"namespace": "inference", "name": "llm", "replicas": 1, "pad": "x" * 20_000}
    text = canonical_json(args)
    assert proposal.args == {"_omitted": True, "_bytes": len(text), "_sha256": hashlib.sha256(text.encode()).hexdigest(),
                             "_prefix": text[:200]}
    assert (proposal.namespace, proposal.workload) == (None, None)  # the stand-in names no target


def test_an_approved_call_runs_once_and_only_as_approved(world):
    asked = call("scale_workload", "mallory", namespace="inference", name="llm", replicas=2)
    pending = world.gate.submit(asked, run_id="r1")
    assert pending.status == "pending_approval" and world.cluster.writes == []
    approval = world.queue.approve(pending.approval_id, by="carol")

    tampered = approval.model_copy(update={"call": asked.model_copy(update={"args": {**asked.args, "replicas": 50}})})
    refused = world.gate.run_approved(tampered, approver="carol")
    assert refused.status == "denied" and "hash mismatch" in refused.message
    assert world.cluster.writes == []

    result = world.queue.execute(approval.id, run=lambda a: world.gate.run_approved(a, approver="carol"))
    assert result.ok, result.message
    assert world.cluster.writes == [("scale", {"ref": LLM, "replicas": 2, "dry_run": False})]
    assert world.queue.get(approval.id).state == "executed"

    again = world.gate.run_approved(approval, approver="carol")  # same approval replayed directly
    assert again.data.get("replayed") is True
    assert len(world.cluster.writes) == 1
    assert world.store.verify().ok


def test_an_expired_or_unapproved_approval_does_not_run(world):
    pending = world.gate.submit(call("scale_workload", "mallory", namespace="inference", name="llm", replicas=2))
    waiting = world.queue.get(pending.approval_id)
    assert world.gate.run_approved(waiting, approver="carol").status == "denied"
    approval = world.queue.approve(pending.approval_id, by="carol")
    world.sim.advance(2 * 3600)
    late = world.gate.run_approved(approval, approver="carol")
    assert late.status == "denied" and "expired" in late.message
    assert world.cluster.writes == []


def test_an_approver_who_did_not_decide_cannot_run_it(world):
    pending = world.gate.submit(call("scale_workload", "mallory", namespace="inference", name="llm", replicas=2))
    approval = world.queue.approve(pending.approval_id, by="carol")
    assert world.gate.run_approved(approval, approver="mallory").status == "denied"
    assert world.cluster.writes == []


def test_a_policy_that_now_denies_stops_an_approved_call(world, tmp_path):
    pending = world.gate.submit(call("scale_workload", "mallory", namespace="inference", name="llm", replicas=2))
    approval = world.queue.approve(pending.approval_id, by="carol")
    strict = tmp_path / "strict"
    strict.mkdir()
    (strict / "only-reads.yaml").write_text("groups:\n  platform-oncall: [carol]\nrules:\n  - name: reads-only\n    risk: read\n    effect: allow\n")
    result = world.gate_for(load_policy(strict, tool_risks=risk_table())).run_approved(approval, approver="carol")
    assert result.status == "denied" and result.decision.rule.name == "default-deny"
    assert world.cluster.writes == []


def test_architectural_change_runs_only_after_a_lead_approves(world):
    bounds = call("set_replica_bounds", "carol", namespace="inference", name="llm", min=0, max=2)
    pending = world.gate.submit(bounds, run_id="arch")
    assert pending.status == "pending_approval" and world.cluster.writes == []
    approval = world.queue.approve(pending.approval_id, by="alice")
    result = world.queue.execute(approval.id, run=lambda a: world.gate.run_approved(a, approver="alice"))
    assert result.ok, result.message
    assert world.sim.snapshot().workload(LLM).annotations["opsagent.dev/max-replicas"] == "2"
    assert [w[0] for w in world.cluster.writes] == ["annotate"]


def test_a_planner_call_id_is_never_run_twice(world):
    first = call("scale_workload", "carol", namespace="inference", name="llm", replicas=2).model_copy(update={"id": "tc-1"})
    assert world.gate.submit(first, run_id="r9").ok
    again = world.gate.submit(first, run_id="r9")
    assert again.data.get("replayed") is True and len(world.cluster.writes) == 1


def test_steps_are_in_order_and_the_chain_verifies(world):
    for actor in ("carol", "mallory", "daemon"):
        world.gate.submit(call("sleep_workload", actor, namespace="inference", name="llm"), run_id=f"run-{actor}")
    for actor in ("carol", "mallory", "daemon"):
        assert world.kinds(f"run-{actor}") == ["proposal", "decision", "result"]
    report = world.store.verify()
    assert report.ok and report.rows >= 9


def test_rate_limit_counts_come_from_the_audit_log(world, tmp_path):
    limited = tmp_path / "limited"
    limited.mkdir()
    (limited / "p.yaml").write_text(
        "rules:\n  - name: oncall\n    risk: [read, write]\n    actors: [carol]\n    effect: allow\n"
        "limits:\n  - name: two-scales\n    tools: [scale_workload]\n    max: 2\n    per: 1h\n"
    )
    gate = world.gate_for(load_policy(limited, tool_risks=risk_table()))
    results = [gate.submit(call("scale_workload", "carol", namespace="inference", name="llm", replicas=n % 2 + 1)) for n in range(3)]
    assert [r.status for r in results] == ["ok", "ok", "denied"]
    assert "two-scales" in results[2].message
    world.sim.advance(timedelta(hours=1, minutes=1).total_seconds())
    assert gate.submit(call("scale_workload", "carol", namespace="inference", name="llm", replicas=1)).ok


def test_blast_radius_caps_distinct_workloads_per_run(world, tmp_path):
    capped = tmp_path / "capped"
    capped.mkdir()
    (capped / "p.yaml").write_text(
        "max_workloads_per_run: 1\nrules:\n  - name: oncall\n    risk: [read, write]\n    actors: [carol]\n    effect: allow\n"
    )
    gate = world.gate_for(load_policy(capped, tool_risks=risk_table()))
    assert gate.submit(call("scale_workload", "carol", namespace="inference", name="llm", replicas=2), run_id="b").ok
    assert gate.submit(call("scale_workload", "carol", namespace="inference", name="llm", replicas=1), run_id="b").ok
    third = gate.submit(call("scale_workload", "carol", namespace="render", name="render-ui", replicas=0), run_id="b")
    assert third.status == "denied"
    assert gate.submit(call("scale_workload", "carol", namespace="render", name="render-ui", replicas=0), run_id="c").ok


def test_wake_uses_the_intents_warm_replicas_and_timeout(world, tmp_path):
    warm = tmp_path / "warm"
    warm.mkdir()
    (warm / "p.yaml").write_text(
        "intents:\n  - name: llm\n    selector: {namespace: inference, names: [llm]}\n"
        "    wake: {warm_replicas: 2, timeout: 20m}\n"
        "rules:\n  - name: wake\n    tools: [wake_workload, sleep_workload]\n    actors: [wake-proxy]\n    effect: allow\n"
    )
    gate = world.gate_for(load_policy(warm, tool_risks=risk_table()))
    assert gate.submit(call("sleep_workload", "wake-proxy", "wake-proxy", namespace="inference", name="llm")).ok
    world.sim.advance(120)
    result = gate.submit(call("wake_workload", "wake-proxy", "wake-proxy", namespace="inference", name="llm"))
    assert result.ok, result.message
    assert result.data["replicas"] == 2 and result.data["ready_replicas"] == 2
    assert 0 < result.data["waited_seconds"] <= 20 * 60
    assert world.sim.snapshot().workload(LLM).ready_replicas == 2


def test_no_write_once_leadership_is_lost(world):
    """The daemon points `gate.leading` at its leader: once the Lease is lost, an allowed write is refused and audited."""
    leading = [True]
    world.gate.leading = lambda: leading[0]
    assert world.gate.submit(call("list_workloads", "daemon"), run_id="r").status == "ok"
    leading[0] = False
    result = world.gate.submit(call("scale_workload", "daemon", namespace="inference", name="llm", replicas=2), run_id="lost")
    assert result.status == "error" and result.data["error"] == "NotLeader" and "lost leadership" in result.message
    assert [w for w in world.cluster.writes if w[0] != "snapshot"] == []
    assert world.gate.submit(call("list_workloads", "daemon"), run_id="r2").status == "ok"   # reads still run
    assert world.kinds("lost") == ["proposal", "decision", "result"]
