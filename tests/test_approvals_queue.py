"""The approval queue: who may approve, expiry on a virtual clock, exact-call binding,
at-most-once execution, and that every transition and refusal is in the audit log.

Real SQLite files throughout; a restart is a new AuditStore/ApprovalQueue on the same file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from opsagent.approvals import (
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalQueue,
    ExecutionInterrupted,
    NotApproved,
    NotAuthorized,
    SelfApproval,
    verify_call,
)
from opsagent.audit import AuditStore
from opsagent.clock import VirtualClock
from opsagent.model import Decision, RuleRef, ToolCall, ToolResult

CALL = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm", "gpus": 4}, actor="daemon",
                channel="daemon", finding_id="drift:ml/llm")
DECISION = Decision(effect="require_approval", rule=RuleRef(file="policies/default.yaml", name="architecture"),
                    reason="architectural change", approvers=("alice", "group:sre"), expires_after_seconds=600)
GROUPS = {"sre": {"carol", "dave"}}


def is_member(actor: str, name: str) -> bool:
    if name.startswith("group:"):
        return actor in GROUPS.get(name[6:], set())
    return actor == name


@pytest.fixture
def clock():
    return VirtualClock()


@pytest.fixture
def queue(tmp_path, clock):
    q = ApprovalQueue(tmp_path / "ops.db", clock=clock, is_member=is_member)
    yield q
    q.close()


def approval_rows(queue: ApprovalQueue, approval_id: int):
    return [r for r in reversed(queue.store.list(kind="approval", limit=None)) if r.approval_id == approval_id]


def test_request_binds_the_exact_call_and_is_audited(queue, clock):
    a = queue.request(call=CALL, decision=DECISION, run_id="run-9")
    assert a.state == "pending" and a.args_hash == CALL.args_hash() and a.requested_by == "daemon"
    assert a.approvers == ("alice", "group:sre") and a.thread_id == "run-9"
    assert a.expires_at == clock.now() + timedelta(seconds=600)
    assert queue.get(a.id) == a
    rows = approval_rows(queue, a.id)
    assert [(r.outcome, r.data["event"]) for r in rows] == [("pending", "requested")]
    assert rows[0].run_id == "run-9" and rows[0].rule_name == "architecture" and rows[0].tool == "set_resources"


def test_default_ttl_applies_when_the_decision_names_none(queue, clock):
    a = queue.request(call=CALL, decision=DECISION.model_copy(update={"expires_after_seconds": None}))
    assert a.expires_at == clock.now() + timedelta(seconds=3600)


def test_the_same_pending_call_is_not_requested_twice(queue):
    first = queue.request(call=CALL, decision=DECISION, run_id="run-9")
    again = queue.request(call=CALL, decision=DECISION, run_id="run-9")
    assert again.id == first.id and len(queue.list()) == 1
    other = queue.request(call=CALL.model_copy(update={"args": {**CALL.args, "gpus": 8}}), decision=DECISION)
    assert other.id != first.id


def test_named_person_and_group_member_may_approve(queue):
    a = queue.request(call=CALL, decision=DECISION)
    done = queue.approve(a.id, by="carol", comment="capacity is there")
    assert done.state == "approved" and done.decided_by == "carol" and done.comment == "capacity is there"
    assert [r.outcome for r in approval_rows(queue, a.id)] == ["pending", "approved"]
    assert queue.list(state="approved") == [done]


@pytest.mark.parametrize(("actor", "error"), [
    ("daemon", SelfApproval),      # the requester
    ("mallory", NotAuthorized),    # not named, not in the group
    ("wake-proxy", NotAuthorized),  # machine actors never approve
])
def test_refused_approvers_raise_and_are_audited(queue, actor, error):
    a = queue.request(call=CALL, decision=DECISION)
    with pytest.raises(error):
        queue.approve(a.id, by=actor)
    assert queue.get(a.id).state == "pending"
    last = approval_rows(queue, a.id)[-1]
    assert last.outcome == "denied" and last.actor == actor and error.__name__ in last.summary


def test_a_person_cannot_approve_their_own_chat_request(queue):
    a = queue.request(call=CALL.model_copy(update={"actor": "alice", "channel": "slack"}), decision=DECISION)
    with pytest.raises(SelfApproval, match="alice asked for this call"):
        queue.approve(a.id, by="alice")
    assert queue.approve(a.id, by="dave").state == "approved"


def test_exact_match_without_is_member_and_no_approvers_means_nobody(tmp_path, clock):
    q = ApprovalQueue(tmp_path / "x.db", clock=clock)
    a = q.request(call=CALL, decision=DECISION)
    with pytest.raises(NotAuthorized):
        q.approve(a.id, by="carol")  # group membership is unknown without is_member
    assert q.approve(a.id, by="alice").state == "approved"
    b = q.request(call=CALL.model_copy(update={"args": {"x": 1}}), decision=DECISION.model_copy(update={"approvers": ()}))
    with pytest.raises(NotAuthorized, match="names no approvers"):
        q.approve(b.id, by="alice")
    q.close()


def test_expiry_on_a_virtual_clock(queue, clock):
    a = queue.request(call=CALL, decision=DECISION)
    b = queue.request(call=CALL.model_copy(update={"args": {"x": 2}}), decision=DECISION.model_copy(update={"expires_after_seconds": 5000}))
    clock.advance(599)
    assert queue.expire_due() == []
    clock.advance(1)
    expired = queue.expire_due()
    assert [x.id for x in expired] == [a.id] and expired[0].state == "expired"
    assert queue.get(b.id).state == "pending"
    with pytest.raises(AlreadyDecided, match="already expired"):
        queue.approve(a.id, by="alice")
    assert [r.outcome for r in approval_rows(queue, a.id)] == ["pending", "expired", "denied"]


def test_approving_after_expiry_without_a_sweep_is_refused(queue, clock):
    a = queue.request(call=CALL, decision=DECISION)
    clock.advance(601)
    with pytest.raises(ApprovalExpired):
        queue.approve(a.id, by="alice")
    assert queue.get(a.id).state == "expired"
    assert [r.outcome for r in approval_rows(queue, a.id)] == ["pending", "expired", "denied"]


def test_decided_requests_cannot_be_decided_again(queue):
    a = queue.request(call=CALL, decision=DECISION)
    queue.reject(a.id, by="carol", reason="use a smaller GPU")
    with pytest.raises(AlreadyDecided, match="already rejected by carol"):
        queue.approve(a.id, by="alice")
    with pytest.raises(AlreadyDecided):
        queue.reject(a.id, by="alice", reason="again")
    with pytest.raises(ApprovalNotFound):
        queue.approve(999, by="alice")
    assert queue.store.list(approval_id=None, outcome="denied", limit=None)  # the refusals are logged
    with pytest.raises(ValueError, match="reason"):
        queue.reject(a.id, by="alice", reason=" ")


def test_the_requester_may_withdraw_but_strangers_may_not_reject(queue):
    a = queue.request(call=CALL, decision=DECISION)
    with pytest.raises(NotAuthorized):
        queue.reject(a.id, by="mallory", reason="no")
    assert queue.reject(a.id, by="daemon", reason="finding resolved itself").state == "rejected"


def test_verify_call_refuses_changed_arguments(queue):
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="alice")
    assert verify_call(a, CALL)
    assert verify_call(a, CALL.model_copy(update={"actor": "someone", "channel": "cli"}))  # who asks is not bound
    assert not verify_call(a, CALL.model_copy(update={"args": {**CALL.args, "gpus": 8}}))
    assert not verify_call(a, CALL.model_copy(update={"tool": "set_gpu_placement"}))


def ok_result(approval):
    return ToolResult(status="ok", tool=approval.call.tool, message="resources set")


def test_execute_runs_once_and_records_it(queue):
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="alice")
    runs = []
    result = queue.execute(a.id, run=lambda ap: runs.append(ap) or ok_result(ap))
    assert result.ok and len(runs) == 1 and runs[0].args_hash == CALL.args_hash()
    assert queue.get(a.id).state == "executed" and queue.result_summary(a.id) == "resources set"
    with pytest.raises(AlreadyDecided, match="already executed"):
        queue.execute(a.id, run=lambda ap: runs.append(ap) or ok_result(ap))
    assert len(runs) == 1
    assert queue.store.has_key(ApprovalQueue.execution_key(a.id))
    assert queue.store.verify().ok


def test_execute_of_a_pending_request_is_refused(queue):
    a = queue.request(call=CALL, decision=DECISION)
    with pytest.raises(NotApproved):
        queue.execute(a.id, run=ok_result)


def test_a_failed_run_marks_the_request_failed(queue):
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="alice")
    r = queue.execute(a.id, run=lambda ap: ToolResult(status="error", tool=ap.call.tool, message="quota exceeded"))
    assert not r.ok and queue.get(a.id).state == "failed" and queue.result_summary(a.id) == "quota exceeded"


def test_restart_between_approval_and_execution_loses_and_repeats_nothing(tmp_path, clock):
    path = tmp_path / "ops.db"
    q1 = ApprovalQueue(path, clock=clock, is_member=is_member)
    a = q1.approve(q1.request(call=CALL, decision=DECISION, run_id="run-1").id, by="alice")
    q1.close()
    # a restarted process finds the approved call waiting
    q2 = ApprovalQueue(AuditStore(path), clock=clock, is_member=is_member)
    waiting = q2.list(state="approved")
    assert [w.id for w in waiting] == [a.id] and waiting[0].call == CALL
    runs = []
    q2.execute(a.id, run=lambda ap: runs.append(ap) or ok_result(ap))
    q2.store.close()
    q3 = ApprovalQueue(path, clock=clock)
    assert q3.list(state="approved") == [] and q3.get(a.id).state == "executed" and len(runs) == 1
    assert q3.store.verify().ok


def test_a_crash_during_execution_is_never_run_again(tmp_path, clock):
    """The child approves, claims the execution and dies before recording a result."""
    path = tmp_path / "ops.db"
    script = textwrap.dedent(f"""
        import os
        from opsagent.approvals import ApprovalQueue
        from opsagent.clock import VirtualClock
        from opsagent.model import Decision, RuleRef, ToolCall
        q = ApprovalQueue({str(path)!r}, clock=VirtualClock())
        call = ToolCall.model_validate_json({CALL.model_dump_json()!r})
        d = Decision.model_validate_json({DECISION.model_dump_json()!r})
        a = q.approve(q.request(call=call, decision=d).id, by="alice")
        q.execute(a.id, run=lambda ap: os._exit(9))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    q = ApprovalQueue(path, clock=clock)
    [a] = q.list(state="approved")
    with pytest.raises(ExecutionInterrupted):
        q.execute(a.id, run=lambda ap: pytest.fail("must not run twice"))
    assert q.get(a.id).state == "failed"
    assert q.store.verify().ok
    q.close()
