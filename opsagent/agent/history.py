"""What of a model's answer stays in the conversation it is sent next time.

A tool call whose arguments are over the gate's size limit is refused
without being parsed; keeping those arguments in the history would send
them back to the model on every later round (and store them in every
checkpoint of the run). The kept answer replaces them with a short note
saying how big they were and that they were refused; the call's id and tool
name stay, so the tool result still pairs with its call. Text over the same
limit that comes with tool calls is cut to its start with a note. Everything
else of the answer is kept as it was. Pure: no I/O, no policy.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from opsagent.model import MAX_ARGS_BYTES, args_size


def refused_note(size: int | None, *, limit: int = MAX_ARGS_BYTES) -> dict[str, Any]:
    shown = f"{size} bytes" if size is not None else "arguments that are not JSON"
    return {"_refused": f"{shown} of arguments, over the {limit}-byte limit: not kept; send small arguments"}


def kept_answer(answer: AIMessage, *, limit: int = MAX_ARGS_BYTES) -> AIMessage:
    """`answer` with oversized tool-call arguments replaced by a note (the same message when none are)."""
    calls, changed = [], False
    for call in answer.tool_calls:
        size = args_size(call.get("args"))
        if size is None or size > limit:
            call = {**call, "args": refused_note(size, limit=limit)}
            changed = True
        calls.append(call)
    content = answer.content
    if isinstance(content, str) and len(content.encode()) > limit:
        content = content[: limit // 4] + f"\n[{len(content.encode())} bytes of text, cut to the first {limit // 4} characters]"
        changed = True
    if not changed:
        return answer
    # the raw wire form (additional_kwargs["tool_calls"], with the arguments as text) is dropped:
    # the clients rebuild what they send from `tool_calls`
    extra = {k: v for k, v in answer.additional_kwargs.items() if k not in ("tool_calls", "function_call")}
    return answer.model_copy(update={"tool_calls": calls, "additional_kwargs": extra, "content": content})
