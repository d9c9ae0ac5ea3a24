"""A scripted chat model: answers with a fixed list of messages, in order.

`ScriptedChatModel` is a `FakeMessagesListChatModel` whose `bind_tools`
returns itself, so it drops into the same planner code as ChatOllama. It
records the messages it was sent (`prompts`), so a test can read the prompt.
`call()` and `text()` build AIMessages with their own ids and token usage
(repeated ids would replace each other in graph state).

Part of the evals: the `scripted` and `hostile` planners (`opsagent.evals.planners`)
drive the real LLM planner with it; tests use it the same way.
"""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field

_ids = itertools.count(1)


def call(tool: str, /, **args: Any) -> AIMessage:
    """An AIMessage proposing one tool call."""
    return calls((tool, args))


def calls(*items: tuple[str, dict[str, Any]]) -> AIMessage:
    """An AIMessage proposing several tool calls at once."""
    n = next(_ids)
    tool_calls = [{"name": name, "args": args, "id": f"scripted-{n}-{i}", "type": "tool_call"} for i, (name, args) in enumerate(items)]
    return AIMessage(content="", tool_calls=tool_calls, id=f"scripted-ai-{n}", usage_metadata=_usage())


def text(content: str) -> AIMessage:
    """A final answer: text and no tool calls."""
    n = next(_ids)
    return AIMessage(content=content, id=f"scripted-ai-{n}", usage_metadata=_usage())


def _usage(prompt: int = 100, completion: int = 10) -> dict[str, int]:
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}


class ScriptedChatModel(FakeMessagesListChatModel):
    """Replies with `responses` in order; after the last one, keeps repeating a final text."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    model: str = "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChatModel":
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.prompts.append(list(messages))
        if self.i >= len(self.responses):
            from langchain_core.outputs import ChatGeneration, ChatResult

            return ChatResult(generations=[ChatGeneration(message=text("Done."))])
        result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        if self.i == 0:  # the parent cycles back to the start; we stop at the end instead
            self.i = len(self.responses)
        return result


def scripted_planner(*responses: AIMessage, tools: dict[str, Any] | None = None) -> Any:
    """An LlmPlanner over a ScriptedChatModel: the real planner code with a scripted model."""
    from opsagent.agent.models import classify_error
    from opsagent.agent.planners.llm import LlmPlanner

    if tools is None:
        from tools import REGISTRY

        tools = REGISTRY
    model = ScriptedChatModel(responses=list(responses))
    planner = LlmPlanner(model, tools=tools, model_name="scripted", classify=classify_error)
    planner.chat_model = model  # type: ignore[attr-defined]  # so tests can read the prompts it saw
    return planner
