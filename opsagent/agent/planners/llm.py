"""The LLM planner: one chat-model call per round, tools bound from the tools' input models.

The model (ChatOllama from `opsagent.agent.models`, or a scripted model in
tests) sees the system prompt, the task with fenced cluster data, and every
earlier tool result (fenced the same way). Its output is untrusted. An answer
with nothing usable in it is a failure the graph counts: an exception from
the client (a connection error, a timeout, an HTTP error, an error line
mid-stream, a garbled or cut body, arguments that are not an object), a
malformed call, an empty answer. A server that cannot be reached at all is
flagged `unreachable`, and the graph falls back at once. Reasoning blocks are
dropped from the answer and tool calls written as text are recovered (see
`answers`); calls, recovered or not, go to the graph, which screens them and
judges the turn by what the gate said. This module never runs a tool and
never imports the Ollama client.
"""

from __future__ import annotations

from typing import Any, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from opsagent.agent.breaker import is_unreachable
from opsagent.agent.history import kept_answer
from opsagent.agent.planners import Plan, PlanInput, ProposedCall
from opsagent.agent.planners.answers import calls_in_text, strip_think
from opsagent.agent.playbook_view import guidance_of
from opsagent.agent.prompts import system_prompt, task_prompt
from opsagent.agent.turns import offered_tools as _offered


def _untitled(schema: Any) -> Any:
    """A JSON schema without pydantic's `title` keys: they repeat the field names and cost tokens."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _untitled(sub) for name, sub in value.items()}  # field names kept, even "title"
        else:
            out[key] = _untitled(value)
    return out


def tool_specs(tools: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI/Ollama-style function specs from each tool's pydantic input model and description."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description,
                                          "parameters": _untitled(t.input_model.model_json_schema())}}
        for t in tools.values()
    ]


def offered_tools(inp: PlanInput, tools: dict[str, Any]) -> dict[str, Any]:
    """The tools offered to the model for this run (see `opsagent.agent.turns.offered_tools`).

    Offering is also a limit: in a finding's run, the graph refuses a model's
    call to a tool that was not offered before it reaches the gate.
    """
    return _offered(finding=inp.finding, playbook=inp.playbook, tools=tools)


def usage_of(message: AIMessage) -> tuple[int, int]:
    """(prompt tokens, completion tokens) from usage_metadata, or Ollama's counts."""
    usage = message.usage_metadata or {}
    if usage:
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    else:
        meta = message.response_metadata or {}
        prompt, completion = meta.get("prompt_eval_count"), meta.get("eval_count")
    # a server's count is never below zero: a negative one must not give budgets or spend caps room back
    return max(0, int(prompt or 0)), max(0, int(completion or 0))


class LlmPlanner:
    def __init__(self, model: BaseChatModel, *, tools: dict[str, Any], model_name: str,
                 classify: Callable[[BaseException], str | None]) -> None:
        self.model_name = model_name
        self.name = f"llm:{model_name}"
        self.tools = tools
        self._model = model
        self._bound: dict[frozenset[str], Any] = {}
        self._classify = classify

    def bound_for(self, inp: PlanInput) -> Any:
        """The model with this run's tools bound (bound once per set of tools)."""
        offered = offered_tools(inp, self.tools)
        key = frozenset(offered)
        if key not in self._bound:
            self._bound[key] = self._model.bind_tools(tool_specs(offered))
        return self._bound[key]

    def first_messages(self, inp: PlanInput) -> list[BaseMessage]:
        guidance = guidance_of(inp.playbook) if inp.playbook is not None else None
        return [
            SystemMessage(system_prompt(policy_summary=inp.policy_summary, guidance=guidance)),
            HumanMessage(task_prompt(inp.snapshot, finding=inp.finding, message=inp.message, actor=inp.actor)),
        ]

    def plan(self, inp: PlanInput) -> Plan:
        new: list[BaseMessage] = [] if inp.messages else self.first_messages(inp)
        conversation = list(inp.messages) + new
        try:
            answer = self.bound_for(inp).invoke(conversation)
        except Exception as exc:  # boundary: whatever the client raised is the model's failure, recorded and counted
            reason = self._classify(exc) or f"unusable answer ({type(exc).__name__}: {str(exc)[:200]})"
            return Plan(failure=reason, unreachable=is_unreachable(exc), new_messages=tuple(new), llm_calls=1,
                        model=self.model_name)
        if not isinstance(answer, AIMessage):
            return Plan(failure=f"unexpected model output {type(answer).__name__}", new_messages=tuple(new),
                        llm_calls=1, model=self.model_name)
        prompt, completion = usage_of(answer)
        common = dict(llm_calls=1, prompt_tokens=prompt, completion_tokens=completion, model=self.model_name)
        if answer.invalid_tool_calls:
            bad = answer.invalid_tool_calls[0]
            return Plan(failure=f"malformed tool call {bad.get('name')!r}: {bad.get('error') or 'arguments are not a JSON object'}",
                        new_messages=tuple(new), **common)
        raw = answer.content if isinstance(answer.content, str) else str(answer.content)
        text = strip_think(raw)
        if not answer.tool_calls and (written := calls_in_text(text)):  # calls written as text in the answer
            answer = AIMessage(content="", id=answer.id, usage_metadata=answer.usage_metadata,
                               response_metadata=answer.response_metadata,
                               tool_calls=[{"name": name, "args": args, "id": f"text-{i}", "type": "tool_call"}
                                           for i, (name, args) in enumerate(written)])
        elif text != raw:
            answer = answer.model_copy(update={"content": text})
        if answer.tool_calls:
            calls = tuple(ProposedCall(tool=str(c["name"]), args=dict(c.get("args") or {}), id=str(c.get("id") or f"call-{i}"))
                          for i, c in enumerate(answer.tool_calls))
            return Plan(calls=calls, new_messages=tuple(new) + (kept_answer(answer),), **common)
        if text:
            return Plan(done=True, text=text, new_messages=tuple(new) + (answer,), **common)
        return Plan(failure="no tool call and no answer", new_messages=tuple(new), **common)
