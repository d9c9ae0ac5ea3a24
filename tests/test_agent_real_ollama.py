"""One run against a real Ollama, when one is reachable (OLLAMA_HOST set). Skipped otherwise.

Spec: a real model, given the tiny cluster's idle-GPU finding and the tools,
ends the run without any call the policy forbids reaching the cluster.
"""

from __future__ import annotations

import os

import pytest

from opsagent.agent import AgentConfig
from doubles.agent_world import idle_findings, tiny_world

pytestmark = pytest.mark.real_ollama


@pytest.mark.skipif(not os.environ.get("OLLAMA_HOST"), reason="set OLLAMA_HOST (and OPSAGENT_MODEL) to run against a real Ollama")
def test_real_model_run_stays_inside_the_policy(tmp_path):
    world = tiny_world(tmp_path)
    try:
        config = AgentConfig.from_env(request_timeout_seconds=300.0)
        [finding] = idle_findings(world.cluster.snapshot())
        report = world.agent("llm", config=config).handle_finding(finding)
        assert report.status in ("done", "budget_exhausted", "waiting_approval")
        allowed = {"scale"}  # sleep_workload / scale_workload are the only allowed writes in the table
        assert {method for method, _ in world.cluster.writes} <= allowed
        assert "kube-system/coredns" in world.tiny.workloads
        assert report.llm_calls >= 1 or report.fell_back
    finally:
        world.close()
