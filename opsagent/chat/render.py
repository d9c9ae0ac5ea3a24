"""How chat replies look: plain text for the terminal and Slack Block Kit blocks.

Pure functions over typed values (tool results, approvals, `ChatReply`); no
I/O, no Slack client. The text uses only backticks for names, which read well
in a terminal and in Slack's mrkdwn. Nothing here decides anything: it shows
what the gate and the approval queue already decided.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opsagent.clock import format_duration
from opsagent.model import Approval, ToolResult

if TYPE_CHECKING:
    from opsagent.chat.service import ChatReply

APPROVE_ACTION = "opsagent_approve"
REJECT_ACTION = "opsagent_reject"
CONFIRM_ACTION = "opsagent_confirm"
REFUSE_ACTION = "opsagent_refuse"
MAX_ROWS = 20
SLACK_TEXT_LIMIT = 2900  # a section block holds 3000 characters


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}%"


def _ago(seconds: Any) -> str:
    if seconds is None:
        return "-"
    return format_duration(float(seconds), parts=2)


def _more(rows: list[Any], count: int | None) -> list[str]:
    total = count if isinstance(count, int) else len(rows)
    return [f"  … and {total - MAX_ROWS} more"] if total > MAX_ROWS else []


def result_lines(result: ToolResult) -> list[str]:
    """A few lines that show what a read tool found (or what a write did)."""
    data, tool = result.data or {}, result.tool
    if result.status in ("error", "invalid", "denied"):
        return [result.message]
    if tool == "list_workloads":
        rows = data.get("workloads", [])
        if not rows:
            return ["no workloads match"]
        lines = [f"{len(rows)} workload(s):" if data.get("count", len(rows)) == len(rows) else f"{data['count']} workload(s):"]
        for w in rows[:MAX_ROWS]:
            idle = f", idle {_ago(w.get('idle_seconds'))}" if w.get("idle") else ""
            lines.append(f"  `{w['workload']}` {w.get('ready_replicas', '?')}/{w.get('replicas', '?')} ready, "
                         f"{w.get('gpus_held', 0)} GPU(s) held, util {_pct(w.get('gpu_utilization'))}{idle}")
        return lines + _more(rows, data.get("count"))
    if tool == "gpu_inventory":
        rows = data.get("devices", [])
        if not rows:
            return ["no GPUs match"]
        lines = [result.message + ":"]
        for g in rows[:MAX_ROWS]:
            who = f"held by `{g['workload'] or g['holder']}`, util {_pct(g.get('utilization'))}" if g.get("holder") else "free"
            idle = f", idle {_ago(g['idle_seconds'])}" if g.get("idle_seconds") is not None else ""
            lines.append(f"  {g['id']} on {g['node']} ({g['model']}): {who}{idle}")
        return lines + _more(rows, data.get("count"))
    if tool == "list_findings":
        rows = data.get("findings", [])
        if not rows:
            return ["no findings"]
        return [f"{len(rows)} finding(s):"] + [f"  [{f['severity']}] {f['id']}: {f['summary']}" for f in rows[:MAX_ROWS]] + _more(rows, data.get("count"))
    if tool == "list_pods":
        rows = data.get("pods", [])
        if not rows:
            return ["no pods"]
        return [f"  pod `{p['pod']}` {p['phase']}" + (f" ({p['reason']})" if p.get("reason") else "")
                + (f", {p['restarts']} restart(s)" if p.get("restarts") else "") for p in rows[:MAX_ROWS]]
    if tool == "describe_pod":
        lines = [f"  {result.message}" + (f": {data['message']}" if data.get("message") else "")]
        for e in (data.get("events") or [])[-5:]:
            lines.append(f"    {e['type']} {e['reason']}: {e['message']}")
        return lines
    if tool == "get_job":
        lines = [result.message]
        free = data.get("free_gpus_by_node")
        if free:
            lines.append("  free GPUs per node: " + ", ".join(f"{node} {n}" for node, n in sorted(free.items())))
        for h in data.get("idle_holders") or []:
            lines.append(f"  idle holder `{h['namespace']}/{h['name']}`: {h['gpus_held']} GPU(s), idle {h['idle_minutes']:.0f} min")
        return lines
    if tool == "get_workload":
        extra = f", rollout {data.get('rollout')}" + (f" ({data['rollout_reason']})" if data.get("rollout_reason") else "")
        return [f"{result.message}, {data.get('gpus_per_replica', 0)} GPU(s) per replica{extra}"]
    return [result.message or f"{tool}: {result.status}"]


def approval_line(approval: Approval) -> str:
    who = ", ".join(approval.approvers) or "nobody (the rule names no approvers)"
    return (f"#{approval.id} {call_summary(approval.call.tool, approval.call.args)} asked by {approval.requested_by}, "
            f"{approval.state}; approvers: {who}; expires {approval.expires_at:%Y-%m-%d %H:%M} UTC")


def plain(value: Any, limit: int = 120) -> str:
    """Untrusted text (a model's words, its arguments) as one line: no control characters, no line breaks,
    no backticks, no format characters (a right-to-left override would redraw the rest of the line, a zero-width
    one hide a difference), cut to `limit`, so it cannot pass for a line of the reply or break its formatting."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(value)
                   if unicodedata.category(c) != "Cf").replace("`", "'")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_summary(tool: str, args: dict[str, Any]) -> str:
    tool, args = plain(tool, 60), args if isinstance(args, dict) else {}
    ref = f"{plain(args.get('namespace'), 63)}/{plain(args.get('name'), 253)}" if args.get("namespace") and args.get("name") else None
    if tool == "scale_workload" and ref:
        return f"scale `{ref}` to {plain(args.get('replicas'), 12)}"
    if tool == "undo_rollout" and ref:
        return f"rollback `{ref}`" + (f" to revision {plain(args['to_revision'], 12)}" if args.get("to_revision") else "")
    if ref:
        return f"{tool} `{ref}`"
    shown = ", ".join(f"{plain(k, 40)}={plain(v, 80)}" for k, v in sorted(args.items(), key=lambda kv: str(kv[0])))
    return f"{tool}({shown})"


