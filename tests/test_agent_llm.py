"""The LLM planner: scripted model, the real client path over loopback, fallback, token accounting.

Spec: with a chat model the agent proposes calls, the gate decides and runs
them, and results go back to the model as tool messages. The real path is
LlmPlanner -> ChatOllama -> ollama client -> HTTP -> fake Ollama server. When
the model is unreachable, errors, or answers unusably three times in a row,
the run falls back to the offline planner and the audit log says so. Every
LLM call is a `run` audit entry with its model and token counts.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage

from opsagent.agent import AgentConfig
from opsagent.testing import scripted
from opsagent.testing.agent_world import idle_findings, tiny_world
from opsagent.testing.fake_ollama import FakeOllama, Reply


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
    assert json.loads(tool_msgs[0].content)["status"] == "ok"


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


def test_ollama_down_falls_back(world):
    server = FakeOllama().start()
    url = server.url
    server.stop()  # nothing listens there any more: connection refused
    report = world.agent("llm", config=AgentConfig(model="llama3.2", ollama_host=url)).handle_finding(_finding(world))
    assert report.fell_back and report.resolved is True
    reasons = [r.summary for r in world.store.list(limit=100000) if r.kind == "run" and (r.summary or "").startswith("llm call")]
    assert len(reasons) == 3 and all("cannot reach Ollama" in s for s in reasons)


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


def test_chat_message_runs_as_the_person(world):
    planner = scripted.scripted_planner(scripted.call("scale_workload", namespace="ml", name="chat", replicas=2),
                                        scripted.text("Scaled ml/chat to 2."))
    report = world.agent(planner).handle_message("please scale ml/chat to 2", actor="alice", channel="slack")
    assert report.status == "done" and report.summary == "Scaled ml/chat to 2."
    assert world.tiny.workloads["ml/chat"].replicas == 2
    result = next(r for r in world.store.list(limit=100000) if r.kind == "result")
    assert (result.actor, result.channel, result.message) == ("alice", "slack", "please scale ml/chat to 2")
    prompt = planner.chat_model.prompts[0][1].content
    assert "please scale ml/chat to 2" in prompt and '"workload":"ml/chat"' in prompt


def test_chat_is_offered_every_tool_and_an_unoffered_call_still_meets_the_gate(world):
    from tools import REGISTRY

    with FakeOllama([Reply.text("Nothing to do.")]) as server:
        world.agent("llm", config=_config(server)).handle_message("how is ml/chat?", actor="alice")
        chat_tools = {t["function"]["name"] for t in server.chat_requests[0]["tools"]}
    assert chat_tools == set(REGISTRY)
    # a model that reaches for a tool the finding was not offered: the gate decides it like any other call
    with FakeOllama([Reply.call("delete_workload", namespace="ml", name="llm"), Reply.text("done")]) as server:
        report = world.agent("llm", config=_config(server)).handle_finding(_finding(world))
    assert [(a.tool, a.status) for a in report.actions] == [("delete_workload", "pending_approval")]
    assert world.cluster.writes == []
