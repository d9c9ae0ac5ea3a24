"""The agent with the offline planner on a tiny cluster, through the real gate and audit store.

Spec: a finding runs its playbook's steps through the gate and ends when the
playbook's verify condition holds; every step is in the audit log; a finished
finding thread is never resumed (a new epoch starts); a steady cluster makes
no LLM call at all, counted on a real (fake) Ollama server.
"""

from __future__ import annotations

import pytest

from opsagent.agent import AgentConfig
from doubles.agent_world import idle_findings, tiny_world
from opsagent.evals.fake_ollama import FakeOllama


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def test_offline_planner_resolves_idle_gpu_through_the_gate(world):
    agent = world.agent()
    [finding] = idle_findings(world.cluster.snapshot())
    report = agent.handle_finding(finding)
    assert report.status == "done" and report.resolved is True, report
    assert [(a.tool, a.status) for a in report.actions] == [("sleep_workload", "ok")]
    assert report.llm_calls == 0 and report.planner == "offline" and not report.fell_back
    assert world.tiny.workloads["ml/llm"].replicas == 0
    assert [w[0] for w in world.cluster.writes] == ["scale"]
    kinds = [(r.kind, r.tool) for r in reversed(world.store.list(limit=100000))]
    assert kinds[:5] == [("run", None), ("run", "sleep_workload"),  # started; claim before submitting
                         ("proposal", "sleep_workload"), ("decision", "sleep_workload"), ("result", "sleep_workload")]
    assert kinds[-1] == ("run", None)
    assert world.store.verify().ok
    assert idle_findings(world.cluster.snapshot()) == []


def test_a_finished_thread_is_not_resumed_a_new_epoch_starts(world):
    agent = world.agent()
    [finding] = idle_findings(world.cluster.snapshot())
    first = agent.handle_finding(finding)
    # the workload goes idle holding GPUs again: the same finding id comes back
    world.tiny.scale(ref=world.tiny.workloads["ml/llm"].ref, replicas=1)
    world.tiny.advance(60)
    second = agent.handle_finding(finding)
    assert first.run_id == "finding:idle_gpu:ml/llm"
    assert second.run_id == "finding:idle_gpu:ml/llm#2"
    assert second.status == "done" and second.resolved is True
    assert [w[0] for w in world.cluster.writes] == ["scale", "scale"]


def test_denied_step_stops_the_offline_run_and_says_why(tmp_path):
    w = tiny_world(tmp_path, table={"get_workload": "allow"})  # sleep_workload falls to default deny
    try:
        [finding] = idle_findings(w.cluster.snapshot())
        report = w.agent().handle_finding(finding)
        assert report.status == "done" and report.resolved is False
        assert [(a.tool, a.status) for a in report.denied] == [("sleep_workload", "denied")]
        assert "Stopped at step 1 (sleep_workload): denied" in report.summary
        assert report.summary.startswith(f"Finding idle_gpu:ml/llm still open ({finding.summary})")
        assert w.cluster.writes == []
    finally:
        w.close()


def test_steady_cluster_makes_zero_llm_calls(world):
    world.tiny.workloads["ml/llm"] = world.tiny.workloads["ml/llm"].model_copy(update={"request_rate": 2.0})
    with FakeOllama() as server:
        agent = world.agent("llm", config=AgentConfig(model="llama3.2", ollama_host=server.url))
        for _ in range(5):
            assert agent.reconcile_once() == []
        assert server.requests == []  # not even /api/tags
    assert world.cluster.writes == []


