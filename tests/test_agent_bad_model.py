"""A bad model costs nothing (invariant 6): garbled and hostile models fall back, never crash a run.

Spec: an Ollama server that answers 200 with an HTML page, cuts its stream in
the middle of a JSON line, or answers slower than the client waits gives
failures the run counts, never an exception that ends it; after
`max_failures` unusable turns in a row the run falls back to the offline
planner, the audit log says why, and the breaker keeps the model out of the
next runs for its cool-down. A model that mixes invalid arguments, denied
calls, out-of-scope targets and repeats falls back the same way. Everything
runs the real client path over loopback against the real gate and audit log.
"""

from __future__ import annotations

import pytest

from opsagent.agent import AgentConfig
from opsagent.evals import scripted
from doubles.agent_world import idle_findings, tiny_world
from opsagent.evals.fake_ollama import FakeOllama, Reply

CALL = [("sleep_workload", {"namespace": "ml", "name": "llm"})]


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def _config(server: FakeOllama, **kw) -> AgentConfig:
    return AgentConfig(model="llama3.2", ollama_host=server.url, request_timeout_seconds=kw.pop("timeout", 2.0), **kw)


def _runs(world, prefix: str) -> list:
    return [r for r in world.store.list(limit=100000) if r.kind == "run" and (r.summary or "").startswith(prefix)]


@pytest.mark.parametrize("reply,reason", [
    (Reply(mode="html"), "garbled answer from the model server (not JSON"),
    (Reply(mode="cut", content="Let me free the GPUs.", tool_calls=CALL), "garbled answer from the model server (not JSON"),
    (Reply(mode="cut", tool_calls=CALL), "garbled answer from the model server (not JSON"),
    (Reply(delay=1.0, tool_calls=CALL), "timeout talking to Ollama"),
    (Reply(raw_tool_calls=[{"function": {"arguments": {"namespace": "ml"}}}]), "malformed model output: Field required"),
], ids=["html-200", "cut-after-text", "cut-in-tool-call", "slow", "call-without-name"])
def test_garbled_answers_are_counted_failures_and_the_run_falls_back(world, reply, reason):
    with FakeOllama(default=reply) as server:
        [finding] = idle_findings(world.cluster.snapshot())
        report = world.agent("llm", config=_config(server, timeout=0.3)).handle_finding(finding)
        assert len(server.chat_requests) == 3
    assert report.status == "done" and report.fell_back and report.resolved is True
    assert _runs(world, "run failed") == []
    failed = _runs(world, "llm call")
    assert len(failed) == 3 and all(reason in r.summary for r in failed), [r.summary for r in failed]
    [fallback] = [r for r in world.store.list(limit=100000) if "falling back to the offline planner" in (r.summary or "")]
    assert "gave 3 unusable turns in a row" in fallback.summary
    assert fallback.data["to"] == "offline" and len(fallback.data["streak"]) == 3


def test_a_garbled_server_over_many_daemon_cycles_never_fails_a_run_and_is_asked_rarely(world):
    # 24 cycles of 5 minutes; a new idle workload appears every other cycle, so there is always work
    with FakeOllama(default=Reply(mode="html")) as server:
        agent = world.agent("llm", config=_config(server, llm_cooldown_seconds=60))
        reports = []
        for cycle in range(24):
            if cycle % 2 == 0:
                world.tiny.add_workload("ml", f"idle-{cycle}", replicas=1, gpus=1, request_rate=0.0)
            reports += agent.reconcile_once()
            world.clock.advance(300)
        asked = len(server.chat_requests)
    assert [r.run_id for r in reports if r.status == "failed"] == []
    assert _runs(world, "run failed") == []
    assert all(r.resolved for r in reports if r.run_id.startswith("finding:"))
    # three tries per opening of the breaker, whose cool-down doubles on each repeat (60 s, 120 s, 240 s, ...):
    # the model is asked in at most 8 of the 24 cycles instead of in every one (72 requests)
    assert asked % 3 == 0 and 3 <= asked <= 24, asked
    runs = {r.run_id for r in reports if r.run_id.startswith("finding:")}
    assert len(runs) == 13 and len(_runs(world, "llm skipped")) + asked // 3 == len(runs)  # every run: skipped or 3 tries


