"""In a conversation the model proposes writes; it never makes them.

A run started by a person's message (`kind == "message"`) hands the gate only
the calls it can run without changing anything: reads, and calls the gate does
not know (which it refuses as invalid). Every other call is *held*: it does not
reach the gate, the model is told it waits for the person's yes, and the run's
report lists it with status `proposed`. The chat service turns those into
confirmations the person who asked can confirm (`opsagent.chat.confirmations`);
only a confirmed call goes to the gate, as that person.

A held call the policy would refuse anyway is reported as `denied` with the
rule's reason (from `Gate.preview`, which records and runs nothing), so nobody
is asked to confirm what cannot run. Pure apart from that preview.
"""

from __future__ import annotations

import json
from typing import Any

from opsagent.model import ToolCall

PROPOSED = "proposed"


def is_held(gate: Any, call: ToolCall, *, kind: str) -> bool:
    """True when `call`, planned in a run of `kind`, must wait for the person instead of going to the gate."""
    if kind != "message":
        return False
    tools = getattr(gate, "tools", None)
    if isinstance(tools, dict):  # the gate's own table: a tool it does not know, it refuses as invalid
        spec = tools.get(call.tool)
        return spec is not None and getattr(spec, "risk", None) != "read"
    from tools import get_tool  # a gate that does not show its table: only known reads go through

    spec = get_tool(call.tool)
    return spec is None or spec.risk != "read"


def hold(gate: Any, call: ToolCall) -> tuple[str, str]:
    """(status, message) for a held call: `proposed` and who must confirm it, or `denied` and why."""
    preview = getattr(gate, "preview", None)
    decision = preview(call) if callable(preview) else None
    if decision is not None and decision.effect == "deny":
        return "denied", f"denied by {decision.rule.file}:{decision.rule.name}: {decision.reason}"
    return PROPOSED, (f"not run: in a conversation a write you call is only proposed. It is shown to {call.actor}, "
                      "and runs only if they confirm it. Do not call it again; say what you proposed and why.")


def model_text(status: str, message: str) -> str:
    """What the model reads back for a held call."""
    shown = "awaiting_confirmation" if status == PROPOSED else status
    return json.dumps({"status": shown, "message": message}, separators=(",", ":"))
