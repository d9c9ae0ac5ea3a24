"""Disruption budgets and drain, on the simulator through the real gate.

- A budget's status is computed as the disruption controller does (healthy, required, allowed).
- `evict_pod` of a pod a budget protects is refused by the cluster (429) and the result names
  the budget and its numbers; nothing is deleted. An unprotected pod is evicted and replaced.
- `drain_node` cordons, evicts what the budgets allow, one pod at a time (each eviction counts
  against the budget at once), and reports the rest with the budget that blocks it.
- `node_needs_drain` fires for a cordoned node with a problem that still runs pods, and lists
  the pods a budget protects now.
"""

from __future__ import annotations

import pytest

from opsagent.cluster.port import DisruptionBlocked
from opsagent.cluster.sim import SimCluster
from opsagent.cluster.sim.scenario import ScenarioError, parse_scenario
from opsagent.detect import detect
from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.model import ToolCall
from gate_doubles import MemorySink, bare_policy
from doubles.cluster import RecordingCluster, decide_by_table

SCENARIO = """
start: 2026-01-05T09:00:00Z
nodes:
  - {name: gpu-b, gpus: [{count: 4}]}
  - {name: gpu-a, gpus: [{count: 4}]}
workloads:
  - {namespace: inference, name: llm, image: vllm/vllm-openai:v0.8.2, gpus: 1, replicas: 1, labels: {app: llm}}
  - {namespace: inference, name: embedder, image: registry.internal/embedder:2.3.0, gpus: 1, replicas: 2,
     labels: {app: embedder}}
disruption_budgets:
  - {namespace: inference, name: llm, selector: {app: llm}, min_available: 1}
  - {namespace: inference, name: embedder, selector: {app: embedder}, max_unavailable: 1}
"""


def sim() -> SimCluster:
    return SimCluster(parse_scenario(SCENARIO))


def test_budget_status_is_computed_like_the_disruption_controller():
    budgets = {b.name: b for b in sim().snapshot().disruption_budgets}
    assert (budgets["llm"].current_healthy, budgets["llm"].desired_healthy, budgets["llm"].disruptions_allowed) == (1, 1, 0)
    assert (budgets["embedder"].expected_pods, budgets["embedder"].desired_healthy,
            budgets["embedder"].disruptions_allowed) == (2, 1, 1)


def test_a_budget_needs_exactly_one_of_its_two_numbers():
    bad = SCENARIO.replace("selector: {app: llm}, min_available: 1", "selector: {app: llm}")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad, source="x.yaml")
    assert "exactly one of min_available or max_unavailable" in str(err.value) and err.value.line is not None


def gate_over(cluster: SimCluster):
    recording = RecordingCluster(cluster)
    gate = Gate(policy=bare_policy(), cluster=recording, clock=cluster.clock, recorder=MemoryRecorder(),
                approvals=MemorySink(cluster.clock), decide=decide_by_table({"evict_pod": "allow", "drain_node": "allow"}))
    return gate, recording


def test_evicting_a_protected_pod_is_refused_naming_the_budget():
    cluster = sim()
    gate, recording = gate_over(cluster)
    llm_pod = next(p for p in cluster.snapshot().pods if p.labels.get("app") == "llm")
    result = gate.submit(ToolCall(tool="evict_pod", args={"namespace": "inference", "name": llm_pod.name}, actor="carol"))
    assert result.status == "error"
    blocked = result.data["blocked"]
    assert blocked["budgets"] == [{"budget": "inference/llm", "disruptions_allowed": 0, "current_healthy": 1,
                                   "desired_healthy": 1}]
    assert "PodDisruptionBudget inference/llm" in result.message
    assert cluster.snapshot().pod("inference", llm_pod.name) is not None
    with pytest.raises(DisruptionBlocked):
        cluster.evict_pod(namespace="inference", name=llm_pod.name, dry_run=True)


def test_drain_evicts_within_budgets_and_reports_what_blocks():
    cluster = sim()
    gate, recording = gate_over(cluster)
    on_b = {p.key for p in cluster.snapshot().pods_on("gpu-b")}
    assert len(on_b) == 3   # the llm and both embedder replicas start on the first node
    result = gate.submit(ToolCall(tool="drain_node", args={"node": "gpu-b"}, actor="carol"))
    assert result.status == "error"
    data = result.data
    assert len(data["evicted"]) == 1   # one embedder: its budget allows one disruption, then none until it is back
    assert sorted(b["budgets"][0]["budget"] for b in data["blocked"]) == ["inference/embedder", "inference/llm"]
    assert recording.writes[0] == ("cordon", {"node": "gpu-b", "cordoned": True, "dry_run": False})
    assert "delete_pod" not in [name for name, _ in recording.writes]
    cluster.advance(5 * 60)   # the evicted replica comes back on gpu-a; a second drain takes the other one
    again = gate.submit(ToolCall(tool="drain_node", args={"node": "gpu-b"}, actor="carol"))
    assert [b["pod"].split("/")[1].startswith("llm") for b in again.data["blocked"]] == [True]
    assert len(again.data["evicted"]) == 1


def test_node_needs_drain_lists_what_a_budget_protects():
    cluster = sim()
    cluster.cordon(node="gpu-b")
    cluster.node("gpu-b").conditions["GpuEccError"] = ("UncorrectableEcc", None, cluster.now)
    found = {f.id: f for f in detect(cluster.snapshot(), intents=[], now=cluster.now)}
    finding = found["node_needs_drain:gpu-b"]
    assert finding.details["reasons"] == ["GpuEccError"] and len(finding.details["pods"]) == 3
    assert [b["budgets"] for b in finding.details["blocked"]] == [["inference/llm"]]


def test_a_drain_that_stopped_at_a_budget_is_proposed_again_once_the_budget_allows():
    """After one drain (in the history), a pod still on the node moves the finding on (attempts 1) so the drain is
    asked for again; while every pod left is protected, the hand-over playbook answers instead of a drain."""
    from datetime import timedelta

    from opsagent.detect import Attempts
    from opsagent.detect.common import Acted
    from opsagent.playbooks import load_playbooks
    from pathlib import Path

    cluster = sim()
    cluster.cordon(node="gpu-b")
    cluster.node("gpu-b").conditions["GpuEccError"] = ("UncorrectableEcc", None, cluster.now)
    drained = cluster.now - timedelta(minutes=10)
    history = {"node_needs_drain:gpu-b": Attempts(attempts=1, last_action_at=drained,
                                                  actions=(Acted(tool="drain_node", at=drained),))}
    snapshot = cluster.snapshot()
    finding = {f.id: f for f in detect(snapshot, intents=[], now=cluster.now, history=history)}["node_needs_drain:gpu-b"]
    assert finding.details["attempts"] == 1
    playbooks = load_playbooks(Path(__file__).resolve().parents[1] / "playbooks")
    assert playbooks.for_finding(finding, snapshot).name == "node-maintenance-drain"   # 2 of 3 pods can leave
    only_protected = finding.model_copy(update={"details": {**finding.details, "pods": ["inference/llm-0"],
                                                            "blocked": [{"pod": "inference/llm-0",
                                                                         "budgets": ["inference/llm"]}]}})
    assert playbooks.for_finding(only_protected, snapshot).name == "node-maintenance-blocked-hand-over"
