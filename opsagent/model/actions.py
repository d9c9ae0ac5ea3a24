"""What opsagent decides and does: findings, tool calls, decisions, results, approvals.

Pure pydantic v2 types with no I/O. One name per concept:
- a *finding* is a problem a detector saw (stable id = kind + subject);
- a *tool call* is a proposal to run one typed tool with arguments, by an *actor*;
- a *decision* is the policy's verdict on one tool call;
- a *tool result* is what running (or refusing) the call produced;
- an *approval* is a person's decision on a call the policy sent to people.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from opsagent.model.cluster import Frozen

Risk = Literal["read", "write", "architectural"]
Effect = Literal["allow", "deny", "require_approval"]
Channel = Literal["daemon", "cli", "slack", "wake-proxy", "eval", "api", "mcp", "lease"]  # lease: a time-boxed wake's end

FindingKind = Literal[
    "idle_gpu",
    "wake_requested",
    "rollout_failed",
    "drift",
    "unschedulable_gpu",
    "crashloop",
    "topology_mismatch",
    "jobs_waiting",
    "spec_conflict",
    "node_unhealthy",
    "node_left_cordoned",
    "node_awaits_repair",
    "autoscaler_stuck",
    "node_needs_drain",
    "image_pull_failed",
    "out_of_memory",
    "not_ready",
    "config_missing",
    "volume_pending",
    "quota_exceeded",
    "service_without_endpoints",
]
FINDING_KINDS: tuple[str, ...] = FindingKind.__args__  # type: ignore[attr-defined]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


MAX_ARGS_BYTES = 16 * 1024   # tool arguments larger than this (as canonical JSON) are refused by the gate
ARGS_PREFIX_CHARS = 200      # how much of refused oversized arguments is kept, for a person to recognise them


def args_size(args: Any) -> int | None:
    """Bytes of `args` as canonical JSON, or None when they cannot be written as JSON at all."""
    try:
        return len(canonical_json(args).encode())
    except (ValueError, TypeError, RecursionError):
        return None


STAND_IN_KEYS = frozenset({"_omitted", "_bytes", "_sha256", "_prefix", "_reason"})


def is_stand_in(args: Any) -> bool:
    """True when `args` has the shape of `bounded_json`'s stand-in (made by it, or forged to look so)."""
    if not (isinstance(args, dict) and args.get("_omitted") is True and set(args) <= STAND_IN_KEYS):
        return False
    size = args.get("_bytes")
    return size is None or (isinstance(size, int) and not isinstance(size, bool))


def bounded_json(args: dict[str, Any], *, limit: int = MAX_ARGS_BYTES) -> dict[str, Any]:
    """`args` (tool arguments, or any JSON object kept in the audit log) when they fit in `limit` bytes of JSON;
    else what is kept of them: size, SHA-256 and a short prefix.

    The stand-in names no target (no namespace or name keys), so nothing read
    from it can be mistaken for what the refused call would have touched.
    """
    size = args_size(args)
    if size is not None and size <= limit:
        return args
    if size is None:
        return {"_omitted": True, "_bytes": None, "_reason": "not representable as JSON"}
    text = canonical_json(args)
    return {"_omitted": True, "_bytes": size, "_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "_prefix": text[:ARGS_PREFIX_CHARS]}


class Finding(Frozen):
    """A problem seen in a snapshot. `id` stays the same across cycles."""

    kind: FindingKind
    subject: str = Field(description="what it is about: namespace/name of a workload, a node name, or 'cluster'")
    summary: str
    severity: Literal["info", "warning", "critical"] = "warning"
    details: dict[str, Any] = Field(default_factory=dict)
    seen_at: datetime | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.subject}"


class ToolCall(Frozen):
    """A proposal to run one tool. The arguments are untrusted until validated."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    actor: str = Field(description="who asks: a person's name, 'daemon' or 'wake-proxy'")
    actor_groups: tuple[str, ...] = Field(default=(), description="the person's groups as the cluster's authentication "
                                                                 "reports them (policy: cluster-group:NAME)")
    channel: Channel = "cli"
    finding_id: str | None = None
    message: str | None = Field(default=None, description="the chat message that led to it, if any")
    planner: str | None = Field(default=None, description="offline, llm:MODEL, scripted, chat-grammar, ...")
    id: str | None = Field(default=None, description="the planner's id for this call (LLM tool-call id)")

    def args_hash(self) -> str:
        """Hash of exactly this tool and these arguments: what an approval binds to."""
        return hashlib.sha256(canonical_json({"tool": self.tool, "args": self.args}).encode()).hexdigest()


class RuleRef(Frozen):
    """Which policy rule made a decision (file and name), or a built-in reason."""

    file: str = Field(description="policy file path, or '<builtin>'")
    name: str


class Decision(Frozen):
    effect: Effect
    rule: RuleRef
    reason: str
    approvers: tuple[str, ...] = Field(default=(), description="who may approve, when effect is require_approval")
    dry_run: bool = Field(default=False, description="policy mode is dry-run: run against the cluster with dry_run")
    expires_after_seconds: int | None = None
    confirm: bool = Field(default=False, description="the matched rule wants the person who asks to confirm the call "
                                                     "in conversation before it runs (`confirm: true`)")
    retry_at: datetime | None = Field(
        default=None, description="a temporary deny (a rate limit): when the same call would be allowed again")


ResultStatus = Literal["ok", "error", "no_data", "denied", "pending_approval", "invalid"]


class ToolResult(Frozen):
    """What the caller (a planner, a person) gets back. Small and structured.

    A failure is data, not an exception: the model reads `message` to correct itself.
    """

    status: ResultStatus
    tool: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    decision: Decision | None = None
    approval_id: int | None = None
    audit_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


ApprovalState = Literal["pending", "approved", "rejected", "expired", "executed", "failed"]


class Approval(Frozen):
    id: int
    call: ToolCall
    args_hash: str
    state: ApprovalState = "pending"
    requested_by: str
    approvers: tuple[str, ...] = ()
    rule: RuleRef
    reason: str = ""
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    thread_id: str | None = Field(default=None, description="agent run waiting on this approval, if any")
