"""What the hash chain says about an approval, and where the `approvals` table disagrees with it.

The `approvals` table is mutable state; the audit log is the tamper-evident
record. Every transition of a request is appended to the chain (kind='approval',
`data.event` one of `EVENTS`), and the `requested` record carries the exact call
(`data.call`), its `args_hash` and `call_sha256`. `replay` folds those records
into the `Chained` view of one request; `disagreements` compares a table row
with it. The approval queue refuses to approve or run a request whose row
disagrees, and `opsagent audit verify` reports every such row by id.

Pure: records in, findings out. No database access here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opsagent.model import Approval, ToolCall, canonical_json

# data.event of a chained approval record -> the state it moves the request to
EVENTS: dict[str, str] = {
    "requested": "pending", "approved": "approved", "rejected": "rejected", "expired": "expired",
    "executed": "executed", "failed": "failed",
}
DECIDING = frozenset({"approved", "rejected"})


def call_sha256(call: ToolCall) -> str:
    """Hash of the whole call as stored (tool, arguments, requester, channel, finding, message)."""
    return hashlib.sha256(canonical_json(call.model_dump(mode="json")).encode()).hexdigest()


@dataclass
class Chained:
    """One approval request as its chained records tell it."""

    approval_id: int
    state: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    call: dict[str, Any] | None = None          # the whole call (records written since calls were chained whole)
    args_hash: str | None = None
    requested_by: str | None = None
    approvers: tuple[str, ...] | None = None
    expires_at: str | None = None
    thread_id: str | None = None
    rule: tuple[str | None, str | None] = (None, None)
    decided_by: str | None = None
    call_hashes: set[str] = field(default_factory=set)   # call_sha256 of every record that carries one
    problems: list[str] = field(default_factory=list)

    @property
    def requested(self) -> bool:
        return self.state is not None


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def replay(records: Iterable[Any]) -> dict[int, Chained]:
    """approval id -> its chained view, from audit records (AuditRecord or dicts with parsed JSON) in chain order."""
    out: dict[int, Chained] = {}
    for record in records:
        approval_id, data = _field(record, "approval_id"), _field(record, "data") or {}
        if _field(record, "kind") != "approval" or approval_id is None or not isinstance(data, Mapping):
            continue
        event = data.get("event")
        if event not in EVENTS:
            continue  # a claim ('executing') or a refused attempt: no change of state
        seen = out.setdefault(int(approval_id), Chained(approval_id=int(approval_id)))
        if isinstance(data.get("call_sha256"), str):
            seen.call_hashes.add(data["call_sha256"])
        if event == "requested":
            if seen.requested:
                seen.problems.append(f"the chain holds a second 'requested' record for it (audit {_field(record, 'id')})")
                continue
            seen.tool, seen.args = _field(record, "tool"), _field(record, "args")
            call = data.get("call")
            seen.call = dict(call) if isinstance(call, Mapping) else None
            seen.args_hash, seen.requested_by = data.get("args_hash"), _field(record, "actor")
            approvers = data.get("approvers")
            seen.approvers = tuple(approvers) if isinstance(approvers, list) else None
            seen.expires_at = data.get("expires_at")
            seen.thread_id = _field(record, "run_id")
            seen.rule = (_field(record, "rule_file"), _field(record, "rule_name"))
        elif not seen.requested:
            seen.problems.append(f"the chain records it {event} (audit {_field(record, 'id')}) but never requested")
            continue
        elif event in DECIDING:
            seen.decided_by = _field(record, "actor")
        seen.state = EVENTS[event]
    return out


def disagreements(approval: Approval, chained: Chained | None, *, expires_at: str | None = None) -> list[str]:
    """How the table's row for a request differs from the chain; empty when they agree.

    `expires_at` is the row's stored text (the chain holds the same text).
    """
    if chained is None or not chained.requested:
        return ["the audit chain has no 'requested' record for it"] + (chained.problems if chained else [])
    found = list(chained.problems)
    call = approval.call
    if call.tool != chained.tool:
        found.append(f"its tool is {call.tool!r}; the chained request was for {chained.tool!r}")
    if chained.call is not None and canonical_json(call.model_dump(mode="json")) != canonical_json(chained.call):
        found.append("its call differs from the chained request")
    if chained.call_hashes and chained.call_hashes != {call_sha256(call)}:
        found.append("its call's hash differs from the call_sha256 chained with it")
    if canonical_json(call.args) != canonical_json(chained.args):
        found.append("its arguments differ from the chained request")
    if approval.args_hash != chained.args_hash:
        found.append("its args_hash differs from the chained request")
    if call.args_hash() != approval.args_hash:
        found.append("its args_hash is not the hash of its call")
    if approval.requested_by != chained.requested_by:
        found.append(f"it names {approval.requested_by!r} as requester; the chain says {chained.requested_by!r}")
    if chained.approvers is not None and tuple(approval.approvers) != chained.approvers:
        found.append(f"its approvers {list(approval.approvers)} differ from the chained {list(chained.approvers)}")
    if expires_at is not None and chained.expires_at is not None and expires_at != chained.expires_at:
        found.append(f"its expiry {expires_at} differs from the chained {chained.expires_at}")
    if approval.thread_id != chained.thread_id:
        found.append(f"it names run {approval.thread_id!r}; the chained request came from {chained.thread_id!r}")
    if (approval.rule.file or None, approval.rule.name or None) != tuple(v or None for v in chained.rule):
        found.append(f"its rule {approval.rule.file}:{approval.rule.name} differs from the chained "
                     f"{chained.rule[0]}:{chained.rule[1]}")
    if approval.state != chained.state:
        found.append(f"its state is {approval.state}; the chain says {chained.state}")
    if chained.decided_by is not None and approval.decided_by != chained.decided_by:
        found.append(f"it names {approval.decided_by!r} as decider; the chain says {chained.decided_by!r}")
    return found