def test_a_hostile_mix_of_invalid_denied_out_of_scope_and_repeated_calls_falls_back(world):
    world.tiny.add_workload("ml", "bystander", replicas=1, gpus=1, request_rate=5.0)
    planner = scripted.scripted_planner(
        scripted.call("get_workload", namespace="ml", name="llm"),                  # neutral: a read
        scripted.call("sleep_workload", namespace="ml", name="llm", force=True),    # invalid arguments
        scripted.call("get_workload", namespace="ml", name="llm"),                  # neutral again: the streak holds
        scripted.call("sleep_workload", namespace="ml", name="bystander"),          # outside the finding
        scripted.call("sleep_workload", namespace="ml", name="llm", force=True),    # a repeat of a refused call
        scripted.call("delete_workload", namespace="ml", name="llm"),               # never reached: fallback first
    )
    report = world.agent(planner, config=AgentConfig()).handle_finding(idle_findings(world.cluster.snapshot())[0])
    assert [(a.tool, a.status) for a in report.actions] == [
        ("get_workload", "ok"), ("sleep_workload", "invalid"), ("get_workload", "ok"), ("sleep_workload", "denied"),
        ("sleep_workload", "denied"), ("sleep_workload", "ok")]
    assert report.fell_back and report.resolved is True and report.planner == "offline"
    assert world.tiny.workloads["ml/bystander"].replicas == 1
    [fallback] = [r for r in world.store.list(limit=100000) if "falling back" in (r.summary or "")]
    assert "already refused" in fallback.data["streak"][-1] and "outside this finding" in fallback.data["streak"][1]


def test_max_failures_comes_from_the_config(world, monkeypatch):
    monkeypatch.setenv("OPSAGENT_AGENT_MAX_FAILURES", "1")
    config = AgentConfig.from_env()
    assert config.max_failures == 1
    with FakeOllama(default=Reply(mode="html")) as server:
        report = world.agent("llm", config=config.model_copy(update={"ollama_host": server.url})).handle_finding(
            idle_findings(world.cluster.snapshot())[0])
        assert len(server.chat_requests) == 1
    assert report.fell_back and report.resolved is True
    monkeypatch.setenv("OPSAGENT_AGENT_MAX_FAILURES", "zero")
    with pytest.raises(ValueError, match="OPSAGENT_AGENT_MAX_FAILURES"):
        AgentConfig.from_env()


def test_a_usable_turn_resets_the_streak(world):
    world.tiny.add_workload("ml", "idle-a", replicas=1, gpus=1, request_rate=0.0)
    replies = [Reply(mode="html"), Reply(mode="cut", tool_calls=CALL), Reply.call("sleep_workload", namespace="ml", name="llm"),
               Reply(mode="html"), Reply(mode="html"), Reply.call("sleep_workload", namespace="ml", name="idle-a")]
    with FakeOllama(replies) as server:
        agent = world.agent("llm", config=_config(server))
        reports = [agent.handle_finding(f) for f in idle_findings(world.cluster.snapshot())]
        assert len(server.chat_requests) == 6
    assert [(r.fell_back, r.resolved, r.llm_calls) for r in reports] == [(False, True, 3), (False, True, 3)]


def test_an_answer_with_a_flood_of_calls_runs_only_the_first_eight(world):
    from opsagent.agent.turns import MAX_CALLS_PER_TURN

    flood = [("get_workload", {"namespace": "ml", "name": "llm"})] * 11 + [("sleep_workload", {"namespace": "ml", "name": "llm"})]
    with FakeOllama([Reply(tool_calls=flood)], default=Reply(tool_calls=CALL)) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(idle_findings(world.cluster.snapshot())[0])
        second = server.chat_requests[1]["messages"]
    assert [a.status for a in report.actions] == ["ok"] * MAX_CALLS_PER_TURN + ["ok"]  # the rest never ran
    assert len([r for r in world.store.list(limit=100000) if r.kind == "result" and r.tool == "get_workload"]) == 8
    dropped = [r for r in world.store.list(limit=100000) if (r.summary or "").startswith("not run: more than 8 calls")]
    assert [r.tool for r in sorted(dropped, key=lambda r: r.id)] == ["get_workload"] * 3 + ["sleep_workload"]
    told = [m for m in second if m["role"] == "tool" and "not run: more than 8 calls in one answer" in m["content"]]
    assert len(told) == 4
    # dropping is no verdict on the call: the same sleep in the model's next answer ran, and resolved the finding
    assert report.resolved is True and not report.fell_back and report.actions[-1].tool == "sleep_workload"
