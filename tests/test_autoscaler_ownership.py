"""Autoscalers own replicas: the guard, the simulator and the tools, end to end through the real gate.

- The guard is a table: a direct replica write of an owned workload is refused naming the
  autoscaler; a sleep or wake of a KEDA-owned one goes through (it pauses the autoscaler); of an
  HPA-owned one it is refused (an HPA cannot pause); an unowned workload is nobody's business here.
- The simulator's autoscalers set replicas from the load, scale KEDA to zero after the cooldown,
  undo a replicas write on the next tick (the fight the guard prevents), hold at paused-replicas,
  and report the failure modes as the controllers do.
- Through the gate with a policy that allows everything: scale is refused and nothing is written;
  sleep pauses the ScaledObject (no `scale` call reaches the cluster) and the workload goes to zero;
  wake removes the pause; the bounds tool changes the autoscaler, never the workload.
"""

from __future__ import annotations

import pytest

from opsagent.cluster.sim import SimCluster
from opsagent.cluster.sim.scenario import ScenarioError, parse_scenario
from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.model import Autoscaler, Snapshot, ToolCall, WorkloadRef
from opsagent.policy.ownership import autoscaler_refusal
from gate_doubles import MemorySink, bare_policy
from doubles.cluster import RecordingCluster, decide_by_table

LLM = WorkloadRef(namespace="inference", name="llm")


def owned_by(kind: str) -> Snapshot:
    from datetime import datetime, timezone

    scaler = Autoscaler(kind=kind, namespace="inference", name="llm", target=LLM, min_replicas=1, max_replicas=3)
    return Snapshot(time=datetime(2026, 1, 5, tzinfo=timezone.utc), autoscalers=(scaler,))


@pytest.mark.parametrize("mode, kind, refused", [
    ("direct", "ScaledObject", True),
    ("direct", "HorizontalPodAutoscaler", True),
    ("direct", "HTTPScaledObject", True),
    ("pausable", "ScaledObject", False),
    ("pausable", "HTTPScaledObject", False),
    ("pausable", "HorizontalPodAutoscaler", True),
    (None, "HorizontalPodAutoscaler", False),
])
def test_guard_table(mode, kind, refused):
    reason = autoscaler_refusal(mode, LLM, owned_by(kind))
    assert (reason is not None) == refused
    if refused:
        assert f"{kind} inference/llm" in reason and "set_autoscaler_bounds" in reason
    assert autoscaler_refusal(mode, WorkloadRef(namespace="inference", name="other"), owned_by(kind)) is None


SCENARIO = """
start: 2026-01-05T09:00:00Z
nodes: [{name: gpu-a, gpus: [{count: 4}]}]
workloads:
  - {namespace: inference, name: llm, image: vllm/vllm-openai:v0.8.2, gpus: 1, replicas: 1,
     traffic: {peak_rps: 0, curve: none}}
  - {namespace: inference, name: embedder, image: registry.internal/embedder:2.3.0, gpus: 1, replicas: 1,
     traffic: {peak_rps: 0, curve: none}}
autoscalers:
  - {kind: ScaledObject, workload: inference/llm, min_replicas: 0, max_replicas: 3, target_rps: 5}
  - {kind: HorizontalPodAutoscaler, workload: inference/embedder, min_replicas: 1, max_replicas: 2, target_rps: 5,
     failure: missing_metrics}
timeline:
  - {at: "09:10", requests: {workload: inference/llm, rps: 12}}
  - {at: "09:40", requests: {workload: inference/llm, rps: 0}}
  - {at: "09:40", requests: {workload: inference/embedder, rps: 40}}
"""


def test_simulated_keda_follows_load_scales_to_zero_and_wins_a_fight():
    sim = SimCluster(parse_scenario(SCENARIO))
    sim.advance(5 * 60)
    assert sim.snapshot().workload(LLM).replicas == 0           # no load, min 0: KEDA keeps it at zero
    sim.advance(10 * 60)
    assert sim.snapshot().workload(LLM).replicas == 3           # ceil(12 / 5) = 3, at its maximum
    sim.scale(ref=LLM, replicas=1)
    sim.advance(60)
    assert sim.snapshot().workload(LLM).replicas == 3           # a replicas write is undone on the next pass
    sim.advance(20 * 60)                                       # 09:36; the load stops at 09:40
    sim.advance(7 * 60)
    assert sim.snapshot().workload(LLM).replicas == 1           # 09:43: one replica until the cooldown passes
    sim.advance(5 * 60)
    assert sim.snapshot().workload(LLM).replicas == 0           # 09:48: past the 5m cooldown, back to zero


def test_simulated_pause_holds_and_failures_show_as_conditions():
    sim = SimCluster(parse_scenario(SCENARIO))
    sim.advance(15 * 60)
    sim.pause_autoscaler(kind="ScaledObject", namespace="inference", name="llm", replicas=0)
    sim.advance(60)
    snap = sim.snapshot()
    assert snap.workload(LLM).replicas == 0 and snap.autoscaler_of(LLM).paused_replicas == 0
    sim.advance(45 * 60)
    snap = sim.snapshot()
    embedder = snap.autoscaler_of("inference/embedder")
    assert snap.workload("inference/embedder").replicas == 1     # 40 rps and nobody scales it
    assert (embedder.scaling_active, embedder.reason) == (False, "FailedGetResourceMetric")
    with pytest.raises(Exception, match="no pause"):
        sim.pause_autoscaler(kind="HorizontalPodAutoscaler", namespace="inference", name="embedder", replicas=0)


