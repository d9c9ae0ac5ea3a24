"""Every tool's typed result model describes what the tool really returns.

One call per tool on a simulated cluster, with valid sample arguments: its data must validate against
the tool's `result_model`, name no field the model does not declare (at any depth), and read back
unchanged. A tool without a model, or without a sample call here, fails. Writes also show their ok
result in chat through the model, naming the object they changed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from opsagent.cluster.sim import SimCluster, parse_scenario
from opsagent.model import Finding, ToolResult
from tools import REGISTRY
from tools.base import ResultData, ToolContext

SCENARIO = """
start: 2026-01-05T09:00:00Z
nodes:
  - {name: gpu-a, gpus: [{count: 4, link: 16, switch: "0"}]}
  - {name: gpu-b, gpus: [{count: 2, link: 16, switch: "0"}]}
workloads:
  - {namespace: inference, name: llm, image: "registry.internal/inference/llm:1.0", gpus: 1, replicas: 1,
     memory_mib: 16384, traffic: {peak_rps: 0, curve: none},
     probes: {readiness: {path: /health}, liveness: {path: /health, initial_delay: 60s}}}
  - {namespace: inference, name: keda, image: "registry.internal/inference/keda:1.0", gpus: 1, replicas: 1,
     traffic: {peak_rps: 0, curve: none}}
  - {namespace: chat, name: chat-ui, image: "registry.internal/chat/chat-ui:1.0", gpus: 1, replicas: 0}
autoscalers:
  - {kind: ScaledObject, workload: inference/keda, min_replicas: 0, max_replicas: 3, target_rps: 5}
jobs:
  - {namespace: training, name: job-7, gpus: 8, duration: 4h}
timeline:
  - {at: "+1m", rollout: {workload: inference/llm, image: "registry.internal/inference/llm:1.1"}}
"""

LLM = {"namespace": "inference", "name": "llm"}
WAITING = Finding(kind="jobs_waiting", subject="cluster", summary="1 GPU job waiting while 1 idle workload holds 1 GPU",
                  details={"jobs": ["training/job-7"], "idle_holders": [
                      {"namespace": "inference", "name": "keda", "gpus_held": 1, "idle_minutes": 42.0}]})

# One valid call per tool; each runs on a fresh cluster. The pod and node are filled in from the cluster.
SAMPLES: dict[str, dict[str, Any]] = {
    "list_workloads": {"namespace": "inference"},
    "get_workload": LLM,
    "list_pods": {"namespace": "inference"},
    "describe_pod": {"pod": True},
    "gpu_inventory": {},
    "list_findings": {},
    "get_job": {"namespace": "training", "name": "job-7"},
    "get_rollout_history": LLM,
    "scale_workload": {**LLM, "replicas": 2},
    "wake_workload": {"namespace": "chat", "name": "chat-ui"},
    "sleep_workload": LLM,
    "restart_rollout": LLM,
    "undo_rollout": LLM,
    "cordon_node": {"node": "gpu-b", "reason": "GPU errors"},
    "uncordon_node": {"node": "gpu-b"},
    "delete_pod": {"pod": True},
    "evict_pod": {"pod": True},
    "drain_node": {"node": "gpu-b"},
    "set_image": {**LLM, "image": "registry.internal/inference/llm:1.2"},
    "set_resources": {**LLM, "memory_mib": 24576, "seen_memory_mib": 16384},
    "set_gpu_placement": {**LLM, "min_link_width": 16, "coherent": True},
    "set_replica_bounds": {**LLM, "min": 0, "max": 4},
    "set_autoscaler_bounds": {"namespace": "inference", "name": "keda", "min_replicas": 0, "max_replicas": 5},
    "create_workload": {"namespace": "inference", "name": "embedder", "image": "registry.internal/embedder:2.0", "gpus_per_replica": 1},
    "delete_workload": LLM,
    "change_policy": {"file": "inference.yaml", "content": "intents: []\n", "reason": "retire the old intent"},
    "set_probe": {**LLM, "probe": "readiness", "path": "/ready"},
}


def _undeclared(value: Any, where: str) -> list[str]:
    """Fields a tool returned that its result model does not name, as dotted paths."""
    if isinstance(value, BaseModel):
        extra = [f"{where}.{k}" for k in (value.model_extra or {})]
        return extra + [p for name in type(value).model_fields for p in _undeclared(getattr(value, name), f"{where}.{name}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _undeclared(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [p for k, item in value.items() for p in _undeclared(item, f"{where}.{k}")]
    return []


def _run(name: str, tmp_path) -> ToolResult:
    sim = SimCluster(parse_scenario(SCENARIO))
    sim.advance(10 * 60)   # the rollout lands; the job queues
    snap = sim.snapshot()
    args = dict(SAMPLES[name])
    if args.pop("pod", False):
        pod = next(p for p in snap.pods if p.workload is not None and p.workload.name == "llm")
        args.update(namespace=pod.namespace, name=pod.name)
    if name == "drain_node":   # something on it to evict
        assert snap.pods_on("gpu-b") or snap.pods_on("gpu-a")
        args["node"] = "gpu-b" if snap.pods_on("gpu-b") else "gpu-a"
    tool = REGISTRY[name]
    ctx = ToolContext(cluster=sim, clock=sim.clock, observe=sim.snapshot, wait=sim.advance, poll_seconds=5,
                      proposals_dir=tmp_path / "proposals", findings=lambda: [WAITING])
    outcome = tool.run(ctx, tool.input_model.model_validate(args))
    return ToolResult(status=outcome.status, tool=name, message=outcome.message, data=outcome.data)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_tool_result_validates_against_its_declared_model(name, tmp_path):
    tool = REGISTRY[name]
    assert tool.result_model is not None and issubclass(tool.result_model, ResultData), f"{name} declares no result_model"
    assert name in SAMPLES, f"no sample call for {name}: add one to SAMPLES"
    result = _run(name, tmp_path)
    assert result.status == "ok", f"{name}: the sample call did not succeed: {result.message}"
    view = tool.result_model.of(result)
    assert _undeclared(view, name) == [], f"{name} returns fields its result_model does not declare"
    assert view.model_dump(exclude_unset=True) == result.data, f"{name}: the typed view changes what the tool said"
    if tool.risk != "read":
        assert tool.show is not None
        lines = tool.show(result)
        # one line naming the object and the change (change_policy adds who takes it from there), nothing unset
        assert len(lines) == (2 if name == "change_policy" else 1), lines
        assert re.match(r"`[a-z0-9][a-z0-9./-]*`: \S", lines[0]) and "None" not in " ".join(lines), lines


def test_every_sample_names_a_registered_tool():
    assert set(SAMPLES) == set(REGISTRY)
