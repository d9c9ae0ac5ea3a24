"""A process that dies at the gate: the call's missing result is recorded from the cluster, never run twice.

Spec: the gate records proposal → decision → result for every call. A crash
(here a BaseException raised by the cluster, which nothing in the gate
catches, as a SIGKILL would not be caught) can leave a proposal, or a
proposal and a decision, without a result. When the same call (same run,
same planner call id) comes back to the gate, it is recovered:

- no decision yet: nothing can have changed, so the call runs now, once;
- `allow`, and the write reached the cluster: no second write, result `ok`;
- `allow`, and the write never arrived: no write, result `error` saying the
  cluster does not show the change;
- a recorded deny: `denied`, nothing runs.

Each recovered result is the call's one `result` row, marked `recovered`.
The effect checks behind it are pure and tested by a table.
"""

from __future__ import annotations

from typing import Any

import pytest

from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.gate.recovery import before_of, observed_effect
from opsagent.model import AuditEntry, ToolCall, WorkloadRef
from gate_doubles import MemorySink, bare_policy
from doubles.cluster import RecordingCluster, TinyCluster, decide_by_table


class Crash(BaseException):
    """The process dies here."""


class CrashingCluster:
    """A cluster that dies once, right before or right after the next write reaches it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.when = inner, None

    def snapshot(self):
        return self.inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in ("scale", "restart_rollout", "cordon", "set_template", "annotate", "delete_pod", "set_image"):
            return target

        def write(**kwargs: Any) -> Any:
            when, self.when = self.when, None
            if when == "before":
                raise Crash(name)
            result = target(**kwargs)
            if when == "after":
                raise Crash(name)
            return result

        return write


def world(effects: dict[str, str]):
    tiny = TinyCluster()
    tiny.add_node("gpu-node", gpus=4)
    tiny.add_workload("inference", "llm", replicas=1, gpus=2)
    recording = RecordingCluster(tiny)
    crashing = CrashingCluster(recording)
    recorder = MemoryRecorder()
    gate = Gate(policy=bare_policy(), cluster=crashing, clock=tiny.clock, recorder=recorder, approvals=MemorySink(tiny.clock),
                decide=decide_by_table(effects))
    return gate, tiny, recording, crashing, recorder


def scale(replicas: int = 3) -> ToolCall:
    return ToolCall(tool="scale_workload", args={"namespace": "inference", "name": "llm", "replicas": replicas},
                    actor="daemon", channel="daemon", id="s1c0")


def restarted(gate: Gate) -> Gate:
    """A new gate over the same cluster and audit log: the process after its restart."""
    return Gate(policy=gate.policy, cluster=gate.cluster, clock=gate.clock, recorder=gate.recorder, approvals=gate.approvals,
                decide=gate._decide)


def results(recorder: MemoryRecorder) -> list:
    return recorder.of_kind("result")


def test_a_write_that_reached_the_cluster_is_recorded_ok_and_not_repeated():
    gate, tiny, recording, crashing, recorder = world({"scale_workload": "allow"})
    crashing.when = "after"
    with pytest.raises(Crash):
        gate.submit(scale(), run_id="r1")
    assert [e.kind for e in recorder.entries] == ["proposal", "decision"] and len(recording.writes) == 1
    assert recorder.of_kind("decision")[0].data["before"] == {
        "replicas": 1, "revision": 1, "image": "img:1",
        "main_container": {"gpus": 2, "memory_limit_mib": None, "memory_request_mib": None}}

    result = restarted(gate).submit(scale(), run_id="r1")
    assert result.status == "ok" and result.data["recovered"] is True and result.data["effect"] == "in_effect"
    assert "recovered after a restart" in result.message and "3 replica(s), as the call asked" in result.message
    assert len(recording.writes) == 1 and tiny.workloads["inference/llm"].replicas == 3
    [row] = results(recorder)
    assert (row.outcome, row.idempotency_key) == ("ok", f"r1:s1c0:{scale().args_hash()[:12]}:result")
    assert restarted(gate).submit(scale(), run_id="r1").data.get("replayed") is True  # and that is that
    assert len(results(recorder)) == 1 and len(recording.writes) == 1


def test_a_set_image_that_reached_the_cluster_is_not_sent_again_after_a_restart():
    gate, tiny, recording, crashing, recorder = world({"set_image": "allow"})
    call = ToolCall(tool="set_image", args={"namespace": "inference", "name": "llm", "image": "reg/llm:2"},
                    actor="daemon", channel="daemon", id="i1c0")
    crashing.when = "after"
    with pytest.raises(Crash):
        gate.submit(call, run_id="r1")
    result = restarted(gate).submit(call, run_id="r1")
    assert result.status == "ok" and result.data["recovered"] is True and result.data["effect"] == "in_effect"
    assert [w[0] for w in recording.writes] == ["set_image"] and tiny.workloads["inference/llm"].image == "reg/llm:2"


def test_a_write_that_never_arrived_is_recorded_as_not_in_effect_and_not_run():
    gate, tiny, recording, crashing, recorder = world({"scale_workload": "allow"})
    crashing.when = "before"
    with pytest.raises(Crash):
        gate.submit(scale(), run_id="r1")
    result = restarted(gate).submit(scale(), run_id="r1")
    assert result.status == "error" and result.data["effect"] == "not_in_effect" and result.data["retryable"] is False
    assert "does not show the change" in result.message and "still has 1 replica(s), as before the call" in result.message
    assert recording.writes == [] and tiny.workloads["inference/llm"].replicas == 1
    assert [r.outcome for r in results(recorder)] == ["error"]


def test_a_recorded_deny_is_the_result_even_if_the_policy_would_now_allow():
    gate, _, recording, _, recorder = world({"scale_workload": "allow"})
    call = scale()
    step_key = f"r1:s1c0:{call.args_hash()[:12]}"
    for kind, extra in (("proposal", {}), ("decision", {"decision": "deny", "rule_file": "policies/p.yaml",
                                                         "rule_name": "freeze", "summary": "frozen"})):
        recorder.record(AuditEntry(time=gate.clock.now(), kind=kind, actor="daemon", tool=call.tool,
                                   idempotency_key=f"{step_key}:{kind}", **extra))
    result = gate.submit(call, run_id="r1")
    assert result.status == "denied" and result.message == "denied by policies/p.yaml:freeze: frozen"
    assert recording.writes == [] and [r.outcome for r in results(recorder)] == ["denied"]


def snapshot_with(**changes):
    tiny = TinyCluster()
    tiny.add_node("gpu-node", gpus=4)
    tiny.add_workload("inference", "llm", replicas=1, gpus=1, image="llm:1", history=("llm:0",))
    before = tiny.snapshot()
    for method, kwargs in changes.items():
        getattr(tiny, method)(**kwargs)
    return before, tiny.snapshot()


LLM = {"namespace": "inference", "name": "llm"}


@pytest.mark.parametrize("tool,args,change,verdict", [
    ("scale_workload", {**LLM, "replicas": 3}, {"scale": {"replicas": 3}}, "in_effect"),
    ("scale_workload", {**LLM, "replicas": 3}, {}, "not_in_effect"),
    ("scale_workload", {**LLM, "replicas": 3}, {"scale": {"replicas": 2}}, "unknown"),   # someone else moved it
    ("sleep_workload", LLM, {"scale": {"replicas": 0}}, "in_effect"),
    ("sleep_workload", LLM, {}, "not_in_effect"),
    ("wake_workload", {**LLM, "replicas": 2}, {"scale": {"replicas": 2}}, "in_effect"),
    ("restart_rollout", LLM, {"restart_rollout": {}}, "in_effect"),
    ("restart_rollout", LLM, {}, "not_in_effect"),
    ("undo_rollout", LLM, {"undo_rollout": {}}, "in_effect"),
    ("set_resources", {**LLM, "gpus_per_replica": 2}, {"set_template": {"gpus_per_replica": 2}}, "in_effect"),
    ("set_resources", {**LLM, "gpus_per_replica": 2}, {}, "not_in_effect"),
    ("cordon_node", {"node": "gpu-node"}, {"cordon": {"node": "gpu-node"}}, "in_effect"),
    ("uncordon_node", {"node": "gpu-node"}, {}, "in_effect"),
    ("delete_workload", LLM, {}, "not_in_effect"),
    ("set_image", {**LLM, "image": "reg/llm:2"}, {"set_image": {"image": "reg/llm:2"}}, "in_effect"),
    ("set_image", {**LLM, "image": "reg/llm:2"}, {}, "not_in_effect"),
    ("set_image", LLM, {"set_image": {"image": "llm:0"}}, "in_effect"),                # "roll back": any move counts
    ("set_image", {**LLM, "image": "reg/llm:2", "container": "proxy"}, {}, "unknown"),  # not in the snapshot
    ("change_policy", {"file": "a.yaml"}, {}, "unknown"),                              # writes a file, not the cluster
    ("scale_workload", {"namespace": "inference", "name": "gone", "replicas": 1}, {}, "unknown"),
])
def test_effect_checks(tool, args, change, verdict):
    ref = WorkloadRef(namespace="inference", name="llm")
    calls = {m: ({"ref": ref, **kw} if m != "cordon" else kw) for m, kw in change.items()}
    before, now = snapshot_with(**calls)
    seen = observed_effect(tool, args, before_of(args, before), now)
    assert seen.verdict == verdict, seen.detail
    assert seen.detail


def test_change_policy_says_its_effect_cannot_be_seen_in_the_cluster_and_where_to_look():
    """Not a silent "no check": its bundle declares why recovery cannot tell, naming the proposal to look for."""
    _, now = snapshot_with()
    seen = observed_effect("change_policy", {"file": "inference.yaml", "content": "x: 1\n", "reason": "r"}, None, now)
    assert seen.verdict == "unknown"
    assert "proposals directory" in seen.detail and "-inference.yaml" in seen.detail and "no check" not in seen.detail