class SlowPlanner:
    """A planner whose every turn takes `seconds` on the run's clock (a slow model)."""

    def __init__(self, inner, clock, *, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def plan(self, inp):
        self.clock.sleep(self.seconds)
        return self.inner.plan(inp)


def test_budget_exhausted_is_reported_and_audited(world):
    from opsagent.evals import scripted

    # the time budget is a hard stop (a fallback would need time too); the step budget hands over, see below
    planner = scripted.scripted_planner(*[scripted.call("get_workload", namespace="ml", name="llm") for _ in range(5)])
    agent = world.agent(SlowPlanner(planner, world.clock, seconds=15), config=AgentConfig(max_seconds=20))
    [finding] = idle_findings(world.cluster.snapshot())
    report = agent.handle_finding(finding)
    assert report.status == "budget_exhausted" and not report.fell_back
    assert "time budget" in report.summary
    assert [a.tool for a in report.actions] == ["get_workload", "get_workload"]
    finished = [r for r in world.store.list(limit=100000) if r.kind == "run" and (r.summary or "").startswith("run budget_exhausted")]
    assert len(finished) == 1 and finished[0].outcome == "error"


def test_a_model_that_makes_no_progress_within_the_step_budget_hands_over_to_the_playbook(world):
    from opsagent.evals import scripted

    planner = scripted.scripted_planner(*[scripted.call("get_workload", namespace="ml", name="llm") for _ in range(5)])
    agent = world.agent(planner, config=AgentConfig(max_steps=2))
    [finding] = idle_findings(world.cluster.snapshot())
    report = agent.handle_finding(finding)
    assert report.status == "done" and report.resolved is True and report.fell_back
    assert [a.tool for a in report.actions] == ["get_workload", "get_workload", "sleep_workload"]
    [handover] = [r for r in world.store.list(limit=100000) if "falling back" in (r.summary or "")]
    assert "no progress within its budget (step budget exhausted (2 rounds))" in handover.summary


def test_unresolved_finding_is_retried_only_as_the_playbook_allows(tmp_path):
    # idle-gpu-sleep: retry {max_attempts: 2, backoff: 5m}; default deny keeps the finding open
    w = tiny_world(tmp_path, table={"get_workload": "allow"})
    try:
        agent = w.agent()
        [finding] = idle_findings(w.cluster.snapshot())
        first = agent.handle_finding(finding)
        assert first.resolved is False and first.actions
        held = agent.handle_finding(finding)
        assert held.actions == [] and "retry of idle_gpu:ml/llm due at" in held.summary
        w.clock.advance(301)
        second = agent.handle_finding(finding)
        assert second.run_id.endswith("#2") and second.actions
        w.clock.advance(3600)
        for _ in range(3):
            stop = agent.handle_finding(finding)
            assert stop.actions == [] and "not trying again: a person should look" in stop.summary
        gave_up = [r for r in w.store.list(limit=1000) if r.kind == "run" and "not trying again" in (r.summary or "")]
        assert len(gave_up) == 1
        assert [x for x in w.store.list(limit=1000) if x.kind == "result" and x.tool == "sleep_workload"].__len__() == 2
    finally:
        w.close()


def test_wait_playbook_starts_no_run_and_asks_no_model(world, tmp_path):
    from opsagent.playbooks import load_playbooks
    from opsagent.evals import scripted

    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "idle.yaml").write_text(
        "playbooks:\n  - name: idle-later\n    on: idle_gpu\n    guidance: not yet\n    wait: true\n")
    world.playbooks = load_playbooks(tmp_path / "pb")
    planner = scripted.scripted_planner(scripted.call("sleep_workload", namespace="ml", name="llm"))
    [finding] = idle_findings(world.cluster.snapshot())
    report = world.agent(planner).handle_finding(finding)
    assert "waiting, as playbook idle-later says" in report.summary
    assert report.actions == [] and report.llm_calls == 0
    assert planner.chat_model.prompts == []
    assert world.cluster.writes == [] and world.store.list(limit=10) == []


def test_playbook_retry_counts_runs_that_got_nowhere_then_hands_over(tmp_path):
    from datetime import timedelta

    w = tiny_world(tmp_path, table={"get_workload": "allow"})  # sleep_workload is denied: every run gets nowhere
    try:
        agent = w.agent()
        [finding] = idle_findings(w.cluster.snapshot())
        first = agent.handle_finding(finding)  # idle-gpu-sleep allows 2 runs, 5m apart
        assert first.resolved is False and [a.status for a in first.denied] == ["denied"]
        held = agent.handle_finding(finding)
        assert held.actions == [] and "retry of idle_gpu:ml/llm due at" in held.summary and "attempt 2 of 2" in held.summary
        w.clock.advance(timedelta(minutes=5))
        second = agent.handle_finding(finding)
        assert second.run_id == "finding:idle_gpu:ml/llm#2" and [a.status for a in second.denied] == ["denied"]
        w.clock.advance(timedelta(hours=1))
        gave_up = agent.handle_finding(finding)
        assert gave_up.actions == [] and "2 run(s) did not resolve" in gave_up.summary and "a person should look" in gave_up.summary
        assert sum(1 for r in w.store.list(limit=1000) if r.tool == "sleep_workload" and r.kind == "decision") == 2
    finally:
        w.close()
