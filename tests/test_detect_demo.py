"""Detectors on the shipped demo scenario, run through the simulator with the shipped policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.detect import detect
from tools import risk_table

ROOT = Path(__file__).resolve().parent.parent

sim_module = pytest.importorskip("opsagent.cluster.sim")
policy_loader = pytest.importorskip("opsagent.policy.loader")


def test_demo_afternoon_finds_idle_render_ui_llm_topology_and_waiting_jobs():
    policy = policy_loader.load_policy(ROOT / "policies", tool_risks=risk_table())
    sim = sim_module.SimCluster(sim_module.builtin_scenario("demo"))
    sim.advance(14 * 3600)  # Monday 14:00: render-ui quiet since 12:30, finetune-7 queued since 11:00
    snapshot = sim.snapshot()
    findings = {f.id: f for f in detect(snapshot, intents=policy.intents, now=snapshot.time)}
    assert "idle_gpu:render/render-ui" in findings
    assert findings["idle_gpu:render/render-ui"].details["idle_minutes"] >= 60
    topology = findings["topology_mismatch:inference/llm"]
    assert topology.details["throughput_factor"] < 1.0
    waiting = findings["jobs_waiting:cluster"]
    assert "training/finetune-7" in waiting.details["jobs"]
    assert "idle_gpu:render/render-ui" in waiting.details["idle_holder_ids"]
    # the LLM is inside its weekday prewarm window: never idle then
    assert "idle_gpu:inference/llm" not in findings
