"""End to end through the real gate: a call the policy sends to people waits in the
approval queue, and once approved exactly that call runs, once, with every step in
the hash-chained audit log. The audit store is the gate's recorder here.
"""

from __future__ import annotations

import pytest

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.clock import VirtualClock
from opsagent.gate import Gate
from opsagent.model import ToolCall
from gate_doubles import bare_policy
from doubles.cluster import RecordingCluster, TinyCluster, decide_by_table


@pytest.fixture
def world(tmp_path):
    clock = VirtualClock()
    tiny = TinyCluster(clock=clock)
    tiny.add_node("gpu-1", gpus=8)
    tiny.add_workload("ml", "llm", replicas=1, gpus=1)
    cluster = RecordingCluster(tiny)
    store = AuditStore(tmp_path / "ops.db")
    policy = bare_policy(groups={"sre": ("carol",)})
    queue = ApprovalQueue(store, clock=clock, is_member=policy.actor_matches)
    decide = decide_by_table({"set_resources": "require_approval", "scale_workload": "allow"},
                             approvers=("alice", "group:sre"))
    gate = Gate(policy=policy, cluster=cluster, clock=clock, recorder=store, approvals=queue, decide=decide)
    yield gate, queue, store, cluster, tiny
    store.close()


CALL = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm", "gpus_per_replica": 2},
                actor="daemon", channel="daemon", finding_id="drift:ml/llm")


def test_approved_call_runs_exactly_once_and_the_story_is_audited(world):
    gate, queue, store, cluster, tiny = world
    pending = gate.submit(CALL, run_id="run-1")
    assert pending.status == "pending_approval" and pending.approval_id is not None
    assert cluster.writes == []
    approval = queue.approve(pending.approval_id, by="carol")
    result = queue.execute(approval.id, run=lambda a: gate.run_approved(a, approver="carol"))
    assert result.ok, result.message
    assert cluster.writes == [("set_template", {"ref": tiny.workloads["ml/llm"].ref, "gpus_per_replica": 2,
                                                "memory_mib": None, "dry_run": False})]
    assert tiny.workloads["ml/llm"].gpus_per_replica == 2
    assert queue.get(approval.id).state == "executed"
    # a second attempt, e.g. after a restart, runs nothing
    with pytest.raises(Exception, match="already executed"):
        queue.execute(approval.id, run=lambda a: gate.run_approved(a, approver="carol"))
    assert len(cluster.writes) == 1
    story = store.show(result.audit_id)
    kinds = [(r.kind, r.outcome) for r in story.rows]
    assert kinds[:4] == [("proposal", None), ("decision", None), ("approval", "pending"), ("result", "pending")]
    assert kinds[4:] == [("approval", "approved"), ("approval", "info"),        # approved, execution claimed
                         ("proposal", None), ("decision", None), ("result", "ok"),  # the gate re-decides and runs
                         ("approval", "ok"),                                        # marked executed
                         ("approval", "denied")]                                    # the refused second attempt
    assert store.verify().ok
    assert store.count_recent(tool="set_resources", namespace="ml", actor=None, since=tiny.clock.now()) == 1


def test_an_approval_for_other_arguments_runs_nothing(world):
    gate, queue, store, cluster, _ = world
    pending = gate.submit(CALL, run_id="run-1")
    approval = queue.approve(pending.approval_id, by="alice")
    forged = approval.model_copy(update={"call": CALL.model_copy(update={"args": {**CALL.args, "gpus_per_replica": 8}})})
    result = queue.execute(approval.id, run=lambda a: gate.run_approved(forged, approver="alice"))
    assert result.status == "denied" and "hash mismatch" in result.message
    assert cluster.writes == []
    assert queue.get(approval.id).state == "failed"
    assert store.verify().ok


def test_allowed_calls_are_recorded_with_their_target(world):
    gate, _, store, cluster, _ = world
    result = gate.submit(ToolCall(tool="scale_workload", args={"namespace": "ml", "name": "llm", "replicas": 0},
                                  actor="daemon", channel="daemon"), run_id="run-2")
    assert result.ok and len(cluster.writes) == 1
    rows = store.list(run_id="run-2", limit=None)
    assert [r.kind for r in reversed(rows)] == ["proposal", "decision", "result"]
    assert all(r.namespace == "ml" and r.workload == "llm" for r in rows)


def test_the_agent_finds_an_approved_calls_result_under_the_key_the_gate_writes(world):
    """On resume after an approval, the agent looks up the approved call's result before running it."""
    from opsagent.gate.keys import executed_key
    from opsagent.gate.ledger import recorded_result

    gate, queue, store, cluster, tiny = world
    pending = gate.submit(CALL, run_id="run-1")
    approval = queue.approve(pending.approval_id, by="carol")
    assert recorded_result(store, executed_key(approval.id), tool=CALL.tool) is None  # nothing ran yet
    ran = queue.execute(approval.id, run=lambda a: gate.run_approved(a, approver="carol"))
    found = recorded_result(store, executed_key(approval.id), tool=CALL.tool)
    assert found is not None and found.status == "ok" and found.audit_id == ran.audit_id
    assert len(cluster.writes) == 1
