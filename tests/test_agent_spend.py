"""Spend caps across runs: daily model calls and tokens for the daemon and for each chat actor.

Spec: `spend_caps` in a policy file caps the daemon's model calls and tokens,
and each chat actor's, over a rolling 24 hours on the runtime's clock. Bad
caps are load errors with file:line; a cap of 0 is a warning; files only
narrow (the smallest value wins). Use is counted from the audit log's
model-call rows, so a restart or another process sees the same count, and a
run's `finished` row is not counted again. Past the cap no model call is
made: a finding is planned offline, a chat message gets a clear reply, and
the audit log says why. One actor's use never counts against another's.
`/metrics` shows the daemon's calls, tokens and what its cap still allows.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.agent import AgentConfig
from opsagent.audit import AuditStore
from opsagent.model import AuditEntry
from opsagent.policy import PolicyError, load_policy
from opsagent.policy.lint import lint
from opsagent.policy.schema import SpendCap, SpendCaps
from doubles.agent_world import idle_findings, tiny_world
from doubles.fake_openai import FakeOpenAI, Reply
from tools import risk_table

REPO = Path(__file__).resolve().parents[1]
MODEL = "Qwen/Qwen3-8B"
T0 = "2026-01-05T00:00:00+00:00"


def _policy_dir(tmp_path: Path, *extra: str) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(REPO / "policies", directory)
    for n, text in enumerate(extra):
        (directory / f"zz-{n}.yaml").write_text(text)
    return directory


def test_caps_load_and_the_smallest_of_each_wins(tmp_path):
    directory = _policy_dir(tmp_path, "spend_caps:\n  daemon: {calls: 500, tokens: 2000000}\n  per_actor: {calls: 40}\n",
                            "spend_caps:\n  daemon: {calls: 800}\n  per_actor: {calls: 60, tokens: 90000}\n")
    caps = load_policy(directory, tool_risks=risk_table()).spend_caps
    assert caps == SpendCaps(daemon=SpendCap(calls=500, tokens=2_000_000), per_actor=SpendCap(calls=40, tokens=90_000))
    report = lint(directory, tool_risks=risk_table())
    assert any("the smallest value of each is used" in p.message for p in report.warnings)


@pytest.mark.parametrize("text,where,message", [
    ("spend_caps:\n  daemon: {calls: -1}\n", ":2:", "greater than or equal to 0"),
    ("spend_caps:\n  per_actor: {cals: 5}\n", ":2:", "unknown field 'cals'"),
    ("spend_caps:\n  per_actor: {}\n", ":2:", "set calls, tokens or both"),
    ("spend_caps:\n  everyone: {calls: 5}\n", ":2:", "unknown field 'everyone'"),
    ("spend_caps:\n  daemon: {calls: lots}\n", ":2:", "integer"),
])
def test_bad_caps_are_errors_with_file_and_line(tmp_path, text, where, message):
    directory = _policy_dir(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(directory, tool_risks=risk_table())
    shown = str(raised.value)
    assert f"zz-0.yaml{where}" in shown and message in shown and "Traceback" not in shown


def test_a_cap_of_zero_is_a_warning_that_says_what_it_does(tmp_path):
    directory = _policy_dir(tmp_path, "spend_caps:\n  daemon:\n    calls: 0\n")
    [warning] = [p for p in lint(directory, tool_risks=risk_table()).warnings if p.field == "spend_caps.daemon.calls"]
    assert (warning.file.endswith("zz-0.yaml"), warning.line) == (True, 3)
    assert "the daemon never asks the model" in warning.message


def test_spend_is_counted_from_model_call_rows_in_a_rolling_day(tmp_path):
    from datetime import datetime

    t0 = datetime.fromisoformat(T0)
    with AuditStore(tmp_path / "a.db") as store:
        def call(n, actor, at, tokens=100, run="finding:x"):
            store.record(AuditEntry(time=at, kind="run", actor=actor, run_id=run, model="m", prompt_tokens=tokens,
                                    completion_tokens=10, summary=f"llm call {n}", idempotency_key=f"{run}:run:llm{n}"))
        call(1, "daemon", t0)
        call(2, "daemon", t0 + timedelta(hours=20))
        call(1, "alice", t0 + timedelta(hours=21), tokens=5000, run="chat:alice:1")
        store.record(AuditEntry(time=t0 + timedelta(hours=21), kind="run", actor="daemon", run_id="finding:x", model="m",
                                prompt_tokens=200, completion_tokens=20, idempotency_key="finding:x:run:finished"))
        store.record(AuditEntry(time=t0 + timedelta(hours=21), kind="run", actor="daemon", run_id="finding:x",
                                summary="llm skipped", idempotency_key="finding:x:run:llm-skipped"))
        now = t0 + timedelta(hours=23)
        assert store.model_spend(since=now - timedelta(hours=24), actor="daemon") == (2, 220)
        assert store.model_spend(since=now - timedelta(hours=24), actor="alice") == (1, 5010)
        later = t0 + timedelta(hours=25)   # the first call has aged out
        assert store.model_spend(since=later - timedelta(hours=24), actor="daemon") == (1, 110)
        plan = store.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM audit WHERE kind = 'run' AND idempotency_key GLOB '*:run:llm[0-9]*' "
            "AND time >= ? AND actor = ?", (T0, "daemon")).fetchall()
        assert "idx_audit_model_calls" in str([tuple(r) for r in plan])


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def _config(server):
    # no breaker cool-down: a model that only talks still gets asked each run, so the cap is what stops it
    return AgentConfig(model=f"openai:{MODEL}", base_url=server.url, llm_cooldown_seconds=0)


def test_past_the_daemons_cap_findings_are_planned_offline_and_the_log_says_why(world):
    world.policy.spend_caps = SpendCaps(daemon=SpendCap(calls=2))
    for name in ("a", "b"):
        world.tiny.add_workload("ml", f"idle-{name}", replicas=1, gpus=1, request_rate=0.0)
    findings = {f.subject: f for f in idle_findings(world.cluster.snapshot())}
    with FakeOpenAI(default=Reply.text("Looked; nothing to add."), models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server))
        first = agent.handle_finding(findings["ml/llm"])        # 1 call: text answer, then verify
        second = agent.handle_finding(findings["ml/idle-a"])    # 1 call: now at the cap
        agent.close()
        restarted = world.agent("llm", config=_config(server))  # a new process counts the same durable rows
        third = restarted.handle_finding(findings["ml/idle-b"])
        asked = len(server.chat_requests)
    assert (first.llm_calls, second.llm_calls, third.llm_calls) == (1, 1, 0)
    assert asked == 2
    assert third.planner == "offline" and third.resolved is True and world.tiny.workloads["ml/idle-b"].replicas == 0
    [row] = [r for r in world.store.list(limit=1000) if r.run_id == third.run_id and (r.summary or "").startswith("llm not asked")]
    assert "the daemon's daily model budget is used up: 2 of 2 calls in the last 24 hours" in row.summary
    assert row.outcome == "denied" and row.data["to"] == "offline"
    assert restarted.spend("daemon").remaining_calls == 0
    world.clock.advance(24 * 3600 + 1)                           # a rolling day later the budget is back
    assert restarted.spend("daemon").remaining_calls == 2


def test_a_token_cap_counts_the_servers_usage(world):
    world.policy.spend_caps = SpendCaps(daemon=SpendCap(tokens=200))
    with FakeOpenAI(default=Reply(content="ok", prompt_tokens=150, completion_tokens=60), models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)   # the model only talks: the finding stays open
        world.clock.advance(600)                  # past the playbook's retry backoff
        again = agent.handle_finding(finding)
        assert len(server.chat_requests) == 1
    assert report.llm_calls == 1 and again.llm_calls == 0 and again.planner == "offline"
    assert "210 of 200 tokens" in next(r.summary for r in world.store.list(limit=1000)
                                       if (r.summary or "").startswith("llm not asked"))


def test_each_chat_actor_has_their_own_cap_and_gets_a_clear_reply(world):
    world.policy.spend_caps = SpendCaps(per_actor=SpendCap(calls=1))
    with FakeOpenAI(default=Reply.text("Two workloads hold GPUs."), models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server))
        first = agent.handle_message("what holds GPUs?", actor="alice", channel="cli")
        second = agent.handle_message("and now?", actor="alice", channel="cli")
        bob = agent.handle_message("what holds GPUs?", actor="bob", channel="slack")
        daemon = agent.handle_finding(next(f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"))
        asked = len(server.chat_requests)
    assert first.summary == "Two workloads hold GPUs." and first.llm_calls == 1
    assert second.llm_calls == 0 and second.summary.startswith("Not answered: alice's daily model budget is used up: "
                                                                "1 of 1 calls in the last 24 hours")
    assert bob.llm_calls == 1 and bob.summary == "Two workloads hold GPUs."
    assert daemon.llm_calls == 1   # no daemon cap: people's use is theirs alone
    assert asked == 3
    [row] = [r for r in world.store.list(limit=1000) if (r.summary or "").startswith("llm not asked")]
    assert (row.actor, row.run_id, row.outcome) == ("alice", second.run_id, "denied")


def test_metrics_show_the_daemons_spend_and_what_is_left(tmp_path, monkeypatch):
    from opsagent.daemon import Daemon, DaemonOptions

    monkeypatch.setenv("OPSAGENT_AGENT_LLM_COOLDOWN", "0")   # the cap, not the breaker, is what stops the model here
    directory = _policy_dir(tmp_path, "spend_caps:\n  daemon: {calls: 3, tokens: 100000}\n")
    with FakeOpenAI(default=Reply.text("Nothing to add."), models=(MODEL,)) as server:
        daemon = Daemon(DaemonOptions(policies=directory, playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                                      model=f"openai:{MODEL}", base_url=server.url, interval=300, cycles=12, sim_speed=0))
        assert daemon.run(install_signals=False) == 0
        asked = len(server.chat_requests)
    text = daemon.metrics.render()
    values = dict(re.findall(r'^(opsagent_model_[a-z_]+(?:\{[^}]*\})?) (\S+)$', text, re.M))
    assert asked == 3
    assert float(values["opsagent_model_calls_last_day"]) == 3
    assert float(values["opsagent_model_tokens_last_day"]) == 3 * 132
    assert float(values['opsagent_model_budget_remaining{unit="calls"}']) == 0
    assert float(values['opsagent_model_budget_remaining{unit="tokens"}']) == 100000 - 3 * 132
    store = AuditStore(tmp_path / "ops.db")
    try:
        assert store.verify().ok
    finally:
        store.close()