@pytest.mark.parametrize("extra, field", [
    ("  - {kind: HorizontalPodAutoscaler, workload: inference/llm, min_replicas: 0, max_replicas: 2}", "autoscalers.2"),
    ("  - {kind: ScaledObject, workload: inference/ghost}", "autoscalers.2.workload"),
    ("  - {kind: ScaledObject, workload: inference/llm, min_replicas: 3, max_replicas: 2}", "autoscalers.2"),
])
def test_bad_autoscaler_declarations_name_the_field(extra, field):
    text = SCENARIO.replace("timeline:", extra + "\ntimeline:", 1)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, source="x.yaml")
    assert err.value.field == field and err.value.line is not None


def gate_over(sim: SimCluster):
    cluster = RecordingCluster(sim)
    allow = {name: "allow" for name in ("scale_workload", "sleep_workload", "wake_workload", "set_autoscaler_bounds",
                                        "get_workload")}
    gate = Gate(policy=bare_policy(), cluster=cluster, clock=sim.clock, recorder=MemoryRecorder(),
                approvals=MemorySink(sim.clock), decide=decide_by_table(allow))
    return gate, cluster


def call(tool: str, name: str = "llm", **args) -> ToolCall:
    return ToolCall(tool=tool, args={"namespace": "inference", "name": name, **args}, actor="carol")


def test_through_the_gate_scale_is_refused_sleep_and_wake_go_through_keda():
    sim = SimCluster(parse_scenario(SCENARIO))
    sim.advance(15 * 60)
    gate, cluster = gate_over(sim)
    refused = gate.submit(call("scale_workload", replicas=1))
    assert refused.status == "denied" and "ScaledObject inference/llm" in refused.message
    assert cluster.writes == []
    slept = gate.submit(call("sleep_workload"))
    assert slept.status == "ok" and slept.data["autoscaler"] == "ScaledObject inference/llm"
    assert [name for name, _ in cluster.writes] == ["pause_autoscaler"]
    sim.advance(60)
    assert sim.snapshot().workload(LLM).replicas == 0
    woke = gate.submit(call("wake_workload"))
    assert woke.status == "ok" and cluster.writes[-1] == (
        "pause_autoscaler", {"kind": "ScaledObject", "namespace": "inference", "name": "llm", "replicas": None, "dry_run": False})
    sim.advance(60)
    assert sim.snapshot().workload(LLM).replicas == 3           # the load is back in KEDA's hands
    assert "scale" not in [name for name, _ in cluster.writes]


def test_through_the_gate_an_hpa_cannot_be_slept_and_bounds_go_to_the_hpa():
    sim = SimCluster(parse_scenario(SCENARIO))
    gate, cluster = gate_over(sim)
    refused = gate.submit(call("sleep_workload", name="embedder"))
    assert refused.status == "denied" and "HorizontalPodAutoscaler inference/embedder" in refused.message
    assert "cannot be paused" in refused.message and cluster.writes == []
    result = gate.submit(call("set_autoscaler_bounds", name="embedder", min_replicas=1, max_replicas=4))
    # architectural: the gate turns the allow into a request for a person, and nothing is written yet
    assert result.status == "pending_approval" and cluster.writes == []


def test_detectors_leave_what_an_autoscaler_does_to_it():
    """Replica drift of an owned workload, idle under an HPA (it cannot pause) and a wake KEDA does itself raise
    nothing; a paused KEDA object still gets woken, and KEDA-owned idle GPUs still count."""
    from detect_sample import NOW, troubled

    from opsagent.detect import detect

    snap, intents = troubled()

    def scaler(kind: str, ns: str, name: str, **fields) -> Autoscaler:
        return Autoscaler(kind=kind, namespace=ns, name=name, target=WorkloadRef(namespace=ns, name=name),
                          min_replicas=0 if kind != "HorizontalPodAutoscaler" else 1, max_replicas=8, **fields)

    def ids(*scalers: Autoscaler) -> set[str]:
        return {f.id for f in detect(snap.model_copy(update={"autoscalers": scalers}), intents=intents, now=NOW)}

    before = ids()
    assert {"drift:web/api", "idle_gpu:render/ui", "wake_requested:chat/chat-ui"} <= before
    owned = ids(scaler("HorizontalPodAutoscaler", "web", "api"), scaler("HorizontalPodAutoscaler", "render", "ui"),
                scaler("ScaledObject", "chat", "chat-ui"))
    # jobs_waiting goes with the idle finding: the idle holder was what it offered to free
    assert before - owned == {"drift:web/api", "idle_gpu:render/ui", "wake_requested:chat/chat-ui", "jobs_waiting:cluster"}
    kept = ids(scaler("ScaledObject", "render", "ui"), scaler("ScaledObject", "chat", "chat-ui", paused_replicas=0))
    assert {"idle_gpu:render/ui", "wake_requested:chat/chat-ui"} <= kept


def test_get_workload_says_who_owns_the_replicas_and_what_protects_the_pods():
    text = SCENARIO + """disruption_budgets:
  - {namespace: inference, name: llm, selector: {}, min_available: 1}
"""
    sim = SimCluster(parse_scenario(text))
    sim.advance(15 * 60)
    gate, _ = gate_over(sim)
    result = gate.submit(ToolCall(tool="get_workload", args={"namespace": "inference", "name": "llm"}, actor="carol"))
    assert result.data["autoscaler"]["kind"] == "ScaledObject" and "owned by ScaledObject inference/llm" in result.message
    assert result.data["disruption_budgets"][0]["name"] == "inference/llm"