def reply_text(reply: "ChatReply", *, body: list[str] | None = None) -> str:
    """The whole reply as text: what ran, what was refused (and why), what waits."""
    lines = list(body or [])
    for item in reply.done:
        lines.append(f"done: {item.summary}: {item.message}" if item.message else f"done: {item.summary}")
    for item in reply.failed:
        lines.append(f"failed: {item.summary}: {item.message}")
    for ref in reply.refused:
        lines.append(f"refused: {ref.summary}, by rule `{ref.rule}`: {ref.reason}")
    for p in reply.pending:
        who = ", ".join(p.approvers) or "an authorized approver"
        lines.append(f"waiting for approval #{p.approval_id}: {p.summary}; may approve: {who}"
                     + (f"; expires {p.expires_at}" if p.expires_at else ""))
    for c in reply.proposed:
        lines.append(proposed_line(c))
    if reply.proposed:
        lines.append("nothing above marked proposed has run; only you can confirm it")
    return "\n".join(lines) if lines else "nothing to do"


def proposed_line(item: Any) -> str:
    """One write waiting for the asker's yes, with the words that answer it."""
    unnamed = "" if item.named else " (your message did not name it)"
    return (f"proposed #{item.confirmation_id}: {item.summary}{unnamed}; {item.why}; "
            f"`confirm {item.confirmation_id}` runs it, `refuse {item.confirmation_id}` drops it; "
            f"expires {datetime.fromisoformat(item.expires_at):%Y-%m-%d %H:%M} UTC")


def _section(text: str) -> dict[str, Any]:
    if len(text) > SLACK_TEXT_LIMIT:
        text = text[: SLACK_TEXT_LIMIT - 20] + "\n… (cut)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def reply_blocks(reply: "ChatReply") -> list[dict[str, Any]]:
    """Block Kit for a reply: one section of text, Confirm / Refuse buttons per proposed write, and a context
    line naming the actor. A button's value is the confirmation id; only the person who asked can use it."""
    blocks = [_section(reply.text)]
    for item in reply.proposed:
        blocks.append({"type": "actions", "block_id": f"confirmation-{item.confirmation_id}", "elements": [
            {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary", "value": str(item.confirmation_id),
             "text": {"type": "plain_text", "text": f"Confirm #{item.confirmation_id}"}},
            {"type": "button", "action_id": REFUSE_ACTION, "value": str(item.confirmation_id),
             "text": {"type": "plain_text", "text": "Refuse"}},
        ]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"as `{reply.actor}`"}]})
    return blocks


def approval_blocks(approval: Approval) -> list[dict[str, Any]]:
    """An approval request with Approve / Reject buttons; the value is the approval id."""
    call = approval.call
    text = (f"*Approval #{approval.id}:* {call_summary(call.tool, call.args)}\n"
            f"asked by `{approval.requested_by}` via {call.channel}; rule `{approval.rule.file}:{approval.rule.name}`"
            + (f"\n>{approval.reason}" if approval.reason else "")
            + f"\nmay approve: {', '.join(approval.approvers) or 'nobody'}; expires {approval.expires_at:%Y-%m-%d %H:%M} UTC")
    return [
        _section(text),
        {"type": "actions", "block_id": f"approval-{approval.id}", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": str(approval.id),
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": str(approval.id),
             "text": {"type": "plain_text", "text": "Reject"}},
        ]},
    ]


def decided_blocks(approval: Approval, outcome: str) -> list[dict[str, Any]]:
    """The approval message after a decision: no buttons, what happened instead."""
    call = approval.call
    return [_section(f"*Approval #{approval.id}:* {call_summary(call.tool, call.args)}\n{outcome}")]


def approval_outcome(approval: Approval, *, result: str | None = None) -> str:
    """One line on what became of a request that left `pending`, from the queue's record of it."""
    by = f"`{approval.decided_by}`" if approval.decided_by else "someone"
    note = f": {approval.comment}" if approval.comment else ""
    if approval.state == "approved":
        return f"approved by {by}{note}; the call has not run yet"
    if approval.state == "executed":
        return f"approved by {by}{note}; done" + (f": {result}" if result else "")
    if approval.state == "failed":
        return f"approved by {by}{note}; the call failed" + (f": {result}" if result else "")
    if approval.state == "rejected":
        verb = "withdrawn" if approval.decided_by == approval.requested_by else "rejected"
        return f"{verb} by {by}{note}"
    if approval.state == "expired":
        return f"expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC without a decision"
    return f"{approval.state}{note}"
