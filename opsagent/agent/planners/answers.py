"""Reading a model's answer text: reasoning blocks dropped, tool calls written as text recovered.

Local models often answer in shapes the chat API did not ask for: a `<think>`
block before the answer (or only its closing tag, or nothing but thinking),
and tool calls written as JSON in the message text instead of `tool_calls`
(a bare object, several objects one after another, a list, a fenced ```json
block, or `<tool_call>` tags; with `arguments` or `parameters`, as an object
or as a JSON string). `strip_think` removes the reasoning; `calls_in_text`
recovers the calls only when the *whole* text is such calls and nothing else,
so prose that merely contains JSON stays prose.

Recovered calls are proposals like any other: the graph screens them and the
gate decides each. Pure functions; no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_TEXT = 20_000
MAX_CALLS = 16
_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_FENCED = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.DOTALL)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.IGNORECASE | re.DOTALL)
_CALL_KEYS = {"name", "arguments", "parameters", "type", "id", "function"}


def strip_think(text: str) -> str:
    """The answer without its reasoning: `<think>...</think>` blocks, a lone closing tag's preamble, an unclosed block."""
    out = _THINK.sub("", text)
    lower = out.lower()
    if "</think>" in lower:  # the opening tag was eaten by the chat template: everything before the close is thinking
        out = out[lower.rindex("</think>") + len("</think>"):]
    if out.lstrip().lower().startswith("<think>"):  # thinking that never ended: no answer at all
        return ""
    return out.strip()


def _call(obj: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(obj, dict) or not obj or not set(obj) <= _CALL_KEYS:
        return None
    inner = obj.get("function") if isinstance(obj.get("function"), dict) else obj
    name = inner.get("name")
    args = inner.get("arguments", inner.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if args is None:
        args = {}
    if not isinstance(name, str) or not name.strip() or not isinstance(args, dict):
        return None
    return name.strip(), args


def _values(body: str) -> list[Any] | None:
    """Every JSON value in `body`, one after another (whitespace between), or None if anything else is there."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(body) and body[i] in " \t\r\n,;":
            i += 1
        if i >= len(body):
            return out
        try:
            value, i = decoder.raw_decode(body, i)
        except json.JSONDecodeError:
            return None
        out.append(value)


def calls_in_text(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls `text` consists of, as (name, arguments); [] when it is not entirely tool calls."""
    body = text.strip()
    if not body or len(body) > MAX_TEXT:
        return []
    fenced = _FENCED.match(body)
    if fenced:
        body = fenced.group(1)
    tagged = _TAGGED.findall(body)
    if tagged:
        if _TAGGED.sub("", body).strip():
            return []
        body = "\n".join(tagged)
    values = _values(body)
    if not values:
        return []
    items = [item for value in values for item in (value if isinstance(value, list) else [value])]
    calls = [_call(item) for item in items]
    if not calls or len(calls) > MAX_CALLS or any(c is None for c in calls):
        return []
    return [c for c in calls if c is not None]
