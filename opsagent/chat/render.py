"""How chat replies look: plain text for the terminal and Slack Block Kit blocks.

Pure functions over typed values (tool results, approvals, `ChatReply`); no
I/O, no Slack client. The text uses only backticks for names, which read well
in a terminal and in Slack's mrkdwn. Every line passes `opsagent.model.text`:
one line each, nothing a terminal acts on, and in Slack no `<!channel>`,
mention or link from the cluster's text. Nothing here decides anything: it shows
what the gate and the approval queue already decided.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from opsagent.model import Approval, ToolResult
from opsagent.model.text import safe_line, slack_escape
from tools.registry import get_tool
from tools.show import call_subject, plain


if TYPE_CHECKING:
    from opsagent.chat.service import ChatReply

APPROVE_ACTION = "opsagent_approve"
REJECT_ACTION = "opsagent_reject"
CONFIRM_ACTION = "opsagent_confirm"
REFUSE_ACTION = "opsagent_refuse"
SLACK_TEXT_LIMIT = 2900  # a section block holds 3000 characters


def result_lines(result: ToolResult) -> list[str]:
    """A few lines that show what a read tool found (or what a write did); each tool declares its own (`Tool.show`)."""
    if result.status in ("error", "invalid", "denied"):
        return [safe_line(result.message)]
    tool = get_tool(result.tool)
    if tool is not None and tool.show is not None:
        return [safe_line(line) for line in tool.show(result)]   # each line one line, whatever the cluster wrote
    return [safe_line(result.message or f"{result.tool}: {result.status}")]


def done_lines(result: ToolResult) -> list[str]:
    """How a write's ok result shows in a reply's `done:` line: its tool's rendering (which names the object and
    the change); empty when the tool has none or the result is not ok (the line then says summary and message)."""
    tool = get_tool(result.tool)
    return result_lines(result) if result.status == "ok" and tool is not None and tool.show is not None else []


def approval_line(approval: Approval) -> str:
    who = ", ".join(approval.approvers) or "nobody (the rule names no approvers)"
    return (f"#{approval.id} {call_summary(approval.call.tool, approval.call.args)} asked by {approval.requested_by}, "
            f"{approval.state}; approvers: {who}; expires {approval.expires_at:%Y-%m-%d %H:%M} UTC")


def call_summary(tool: str, args: dict[str, Any]) -> str:
    """How a call reads in one line: its tool's phrase (given what the call names, made plain), else its raw arguments."""
    tool, args = plain(tool, 60), args if isinstance(args, dict) else {}
    declared = get_tool(tool)
    if declared is not None and declared.phrase is not None:
        return declared.phrase(call_subject(args), args)
    shown = ", ".join(f"{plain(k, 40)}={plain(v, 80)}" for k, v in sorted(args.items(), key=lambda kv: str(kv[0])))
    return f"{tool}({shown})"


def reply_text(reply: "ChatReply", *, body: list[str] | None = None) -> str:
    """The whole reply as text: what ran, what was refused (and why), what waits."""
    lines = list(body or [])
    for item in reply.done:
        if item.shown:
            lines.append("done: " + "; ".join(line.strip() for line in item.shown))
        else:
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
    # Each line opsagent's own: a line break, escape sequence or control character inside a message is made inert.
    return "\n".join(safe_line(line) for line in lines) if lines else "nothing to do"


def proposed_line(item: Any) -> str:
    """One write waiting for the asker's yes, with the words that answer it."""
    unnamed = "" if item.named else " (your message did not name it)"
    return (f"proposed #{item.confirmation_id}: {item.summary}{unnamed}; {item.why}; "
            f"`confirm {item.confirmation_id}` runs it, `refuse {item.confirmation_id}` drops it; "
            f"expires {datetime.fromisoformat(item.expires_at):%Y-%m-%d %H:%M} UTC")


def _section(text: str) -> dict[str, Any]:
    """A mrkdwn section of `text`, whose parts from outside the caller has passed through `slack_escape`."""
    if len(text) > SLACK_TEXT_LIMIT:
        text = text[: SLACK_TEXT_LIMIT - 20] + "\n… (cut)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def reply_blocks(reply: "ChatReply") -> list[dict[str, Any]]:
    """Block Kit for a reply: one section of text, Confirm / Refuse buttons per proposed write, and a context
    line naming the actor. A button's value is the confirmation id; only the person who asked can use it."""
    blocks = [_section(slack_escape(reply.text))]
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
    text = (f"*Approval #{approval.id}:* {slack_escape(call_summary(call.tool, call.args))}\n"
            f"asked by `{approval.requested_by}` via {call.channel}; rule `{approval.rule.file}:{approval.rule.name}`"
            + (f"\n>{slack_escape(safe_line(approval.reason))}" if approval.reason else "")
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
    return [_section(f"*Approval #{approval.id}:* {slack_escape(call_summary(call.tool, call.args))}\n{outcome}")]


def approval_outcome(approval: Approval, *, result: str | None = None) -> str:
    """One line (Slack mrkdwn) on what became of a request that left `pending`, from the queue's record of it.
    The comment and the result are people's and the cluster's words: one line each, escaped for Slack."""
    by = f"`{approval.decided_by}`" if approval.decided_by else "someone"
    note = f": {slack_escape(safe_line(approval.comment, 500))}" if approval.comment else ""
    result = slack_escape(safe_line(result, 500)) if result else result
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
