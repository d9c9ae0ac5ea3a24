"""The gate's own guards, which hold whatever the policy or the cluster does.

A table of misbehaviour: decide() allowing an architectural tool, crashing or
returning junk; the cluster failing to answer or refusing a write; the
approval queue failing. In each case nothing unintended reaches the cluster,
the caller gets a result it can read, and the log records one decision.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from opsagent.cluster.port import Conflict, Unavailable
from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.model import AuditEntry, Decision, RuleRef, ToolCall
from gate_doubles import MemorySink, bare_policy
from doubles.cluster import RecordingCluster, TinyCluster, decide_by_table


def world(effects: dict[str, str] | None = None, *, decide=None, policy=None, approvals=None):
    tiny = TinyCluster()
    tiny.add_node("gpu-node", gpus=4)
    tiny.add_workload("inference", "llm", replicas=1, gpus=2)
    tiny.add_workload("render", "ui", replicas=1, gpus=1)
    tiny.add_workload("chat", "bot", replicas=1, gpus=0)
    cluster = RecordingCluster(tiny)
    recorder = MemoryRecorder()
    gate = Gate(policy=policy or bare_policy(), cluster=cluster, clock=tiny.clock, recorder=recorder,
                approvals=approvals or MemorySink(tiny.clock),
                decide=decide or decide_by_table(effects or {}))
    return gate, tiny, cluster, recorder


def scale(ns="inference", name="llm", replicas=2, actor="carol") -> ToolCall:
    return ToolCall(tool="scale_workload", args={"namespace": ns, "name": name, "replicas": replicas}, actor=actor)


def test_an_architectural_allow_from_decide_is_turned_into_an_approval_request():
    class Sink:
        def __init__(self):
            self.calls = []

        def request(self, *, call, decision, run_id):
            from opsagent.model import Approval

            self.calls.append((call, decision))
            now = gate.clock.now()
            return Approval(id=41, call=call, args_hash=call.args_hash(), requested_by=call.actor, approvers=("alice",),
                            rule=decision.rule, created_at=now, expires_at=now)

    sink = Sink()
    gate, _, cluster, recorder = world({"delete_workload": "allow"}, approvals=sink)
    result = gate.submit(ToolCall(tool="delete_workload", args={"namespace": "inference", "name": "llm"}, actor="daemon"))
    assert result.status == "pending_approval" and result.approval_id == 41
    assert cluster.writes == []
    assert [e.decision for e in recorder.of_kind("decision")] == ["require_approval"]
    assert sink.calls[0][1].effect == "require_approval"


@pytest.mark.parametrize("behaviour,rule", [("raise", "decide-error"), ("junk", "decide-error")])
def test_a_broken_decide_fails_closed(behaviour, rule):
    def decide(policy, **kwargs):
        if behaviour == "raise":
            raise KeyError("rules")
        return "allow"

    gate, _, cluster, recorder = world(decide=decide)
    result = gate.submit(scale())
    assert result.status == "denied" and result.decision.rule.name == rule
    assert cluster.writes == [] and len(recorder.of_kind("decision")) == 1


def test_an_unreadable_cluster_denies_writes_before_deciding():
    gate, tiny, cluster, recorder = world({"scale_workload": "allow"})
    original = tiny.snapshot
    tiny.snapshot = lambda: (_ for _ in ()).throw(Unavailable("apiserver timeout", delay=3))
    result = gate.submit(scale())
    tiny.snapshot = original
    assert result.status == "denied" and result.decision.rule.name == "cluster-unreadable"
    assert cluster.writes == [] and recorder.of_kind("decision")[0].decision == "deny"


@pytest.mark.parametrize("error,retryable", [(Conflict("object changed", status=409), True),
                                             (Unavailable("busy", delay=7.5, status=429), True)])
def test_cluster_errors_come_back_as_data_with_retry_hints(error, retryable):
    gate, tiny, _, recorder = world({"scale_workload": "allow"})
    tiny.fail_next = error
    result = gate.submit(scale())
    assert result.status == "error" and result.data["retryable"] is retryable
    assert result.data["http_status"] == error.status
    if isinstance(error, Unavailable):
        assert result.data["retry_after_seconds"] == 7.5 and "retry later" in result.message
    assert recorder.of_kind("result")[0].outcome == "error"


@pytest.mark.parametrize("port", ["policy", "recorder", "approvals"])
def test_a_gate_cannot_be_built_without_each_of_its_ports(port):
    """Promise: nothing is skipped because a collaborator lacks a method; the gate refuses to start instead."""
    tiny = TinyCluster()
    parts = {"policy": bare_policy(), "recorder": MemoryRecorder(), "approvals": MemorySink(tiny.clock)}
    parts[port] = None
    with pytest.raises(TypeError, match=f"needs a .* for {port}"):
        Gate(cluster=tiny, clock=tiny.clock, decide=decide_by_table({}), **parts)


def test_a_policy_missing_the_approver_check_is_refused_at_start():
    """Promise: a policy without actor_matches cannot make every approver pass."""
    tiny = TinyCluster()
    half = SimpleNamespace(max_workloads_per_run=None, intent_for=lambda workload: None)
    with pytest.raises(TypeError, match="lacks actor_matches"):
        Gate(policy=half, cluster=tiny, clock=tiny.clock, recorder=MemoryRecorder(), approvals=MemorySink(tiny.clock))


def test_a_failing_approval_queue_means_nothing_runs():
    class Broken:
        def request(self, **kwargs):
            raise OSError("disk full")

    gate, _, cluster, recorder = world({"scale_workload": "require_approval"}, approvals=Broken())
    result = gate.submit(scale())
    assert result.status == "error" and "disk full" in result.message and result.data["retryable"] is True
    assert cluster.writes == [] and recorder.of_kind("result")[0].outcome == "error"


def test_blast_radius_from_the_policy_is_enforced_by_the_gate_too():
    policy = bare_policy(max_workloads_per_run=2)
    gate, _, cluster, _ = world({"scale_workload": "allow"}, policy=policy)
    statuses = [gate.submit(scale(ns, name), run_id="run").status for ns, name in
                [("inference", "llm"), ("render", "ui"), ("inference", "llm"), ("chat", "bot")]]
    assert statuses == ["ok", "ok", "ok", "denied"]
    assert gate.changed_in_run("run") == {"inference/llm", "render/ui"}
    assert gate.submit(scale("chat", "bot"), run_id="other").ok


def test_results_carry_audit_ids_and_durations():
    gate, _, _, recorder = world({"scale_workload": "allow"})
    result = gate.submit(scale(), run_id="r")
    last = recorder.entries[-1]
    assert result.audit_id == len(recorder.entries) and last.kind == "result"
    assert last.duration_ms is not None and last.data["replicas"] == 2
    assert len({e.idempotency_key for e in recorder.entries}) == 3


def test_a_denied_decision_message_names_rule_and_reason():
    def decide(policy, **kwargs):
        return Decision(effect="deny", rule=RuleRef(file="policies/prod.yaml", name="freeze"), reason="change freeze until Monday")

    gate, _, cluster, _ = world(decide=decide)
    result = gate.submit(scale())
    assert result.message == "denied by policies/prod.yaml:freeze: change freeze until Monday"
    assert cluster.writes == []


def test_a_call_id_without_a_run_is_not_mistaken_for_a_replay():
    gate, _, cluster, _ = world({"scale_workload": "allow"})
    first = scale(replicas=2).model_copy(update={"id": "call-1"})
    second = scale(replicas=3).model_copy(update={"id": "call-1"})
    assert gate.submit(first).ok and gate.submit(first).ok and gate.submit(second).ok
    assert [kwargs["replicas"] for _, kwargs in cluster.writes] == [2, 2, 3]


def test_an_attempt_interrupted_before_its_decision_runs_once_now():
    gate, _, cluster, recorder = world({"scale_workload": "allow"})
    c = scale().model_copy(update={"id": "tc-7"})
    key = f"r1:tc-7:{c.args_hash()[:12]}:proposal"
    recorder.record(AuditEntry(time=gate.clock.now(), kind="proposal", actor="carol", idempotency_key=key))  # a crash left only this
    result = gate.submit(c, run_id="r1")
    assert result.ok  # nothing can have reached the cluster before the policy decided: the call runs now, once
    assert [kwargs["replicas"] for _, kwargs in cluster.writes] == [2]
    assert [e.kind for e in recorder.entries] == ["proposal", "decision", "result"]
    assert gate.submit(c, run_id="r1").data.get("replayed") is True and len(cluster.writes) == 1
