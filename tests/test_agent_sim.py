"""The agent on the simulator, with the shipped policy, playbooks and detectors, over one demo day.

Spec: reconciling every five simulated minutes (a person approving whatever
the policy sends to people), the offline planner resolves every finding kind
the demo day produces; a finding its playbook cannot resolve is tried only as
often as the playbook's retry rule allows, then left to a person. An LLM
planner that follows the playbook guidance, reached over HTTP through the
real Ollama client, resolves the same findings, and the LLM is called only
when there is a finding.

The demo day produces no drift, unschedulable_gpu or crashloop finding; every
playbook, those kinds included, is proven on a cluster of its own in
test_playbooks_on_sim.py.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from opsagent.agent import AgentConfig
from opsagent.agent.playbook_view import render_steps
from doubles.agent_world import sim_world
from opsagent.evals.fake_ollama import FakeOllama, Reply

RESOLVED_KINDS = {"idle_gpu", "wake_requested", "rollout_failed", "topology_mismatch", "jobs_waiting"}


@pytest.fixture
def world(tmp_path):
    w = sim_world(tmp_path)
    yield w
    w.close()


def _by_kind(reports):
    kinds = defaultdict(list)
    for r in reports:
        kinds[r.run_id.split(":")[1]].append(r)
    return kinds


def test_offline_planner_resolves_the_demo_day(world):
    reports = world.run(world.agent())
    kinds = _by_kind(reports)
    for kind in RESOLVED_KINDS:
        assert any(r.resolved for r in kinds[kind]), (kind, [r.summary for r in kinds[kind]])
    assert all(r.llm_calls == 0 for r in reports)
    # a finding no playbook step resolves is retried only as the playbook allows (at most 2 epochs)
    for kind, runs in kinds.items():
        assert len({r.run_id for r in runs if r.resolved is not True}) <= 2, kind
    assert world.sim.stats().gpu_hours_idle < 30
    assert world.store.verify().ok


def _playbook_follower(world):
    """A stand-in model: reads the finding from the prompt and proposes its playbook's steps in order."""

    def respond(body):
        messages = body["messages"]
        match = re.search(r"Finding (\S+) \(severity", messages[1]["content"])
        snapshot = world.sim.snapshot()
        finding = next((f for f in world.detect(snapshot) if match and f.id == match.group(1)), None)
        done = sum(1 for m in messages if m["role"] == "assistant" and m.get("tool_calls"))
        if finding is None:
            return Reply.text("The finding is resolved.")
        playbook = world.playbooks.for_finding(finding, snapshot)
        steps = render_steps(playbook, finding, snapshot) if playbook else []
        if done >= len(steps):
            return Reply.text("All playbook steps are done.")
        tool, args = steps[done]
        return Reply.call(tool, **args)

    return respond


def test_llm_planner_over_http_resolves_the_same_findings(world):
    with FakeOllama(responder=_playbook_follower(world)) as server:
        agent = world.agent("llm", config=AgentConfig(model="llama3.2", ollama_host=server.url))
        reports = world.run(agent, hours=18)
        requests = len(server.chat_requests)
    kinds = _by_kind(reports)
    for kind in RESOLVED_KINDS:
        assert any(r.resolved for r in kinds[kind]), (kind, [r.summary for r in kinds[kind]])
    assert not any(r.fell_back for r in reports)
    assert all(r.planner == "llm:llama3.2" for r in reports)
    llm_rows = [r for r in world.store.list(limit=100000) if r.kind == "run" and (r.summary or "").startswith("llm call")]
    assert requests == len(llm_rows) > 0
    assert all(r.prompt_tokens == 120 and r.completion_tokens == 12 for r in llm_rows)
