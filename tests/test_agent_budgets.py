"""A run's token and time budgets, on the simulator with the shipped policy and playbooks.

Spec: a fine-tuning job waits for three GPUs while two idle workloads hold
one each, so jobs-waiting-free-idle has two steps: sleep one holder, then
the other (the finding lists chat-ui first). The agent checks its budgets
before each round of planning, and a model answer that takes the run over
its token budget is not acted on. A run that has used up its tokens
(OPSAGENT_AGENT_MAX_TOKENS) or its seconds (OPSAGENT_AGENT_MAX_SECONDS) by
the second round ends with status budget_exhausted; its report and its
final audit entry say which budget; no model call, proposal or write comes
after it, so the second holder keeps running. With the default budgets the
same run sleeps both and resolves the finding.
"""

from __future__ import annotations

import re

import pytest
from sim_harness import Stage, node, stage, workload

from opsagent.agent import AgentConfig, RunReport
from opsagent.evals.planners import PlaybookModelPlanner

FINDING = "jobs_waiting:cluster"
HOLDERS = ("render/render-ui", "chat/chat-ui")
SCENARIO = {
    "nodes": [node((3, 16, "0"))],
    "workloads": [workload(ref, gpus=1) for ref in HOLDERS],  # no traffic: idle once their intents' windows pass
    "jobs": [{"namespace": "training", "name": "finetune", "gpus": 3, "duration": "4h", "at": "+1m"}],
}


@pytest.fixture
def st(tmp_path):
    s = stage(tmp_path, SCENARIO, minutes=40)
    yield s
    s.close()


def _run(st: Stage, planner, env: dict[str, str]) -> RunReport:
    finding = st.finding(FINDING)
    assert finding is not None and [h["name"] for h in finding.details["idle_holders"]] == ["chat-ui", "render-ui"]
    with st.agent(planner, config=AgentConfig.from_env(env)) as agent:
        return agent.handle_finding(finding)


def _replicas(st: Stage) -> dict[str, int]:
    return {w.key: w.replicas for w in st.sim.snapshot().workloads}


def _stopped_after_one_step(st: Stage, report: RunReport, budget: str) -> None:
    assert report.status == "budget_exhausted" and report.resolved is not True, report
    assert f"{budget} budget exhausted" in report.summary, report.summary
    assert [(a.tool, a.args["name"], a.status) for a in report.actions] == [("sleep_workload", "chat-ui", "ok")]
    assert [m for m, _ in st.writes()] == ["scale"]
    assert _replicas(st) == {"render/render-ui": 1, "chat/chat-ui": 0}
    entries = sorted(st.world.store.list(limit=1000), key=lambda r: r.id)
    [end] = [i for i, r in enumerate(entries) if r.kind == "run" and (r.summary or "").startswith("run budget_exhausted")]
    assert f"{budget} budget exhausted" in entries[end].summary and entries[end].outcome == "error"
    assert entries[end].finding_id == FINDING
    assert entries[end + 1:] == [], [(r.kind, r.summary) for r in entries[end + 1:]]
    assert st.finding(FINDING) is not None


def test_the_answer_that_goes_over_the_token_budget_is_not_acted_on(st):
    # every scripted answer costs 110 tokens (100 prompt + 10 completion); the budget is 150
    report = _run(st, PlaybookModelPlanner(), {"OPSAGENT_AGENT_MAX_TOKENS": "150"})
    _stopped_after_one_step(st, report, "token")
    assert "220 of 150" in report.summary and "1 call(s) of the answer that went over it were not run" in report.summary
    assert report.tokens == 220 and report.llm_calls == 2
    llm_rows = [r for r in st.world.store.list(limit=1000) if r.kind == "run" and (r.summary or "").startswith("llm call")]
    assert len(llm_rows) == 2


def test_a_first_answer_over_the_token_budget_changes_nothing(st):
    report = _run(st, PlaybookModelPlanner(), {"OPSAGENT_AGENT_MAX_TOKENS": "100"})
    assert report.status == "budget_exhausted" and "110 of 100" in report.summary
    assert report.actions == [] and st.writes() == []
    assert _replicas(st) == {"render/render-ui": 1, "chat/chat-ui": 1}


def test_time_budget_ends_the_run_when_its_seconds_are_spent(st):
    # after the first sleep the agent lets two simulated minutes pass before it re-checks; the budget is 60 s
    report = _run(st, "offline", {"OPSAGENT_AGENT_MAX_SECONDS": "60"})
    _stopped_after_one_step(st, report, "time")
    spent = re.search(r"time budget exhausted \((\d+)s of 60s\)", report.summary)
    assert spent is not None and int(spent.group(1)) >= 120, report.summary


@pytest.mark.parametrize("planner", ["offline", "llm"])
def test_with_default_budgets_the_same_run_frees_both_holders(st, planner):
    report = _run(st, "offline" if planner == "offline" else PlaybookModelPlanner(), {})
    assert report.status == "done" and report.resolved is True, report
    assert [a.args["name"] for a in report.actions if a.tool == "sleep_workload"] == ["chat-ui", "render-ui"]
    assert _replicas(st) == {"render/render-ui": 0, "chat/chat-ui": 0}
    assert st.finding(FINDING) is None
