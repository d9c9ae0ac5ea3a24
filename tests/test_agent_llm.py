"""The LLM planner: scripted model, the real client path over loopback, fallback, token accounting.

Spec: with a chat model the agent proposes calls, the gate decides and runs
them, and results go back to the model as tool messages. The real path is
LlmPlanner -> ChatOllama -> ollama client -> HTTP -> fake Ollama server. When
the model errors or answers unusably three times in a row, the run falls back
to the offline planner and the audit log says so. When its server cannot be
reached at all, the run falls back at once and runs during the cool-down skip
the model, and the audit log says that too. Every
LLM call is a `run` audit entry with its model and token counts.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage

from opsagent.agent import AgentConfig
from opsagent.evals import scripted
from doubles.agent_world import idle_findings, tiny_world
from opsagent.evals.fake_ollama import FakeOllama, Reply


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def _finding(world):
    [finding] = idle_findings(world.cluster.snapshot())
    return finding


def _config(server: FakeOllama, **kw) -> AgentConfig:
    return AgentConfig(model="llama3.2", ollama_host=server.url, request_timeout_seconds=kw.pop("timeout", 2.0), **kw)


def test_scripted_model_resolves_idle_gpu_and_sees_tool_results(world):
    planner = scripted.scripted_planner(
        scripted.call("get_workload", namespace="ml", name="llm"),
        scripted.call("sleep_workload", namespace="ml", name="llm"),
        scripted.text("Slept ml/llm; 2 GPUs freed."),
    )
    report = world.agent(planner).handle_finding(_finding(world))
    assert report.status == "done" and report.resolved is True
    assert [(a.tool, a.status) for a in report.actions] == [("get_workload", "ok"), ("sleep_workload", "ok")]
    assert report.llm_calls == 2 and report.planner == "llm:scripted"
    assert report.prompt_tokens == 200 and report.completion_tokens == 20
    assert world.tiny.workloads["ml/llm"].replicas == 0
    second_prompt = planner.chat_model.prompts[1]
    tool_msgs = [m for m in second_prompt if isinstance(m, ToolMessage)]
    lines = tool_msgs[0].content.split("\n")
    assert lines[0].startswith("Result of get_workload.") and lines[1] == "<cluster-data>" and lines[-1] == "</cluster-data>"
    assert json.loads(lines[2])["status"] == "ok" and len(lines) == 4


def test_real_client_path_over_loopback_reaches_the_gate(world):
    with FakeOllama([Reply.call("sleep_workload", namespace="ml", name="llm"), Reply.text("done")]) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
        chats = server.chat_requests
    assert report.status == "done" and report.resolved is True and not report.fell_back
    assert [(a.tool, a.status) for a in report.actions] == [("sleep_workload", "ok")]
    assert world.cluster.writes[0][0] == "scale"
    assert len(chats) == 1  # resolved after the first call: verify ends the run
    sent = chats[0]
    assert sent["model"] == "llama3.2"
    # an idle finding is offered the read tools and what its playbook names, nothing else
    from tools import REGISTRY

    reads = {n for n, t in REGISTRY.items() if t.risk == "read"}
    assert {t["function"]["name"] for t in sent["tools"]} == reads | {"sleep_workload"}
    assert all("title" not in t["function"]["parameters"] for t in sent["tools"])
    assert sent["messages"][0]["role"] == "system" and "<cluster-data>" in sent["messages"][1]["content"]
    llm_rows = [r for r in world.store.list(limit=100000) if r.kind == "run" and r.model == "llama3.2" and (r.summary or "").startswith("llm call")]
    assert [(r.prompt_tokens, r.completion_tokens) for r in llm_rows] == [(120, 12)]
    finished = [r for r in world.store.list(limit=100000) if r.kind == "run" and (r.summary or "").startswith("run done")]
    assert finished[0].prompt_tokens == 120 and finished[0].data["llm_calls"] == 1


def test_tool_results_go_back_to_the_model_as_tool_messages(world):
    with FakeOllama([Reply.call("get_workload", namespace="ml", name="llm"),
                     Reply.call("sleep_workload", namespace="ml", name="llm")]) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
        second = server.chat_requests[1]["messages"]
    assert report.resolved is True
    assert second[-1]["role"] == "tool" and '"status":"ok"' in second[-1]["content"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["function"]["name"] == "get_workload"


@pytest.mark.parametrize("reply", [Reply(mode="http_error"), Reply(mode="error_midstream", content="Let me"),
                                   Reply(mode="string_args", tool_calls=[("sleep_workload", {"namespace": "ml", "name": "llm"})]),
                                   Reply.text("")],
                         ids=["http-500", "error-mid-stream", "arguments-as-string", "empty-answer"])
def test_llm_failures_fall_back_to_offline_and_the_log_says_so(world, reply):
    with FakeOllama(default=reply) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
        assert len(server.chat_requests) == 3
    assert report.fell_back is True and report.planner == "offline"
    assert report.status == "done" and report.resolved is True  # the offline playbook did the job
    assert world.tiny.workloads["ml/llm"].replicas == 0
    fallbacks = [r for r in world.store.list(limit=100000) if r.kind == "run" and "falling back to the offline planner" in (r.summary or "")]
    assert len(fallbacks) == 1 and fallbacks[0].data["to"] == "offline"


def _closed_port() -> str:
    server = FakeOllama().start()
    url = server.url
    server.stop()  # nothing listens there any more: connection refused
    return url


def _llm_rows(world, run_id: str) -> list:
    return [r for r in world.store.list(limit=100000) if r.kind == "run" and r.run_id == run_id]


def test_ollama_down_falls_back_at_once_and_later_runs_skip_the_model_until_the_cool_down_ends(world):
    for name in ("a", "b", "c"):
        world.tiny.add_workload("ml", f"idle-{name}", replicas=1, gpus=1, request_rate=0.0)
    agent = world.agent("llm", config=AgentConfig(model="llama3.2", ollama_host=_closed_port(), llm_cooldown_seconds=300))
    findings = {f.subject: f for f in idle_findings(world.cluster.snapshot())}

    first = agent.handle_finding(findings["ml/llm"])  # one refused connection: no second or third try
    assert first.fell_back and first.resolved is True and first.llm_calls == 1
    rows = _llm_rows(world, first.run_id)
    assert [r.summary for r in rows if (r.summary or "").startswith("llm call")] == \
        ["llm call 1 failed: cannot reach Ollama: [Errno 111] Connection refused"]
    fallback = next(r for r in rows if "falling back" in (r.summary or ""))
    assert "cannot reach its model" in fallback.summary and fallback.data["unreachable"] is True

    second = agent.handle_finding(findings["ml/idle-a"])  # within the cool-down: the model is not asked at all
    assert second.fell_back and second.resolved is True and second.llm_calls == 0
    [skipped] = [r for r in _llm_rows(world, second.run_id) if (r.summary or "").startswith("llm skipped")]
    assert "could not be reached" in skipped.summary and "Connection refused" in skipped.summary
    assert "planning with the offline planner" in skipped.summary and skipped.data["to"] == "offline"

    world.clock.advance(301)  # the cool-down is over: the next run asks the model again
    third = agent.handle_finding(findings["ml/idle-b"])
    assert third.fell_back and third.llm_calls == 1
    assert not [r for r in _llm_rows(world, third.run_id) if (r.summary or "").startswith("llm skipped")]


def test_a_cool_down_of_zero_asks_the_model_in_every_run(world):
    world.tiny.add_workload("ml", "idle-a", replicas=1, gpus=1, request_rate=0.0)
    agent = world.agent("llm", config=AgentConfig(model="llama3.2", ollama_host=_closed_port(), llm_cooldown_seconds=0))
    reports = [agent.handle_finding(f) for f in idle_findings(world.cluster.snapshot())]
    assert [(r.llm_calls, r.fell_back, r.resolved) for r in reports] == [(1, True, True), (1, True, True)]


def test_a_streak_of_bad_answers_opens_the_breaker_and_repeats_double_the_cool_down(world):
    for name in ("a", "b", "c"):
        world.tiny.add_workload("ml", f"idle-{name}", replicas=1, gpus=1, request_rate=0.0)
    findings = {f.subject: f for f in idle_findings(world.cluster.snapshot())}
    with FakeOllama(default=Reply(mode="http_error")) as server:
        agent = world.agent("llm", config=_config(server, llm_cooldown_seconds=100))
        first = agent.handle_finding(findings["ml/llm"])
        assert len(server.chat_requests) == 3  # the server is up, its answers are bad: three tries, then fallback
        second = agent.handle_finding(findings["ml/idle-a"])  # within the cool-down: not asked at all
        assert len(server.chat_requests) == 3
        world.clock.advance(101)
        third = agent.handle_finding(findings["ml/idle-b"])  # asked again, bad again: the breaker opens for 200 s
        assert len(server.chat_requests) == 6
        world.clock.advance(150)
        fourth = agent.handle_finding(findings["ml/idle-c"])
        assert len(server.chat_requests) == 6
    assert [(r.llm_calls, r.fell_back, r.resolved) for r in (first, second, third, fourth)] == \
        [(3, True, True), (0, True, True), (3, True, True), (0, True, True)]
    [skipped, *_] = [r for r in _llm_rows(world, second.run_id) if (r.summary or "").startswith("llm skipped")]
    assert "gave unusable answers" in skipped.summary and "Ollama error 500" in skipped.summary
    [later] = [r for r in _llm_rows(world, fourth.run_id) if (r.summary or "").startswith("llm skipped")]
    assert "not asking it again until" in later.summary


def test_one_bad_answer_does_not_open_the_breaker(world):
    world.tiny.add_workload("ml", "idle-a", replicas=1, gpus=1, request_rate=0.0)
    findings = idle_findings(world.cluster.snapshot())
    with FakeOllama([Reply(mode="http_error"), Reply.call("sleep_workload", namespace="ml", name="llm"),
                     Reply.call("sleep_workload", namespace="ml", name="idle-a")]) as server:
        agent = world.agent("llm", config=_config(server))
        reports = [agent.handle_finding(f) for f in findings]
        assert len(server.chat_requests) == 3
    assert [(r.fell_back, r.resolved) for r in reports] == [(False, True), (False, True)]
    assert not [r for r in world.store.list(limit=100000) if (r.summary or "").startswith("llm skipped")]


def test_connection_failures_are_told_from_bad_answers():
    import httpx
    import socket

    from opsagent.agent.breaker import is_unreachable

    request = httpx.Request("POST", "http://127.0.0.1:1/api/chat")
    unreachable = [httpx.ConnectError("refused", request=request), httpx.ConnectTimeout("connect", request=request),
                   ConnectionRefusedError(111, "refused"), ConnectionError("Failed to connect to Ollama"),
                   socket.gaierror(-2, "Name or service not known")]
    answered = [httpx.ReadTimeout("slow", request=request), httpx.RemoteProtocolError("eof", request=request),
                ValueError("bad json"), TimeoutError("read")]
    assert [is_unreachable(e) for e in unreachable] == [True] * len(unreachable)
    assert [is_unreachable(e) for e in answered] == [False] * len(answered)


def test_slow_model_times_out_and_falls_back(world):
    with FakeOllama(default=Reply(delay=5.0)) as server:
        report = world.agent("llm", config=_config(server, timeout=0.2)).handle_finding(_finding(world))
    assert report.fell_back and report.resolved is True
    assert any("timeout" in (r.summary or "") for r in world.store.list(limit=100000) if r.kind == "run")


def test_unknown_model_404_falls_back(world):
    with FakeOllama(models=("other:latest",)) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
    assert report.fell_back
    assert any("model not found" in (r.summary or "") for r in world.store.list(limit=100000) if r.kind == "run")


def test_one_failure_then_recovery_does_not_fall_back(world):
    with FakeOllama([Reply(mode="http_error"), Reply.call("sleep_workload", namespace="ml", name="llm")]) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
    assert not report.fell_back and report.planner == "llm:llama3.2" and report.resolved is True
    assert report.llm_calls == 2


def test_chat_message_runs_as_the_person_and_its_writes_are_only_proposed(world):
    planner = scripted.scripted_planner(scripted.call("list_workloads"),
                                        scripted.call("scale_workload", namespace="ml", name="chat", replicas=2),
                                        scripted.text("Scaled ml/chat to 2."))
    report = world.agent(planner).handle_message("please scale ml/chat to 2", actor="alice", channel="slack")
    assert report.status == "done" and report.summary == "Scaled ml/chat to 2."
    assert [(a.tool, a.status) for a in report.actions] == [("list_workloads", "ok"), ("scale_workload", "proposed")]
    assert world.tiny.workloads["ml/chat"].replicas == 1 and world.cluster.writes == []
    read = next(r for r in world.store.list(limit=100000) if r.kind == "result")  # the read ran, as the person
    assert (read.tool, read.actor, read.channel, read.message) == ("list_workloads", "alice", "slack", "please scale ml/chat to 2")
    assert not [r for r in world.store.list(limit=100000) if r.tool == "scale_workload" and r.kind != "run"]
    told = planner.chat_model.prompts[2][-1]  # what the model read back for its write
    assert '"status":"awaiting_confirmation"' in told.content and "alice" in told.content
    prompt = planner.chat_model.prompts[0][1].content
    assert "please scale ml/chat to 2" in prompt and '"workload":"ml/chat"' in prompt


def test_chat_is_offered_every_tool_and_an_unoffered_call_still_meets_the_gate(world):
    from tools import REGISTRY

    with FakeOllama([Reply.text("Nothing to do.")]) as server:
        world.agent("llm", config=_config(server)).handle_message("how is ml/chat?", actor="alice")
        chat_tools = {t["function"]["name"] for t in server.chat_requests[0]["tools"]}
    assert chat_tools == set(REGISTRY)
    # a model that reaches for a tool the finding was not offered: refused before the gate, and audited
    with FakeOllama([Reply.call("delete_workload", namespace="ml", name="llm"), Reply.text("done")]) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
    assert report.actions[0].tool == "delete_workload" and report.actions[0].status == "denied"
    assert report.actions[0].message == "refused before the gate: delete_workload was not offered for this finding"
    assert not [r for r in world.store.list(limit=100000) if r.kind == "result" and r.tool == "delete_workload"]
    [refused] = [r for r in world.store.list(limit=100000) if r.kind == "run" and r.tool == "delete_workload"]
    assert refused.outcome == "denied" and refused.args == {"namespace": "ml", "name": "llm"}
    # the model then stopped with nothing done: the playbook took over and did what the policy allows
    assert report.fell_back and report.resolved is True
    assert [w[0] for w in world.cluster.writes] == ["scale"] and world.tiny.workloads["ml/llm"].replicas == 0
