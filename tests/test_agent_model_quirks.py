"""Real model quirks: malformed outputs local models are known to produce, and what opsagent does with each.

Spec: every entry below is a shape reported publicly for real local models
(the source is cited next to it), sent by the fake Ollama server in Ollama's
real wire format through the real client (ChatOllama -> ollama -> httpx).
Each either parses safely into the call the model meant (and then meets the
screen and the gate like any call) or counts as an unusable turn; three
unusable turns in a row hand the run to the offline planner. No quirk ends a
run in an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from opsagent.agent import AgentConfig
from opsagent.agent.planners.answers import calls_in_text, strip_think
from doubles.agent_world import idle_findings, tiny_world
from opsagent.evals.fake_ollama import Reply

SLEEP = {"namespace": "ml", "name": "llm"}


@dataclass(frozen=True)
class Quirk:
    reply: Reply
    outcome: Literal["parsed", "unusable"]
    actions: list[tuple[str, str]] = field(default_factory=list)  # (tool, status) of the model's calls, when parsed
    failure: str = ""                                               # what the audit log says, when unusable
    asked: int = 1                                                  # model requests until the finding is resolved


QUIRKS: dict[str, Quirk] = {
    # ollama/ollama#13519 "llama3.2:3b outputs tool calls as JSON in content instead of using tool_calls field"
    # (a ```json block holding {"name", "parameters"})
    "json-in-content-fenced": Quirk(Reply.text('```json\n{"name": "sleep_workload", "parameters": {"namespace": "ml", '
                                               '"name": "llm"}}\n```'), "parsed", [("sleep_workload", "ok")]),
    # NousResearch/hermes-agent#87900 "fix: recover tool calls leaked into content by Ollama's /v1 endpoint"
    # (qwen2.5-coder: bare objects, several one after another with no enclosing list)
    "json-in-content-several": Quirk(Reply.text('{"name": "get_workload", "arguments": {"namespace": "ml", "name": "llm"}}\n'
                                                '{"name": "sleep_workload", "arguments": {"namespace": "ml", "name": "llm"}}'),
                                     "parsed", [("get_workload", "ok"), ("sleep_workload", "ok")]),
    # same report: "arguments is omitted entirely for zero-arg calls"
    "json-in-content-no-arguments": Quirk(Reply.text('{"name": "list_workloads"}'), "parsed",
                                          [("list_workloads", "ok"), ("sleep_workload", "ok")], asked=2),
    # nugget/thane-ai-agent#21 "fix: parse text-based tool calls from content" (granite, qwen2.5-coder: <tool_call> tags)
    "tool-call-tags-in-content": Quirk(Reply.text('<tool_call>\n{"name": "sleep_workload", "arguments": '
                                                  '{"namespace": "ml", "name": "llm"}}\n</tool_call>'),
                                       "parsed", [("sleep_workload", "ok")]),
    # ROCm/FastFlowLM#537 "Bug: Tool calls with Object arguments are serialized as string" ("arguments": "{...}")
    "json-in-content-arguments-as-string": Quirk(Reply.text('{"name": "sleep_workload", "arguments": '
                                                            '"{\\"namespace\\": \\"ml\\", \\"name\\": \\"llm\\"}"}'),
                                                 "parsed", [("sleep_workload", "ok")]),
    # lmstudio-ai/lmstudio-bug-tracker#827 "tool parser cannot identify the tool calls of qwen3's response with
    # thinking tags"
    "think-then-json-call": Quirk(Reply.text('<think>\nThe workload has no traffic; sleeping it frees 2 GPUs.\n</think>\n\n'
                                             '{"name": "sleep_workload", "arguments": {"namespace": "ml", "name": "llm"}}'),
                                  "parsed", [("sleep_workload", "ok")]),
    # ollama/ollama#10496 "Can the empty <think> tags be removed in non-thinking mode for the Qwen3 series models?"
    "empty-think-before-native-call": Quirk(Reply(content="<think>\n\n</think>\n\n", tool_calls=[("sleep_workload", SLEEP)]),
                                            "parsed", [("sleep_workload", "ok")]),
    # hiyouga/LlamaFactory#8219 (qwen3 under Ollama emits only the closing </think>); the reasoning before it is
    # dropped, and a thinking block that never closes leaves no answer at all
    "think-never-closed": Quirk(Reply.text("<think>\nI should check the workload first, then maybe"), "unusable",
                                failure="no tool call and no answer"),
    # ollama/ollama-python#484 "Pydantic ValidationError: tool_calls.function.arguments expects dict, receives str
    # from server"
    "native-arguments-as-string": Quirk(Reply(mode="string_args", tool_calls=[("sleep_workload", SLEEP)]), "unusable",
                                        failure="malformed model output: Input should be a valid dictionary"),
    # NousResearch/hermes-agent#100926 "coerce string-typed numeric args from weaker function-calling models";
    # lidge-jun/opencodex#1611 "Grok emits integer tool arguments as floats (120000.0)": the tools' input models
    # take "0" and 0.0 for an integer, so these run as meant (see the chat test below for a write)
    "numbers-as-strings-and-floats": Quirk(Reply(tool_calls=[("list_workloads", {"namespace": "ml", "only_gpu": "true"}),
                                                             ("sleep_workload", SLEEP)]),
                                           "parsed", [("list_workloads", "ok"), ("sleep_workload", "ok")]),
    # cecli-dev/cecli#650 "Fix empty tool calls (missing parameters)": the gate refuses it as invalid
    "missing-required-field": Quirk(Reply(tool_calls=[("sleep_workload", {"namespace": "ml"})]), "unusable",
                                    failure="sleep_workload: invalid"),
    # vllm-project/vllm#9451 (llama3.1-8b "ends up returning three tool calls instead of one by one")
    "several-native-calls": Quirk(Reply(tool_calls=[("get_workload", SLEEP), ("describe_pod", {"namespace": "ml",
                                                                                                "name": "llm-0"}),
                                                    ("sleep_workload", SLEEP)]),
                                  "parsed", [("get_workload", "ok"), ("describe_pod", "ok"), ("sleep_workload", "ok")]),
    # QwenLM/Qwen3.8#15 "Qwen3.5-Plus-02-15 hallucinates non-existent tools"; OpenHands/OpenHands#5111
    "tool-that-does-not-exist": Quirk(Reply(tool_calls=[("toolbox.web.answer", {"query": "free the gpus"})]), "unusable",
                                      failure="invalid: unknown tool"),
    # same reports, a real tool that was not offered for this finding: refused before the gate
    "tool-not-offered": Quirk(Reply(tool_calls=[("set_resources", {"namespace": "ml", "name": "llm", "gpus_per_replica": 1})]),
                              "unusable", failure="set_resources was not offered for this finding"),
    # a call with no function name at all (the ollama client's own check refuses the body)
    "call-without-a-name": Quirk(Reply(raw_tool_calls=[{"function": {"arguments": SLEEP}}]), "unusable",
                                 failure="malformed model output: Field required"),
}


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_each_quirk_over_the_wire(world, name):
    from opsagent.evals.fake_ollama import FakeOllama

    quirk = QUIRKS[name]
    if quirk.outcome == "parsed":
        replies, default = [quirk.reply], Reply(tool_calls=[("sleep_workload", SLEEP)])
    else:
        replies, default = [], quirk.reply
    with FakeOllama(replies, default=default) as server:
        config = AgentConfig(model="qwen3:8b", ollama_host=server.url, request_timeout_seconds=2.0)
        report = world.agent("llm", config=config).handle_finding(idle_findings(world.cluster.snapshot())[0])
        asked = len(server.chat_requests)
    rows = world.store.list(limit=100000)
    assert not [r for r in rows if (r.summary or "").startswith("run failed")]
    assert report.status == "done" and report.resolved is True and world.tiny.workloads["ml/llm"].replicas == 0
    if quirk.outcome == "parsed":
        assert not report.fell_back and asked == quirk.asked, [r.summary for r in rows if r.kind == "run"]
        assert [(a.tool, a.status) for a in report.actions] == quirk.actions
    else:
        assert report.fell_back and asked == 3
        [fallback] = [r for r in rows if "falling back to the offline planner" in (r.summary or "")]
        first, *repeats = fallback.data["streak"]
        assert quirk.failure in first and all(quirk.failure in r or "already refused" in r for r in repeats), first
        assert [(a.tool, a.status) for a in report.actions][-1] == ("sleep_workload", "ok")  # the playbook's step


def test_numbers_as_strings_reach_the_tool_as_numbers_in_a_chat_write(world):
    from opsagent.evals.fake_ollama import FakeOllama

    # hermes-agent#100926 (numbers as strings) and opencodex#1611 (integers as floats), on a write
    with FakeOllama([Reply(tool_calls=[("scale_workload", {"namespace": "ml", "name": "chat", "replicas": "2"})]),
                     Reply(tool_calls=[("scale_workload", {"namespace": "ml", "name": "chat", "replicas": 3.0})]),
                     Reply.text("Scaled.")]) as server:
        config = AgentConfig(model="qwen3:8b", ollama_host=server.url)
        report = world.agent("llm", config=config).handle_message("scale ml/chat to 2, then 3", actor="carol")
    # in chat the model's writes are proposals for the asker to confirm; they carry the numbers as numbers
    assert [(a.tool, a.status) for a in report.actions] == [("scale_workload", "proposed"), ("scale_workload", "proposed")]
    from tools import REGISTRY

    # confirmed, each goes through the gate's validation of the tool's input model: the numbers arrive as numbers
    shown = [REGISTRY["scale_workload"].input_model.model_validate(a.args).replicas for a in report.actions]
    assert shown == [2, 3] and all(type(n) is int for n in shown) and report.summary == "Scaled."


def test_a_final_answer_loses_its_think_block_in_the_report_and_the_conversation(world):
    from opsagent.evals.fake_ollama import FakeOllama

    # bold84/cot_proxy#3 (Qwen3 on Ollama: "<think>...</think>\n\nHello!..." in content)
    with FakeOllama([Reply.text("<think>\nml/chat serves 3 requests a second, nothing to do.\n</think>\n\nml/chat is busy; "
                                "leaving it.")]) as server:
        config = AgentConfig(model="qwen3:8b", ollama_host=server.url)
        report = world.agent("llm", config=config).handle_message("is ml/chat idle?", actor="carol")
    assert report.summary == "ml/chat is busy; leaving it." and report.actions == []


@pytest.mark.parametrize("text,expected", [
    ("Slept ml/llm.", []),                                                          # prose
    ('The call {"name": "sleep_workload"} failed earlier.', []),                     # prose with JSON inside
    ('{"workload": "ml/llm", "replicas": 0}', []),                                   # JSON that is not a call
    ('[{"name": "get_workload", "arguments": {"namespace": "ml", "name": "llm"}}]', [("get_workload", SLEEP)]),
    ('{"function": {"name": "get_workload", "arguments": {"namespace": "ml", "name": "llm"}}}', [("get_workload", SLEEP)]),
    ('{"name": "get_workload", "arguments": "{not json"}', []),                      # unparseable arguments: not a call
    ('<tool_call>{"name": "get_workload", "arguments": {}}</tool_call> and then I will sleep it', []),
    ('```json\n{"name": "x", "arguments": [1, 2]}\n```', []),                        # arguments must be an object
])
def test_calls_are_recovered_only_when_the_whole_text_is_calls(text, expected):
    assert calls_in_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("<think>a</think>b", "b"), ("<THINK>\nx\n</THINK>\n\nanswer", "answer"), ("reasoning only</think>\n\nDone.", "Done."),
    ("<think>never closed", ""), ("no thinking here", "no thinking here"), ("<think></think><think>y</think>z", "z"),
])
def test_think_blocks_are_dropped(text, expected):
    assert strip_think(text) == expected
