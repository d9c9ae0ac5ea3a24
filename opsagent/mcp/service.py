"""`McpService`: one MCP tool call, as one authenticated actor, through the gate on channel `mcp`.

The actor is handed in by the transport (a bearer token's entry, or the
local user's cluster identity for stdio); nothing in the call's arguments
can name or change it. A write a policy rule wants confirmed is held, and
the call returns its confirmation id (answer it with `confirm_call` /
`refuse_call` from the same actor on MCP); a write that needs an approval
returns the pending approval id and how a person approves it. Nothing here
blocks waiting for a person.

Time-boxed wakes (`start_lease`, `extend_lease`, `cancel_lease`) run the
one lease code the CLI and chat run (`opsagent.leases.LeaseService`) as the
caller on channel `mcp`; a refused one is audited as the caller.

Also the read side of MCP resources: findings (a `list_findings` call
through the gate as the caller), pending approvals and the
audit trail of one run, which a caller may read only for runs they started
(another run's id, or one that does not exist, gets the same answer).
Sync; the server runs it in a worker thread.

Refusals of unauthenticated requests are audited, but a flood of them must
not become a flood of rows: at most `REFUSALS_ITEMISED` a window are written
one by one; the rest are counted, and the count is written as one row when
the next window starts (or the server stops), so the fact is never lost.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Callable

from opsagent.approvals import MACHINE_ACTORS
from opsagent.audit import AuditFilter
from opsagent.chat.confirmations import DEFAULT_TTL_SECONDS, ConfirmationRefused, ConfirmationStore
from pydantic import ValidationError

from opsagent.clock import parse_duration
from opsagent.leases import Lease, LeaseRefused, line, newest_first, read_leases
from opsagent.mcp.catalogue import (CONFIRM_TOOL, EXTEND_LEASE, LEASE_TOOLS, REFUSE_TOOL, START_LEASE, LeaseFilter,
                                    LeaseSpan)
from opsagent.mcp.tokens import UNAUTHENTICATED, reserved_refusal
from opsagent.model import AuditEntry, ToolCall, ToolResult, WorkloadRef
from opsagent.model.actor import Actor, actor_refusal
from tools import get_tool
from tools.args import WorkloadArgs

CHANNEL = "mcp"
PLANNER = "mcp"
MAX_AUDIT_ROWS = 500
MAX_LEASES_LISTED = 200
MAX_TOOL_NAME = 100             # longer names are no tool's, and are not written to the audit log whole
RUN_PREFIX = "mcp-"             # every run MCP starts; its first audit row names who started it
REFUSALS_ITEMISED = 20          # unauthenticated refusals written one by one per window
REFUSAL_WINDOW_SECONDS = 60.0


class RefusalLog:
    """Bounded auditing of refused requests: the first few of each window in full, the rest as one count."""

    def __init__(self, write: Callable[..., int], *, itemised: int = REFUSALS_ITEMISED,
                 window_seconds: float = REFUSAL_WINDOW_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._write, self._itemised, self._window, self._mono = write, itemised, window_seconds, monotonic
        self._lock = threading.Lock()
        self._started = monotonic()
        self._written = 0
        self._counted = 0

    def refuse(self, reason: str) -> None:
        with self._lock:
            if self._mono() - self._started >= self._window:
                self._flush()
                self._started, self._written = self._mono(), 0
            if self._written < self._itemised:
                self._written += 1
                self._write(summary=reason, rule="mcp-unauthenticated")
            else:
                self._counted += 1

    def flush(self) -> None:
        """Write the count of refusals not written one by one (at the end of a window, and when the server stops)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._counted:
            self._write(summary=f"{self._counted} more unauthenticated request(s) refused in {self._window:g}s "
                                f"after the first {self._itemised}; not written one by one",
                        rule="mcp-unauthenticated-count", data={"refused": self._counted})
            self._counted = 0


def _first_error(exc: Exception) -> str:
    """One line for bad arguments: the field and what is wrong with it."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        if where == "duration":
            return "duration: give digits and units, e.g. 2h, 90m or 1h30m"
        return f"{where[:60]}: {first['msg']}"
    return str(exc)[:300]


def _identity(who: Actor) -> str:
    """Who asked, as MCP knows them: the same actor over any MCP transport may answer its own confirmations."""
    return f"mcp:{who.name}"


class McpService:
    """Runs MCP calls through a runtime's gate; see the module docstring."""

    def __init__(self, runtime: Any, *, refusals: RefusalLog | None = None) -> None:
        self.runtime = runtime
        self.refusals = refusals or RefusalLog(self._write_refusal)
        self.gate, self.approvals, self.store, self.clock = runtime.gate, runtime.approvals, runtime.audit, runtime.clock
        ttl = getattr(runtime.policy, "confirmation_ttl_seconds", None)
        self.confirmations = ConfirmationStore(self.store, clock=self.clock,
                                               ttl_seconds=ttl if isinstance(ttl, int) and ttl > 0 else DEFAULT_TTL_SECONDS)

    # --- refusals that never reach the gate ----------------------------------
    def audit_refusal(self, *, actor: str, summary: str, rule: str, tool: str | None = None,
                      args: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                      outcome: str = "denied", run_id: str | None = None) -> int:
        return self.store.record(AuditEntry(
            time=self.clock.now(), kind="decision", actor=actor, channel=CHANNEL, tool=tool, args=args, decision="deny",
            run_id=run_id,
            rule_file="<builtin>", rule_name=rule, outcome=outcome, summary=summary[:1000], data=data))

    def _write_refusal(self, *, summary: str, rule: str, data: dict[str, Any] | None = None) -> int:
        return self.audit_refusal(actor=UNAUTHENTICATED, summary=summary, rule=rule, data=data)

    def refuse_unauthenticated(self, reason: str) -> None:
        """An HTTP request without a known token: refused before any MCP message is read, and audited (bounded)."""
        self.refusals.refuse(reason)

    # --- calls -----------------------------------------------------------------
    def call(self, who: Actor, tool: str, args: dict[str, Any] | None) -> dict[str, Any]:
        """Run one MCP tool call as `who`; the answer is a JSON-able dict with a `status`."""
        args = dict(args or {})
        if len(tool) > MAX_TOOL_NAME:   # the audit log keeps a tool's name whole: a megabyte name is a megabyte row
            shown = f"{tool[:MAX_TOOL_NAME]}…"
            message = f"unknown tool {shown!r}: a tool name is at most {MAX_TOOL_NAME} characters; see tools/list"
            audit_id = self.audit_refusal(actor=who.name, summary=message, rule="mcp-tool-name", tool=shown,
                                          outcome="invalid")
            return {"status": "invalid", "tool": shown, "message": message, "audit_id": audit_id}
        refusal = f"{who.name!r} is opsagent's own machine actor" if who.name in MACHINE_ACTORS else \
            actor_refusal(who.name) or reserved_refusal(who.name)
        if refusal:
            audit_id = self.audit_refusal(actor=who.name, summary=str(refusal), rule="mcp-not-a-person", tool=tool)
            return {"status": "denied", "tool": tool, "message": str(refusal), "audit_id": audit_id}
        if tool in (CONFIRM_TOOL, REFUSE_TOOL):
            return self._answer(who, tool, args)
        if tool in LEASE_TOOLS:
            return self._lease(who, tool, args)
        run_id = f"{RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        call = ToolCall(tool=tool, args=args, actor=who.name, actor_groups=who.groups, channel=CHANNEL, planner=PLANNER)
        spec = get_tool(tool)
        if spec is not None and spec.risk != "read":
            decision = self.gate.preview(call)
            if decision.confirm and decision.effect != "deny":
                why = f"rule {decision.rule.file}:{decision.rule.name} asks you to confirm this write"
                held = self.confirmations.propose(call=call, identity=_identity(who), channel=CHANNEL, why=why, run_id=run_id)
                return {"status": "confirmation_required", "tool": tool, "run_id": run_id, "confirmation_id": held.id,
                        "expires_at": held.expires_at.isoformat(), "message": why,
                        "how": f"call {CONFIRM_TOOL} with confirmation_id {held.id} to run it, or {REFUSE_TOOL} to drop it"}
        return self._answered(self.gate.submit(call, run_id=run_id), run_id)

    def _answer(self, who: Actor, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        number = args.get("confirmation_id")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**63 or \
                set(args) != {"confirmation_id"}:
            message = "give exactly one argument: confirmation_id (a whole number)"
            shown = ", ".join(sorted(str(k)[:40] for k in args)[:10])
            audit_id = self.audit_refusal(actor=who.name, tool=tool, rule="mcp-invalid-answer", outcome="invalid",
                                          summary=f"{message}; got argument(s): {shown or 'none'}")
            return {"status": "invalid", "tool": tool, "message": message, "audit_id": audit_id}
        answer = self.confirmations.confirm if tool == CONFIRM_TOOL else self.confirmations.refuse
        try:
            done = answer(number, actor=who.name, identity=_identity(who), channel=CHANNEL)
        except ConfirmationRefused as exc:
            return {"status": "denied", "tool": tool, "confirmation_id": number, "code": exc.code, "message": exc.message}
        if done.state == "refused":
            return {"status": "refused", "tool": tool, "confirmation_id": number, "message": "dropped: it will not run"}
        run_id = done.run_id or f"{RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        result = self.gate.submit(done.call.model_copy(update={"id": None}), run_id=run_id, confirmation=done.id)
        return {**self._answered(result, run_id), "confirmation_id": number}

    def _lease(self, who: Actor, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """A time-boxed wake, through the one lease code the CLI and chat use (opsagent.leases), as `who`."""
        run_id = f"{RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            parsed = LEASE_TOOLS[tool].input_model.model_validate(args)
            span = parse_duration(parsed.duration) if isinstance(parsed, LeaseSpan) else None
        except (ValidationError, ValueError) as exc:
            message = f"{tool}: {_first_error(exc)}"
            audit_id = self.audit_refusal(actor=who.name, summary=message, rule="mcp-invalid-lease", tool=tool,
                                          outcome="invalid", run_id=run_id)
            return {"status": "invalid", "tool": tool, "message": message, "run_id": run_id, "audit_id": audit_id}
        if isinstance(parsed, LeaseFilter):
            shown = [lease for lease in newest_first(read_leases(self.store))
                     if lease.state == "active" or parsed.include_ended][:MAX_LEASES_LISTED]
            return {"status": "ok", "tool": tool, "message": f"{len(shown)} lease(s)", "run_id": run_id,
                    "data": {"leases": [lease.model_dump(mode="json") for lease in shown]}}
        assert isinstance(parsed, WorkloadArgs)
        ref = WorkloadRef(namespace=parsed.namespace, name=parsed.name)
        target = {"namespace": ref.namespace, "name": ref.name}
        service = self.runtime.leases()
        woke: dict[str, Any] | None = None
        lease: Lease
        try:
            if tool == START_LEASE and span is not None:
                lease, result = service.start(ref, span, actor=who.name, channel=CHANNEL, actor_groups=who.groups,
                                              run_id=run_id)
                woke = self._answered(result, run_id)
            elif tool == EXTEND_LEASE and span is not None:
                lease = service.extend(ref, span, actor=who.name, channel=CHANNEL, actor_groups=who.groups, run_id=run_id)
            else:
                lease = service.cancel(ref, actor=who.name, channel=CHANNEL, actor_groups=who.groups, run_id=run_id)
        except LeaseRefused as exc:
            audit_id = self.audit_refusal(actor=who.name, summary=str(exc), rule="lease", tool=tool, args=target,
                                          run_id=run_id)
            return {"status": "denied", "tool": tool, "message": str(exc), "run_id": run_id, "audit_id": audit_id}
        answer: dict[str, Any] = {"status": "ok", "tool": tool, "message": line(lease), "run_id": run_id,
                                  "data": {"lease": lease.model_dump(mode="json")}}
        if woke is not None:
            answer["data"]["wake"] = woke
        return answer

    @staticmethod
    def _answered(result: ToolResult, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"status": result.status, "tool": result.tool, "message": result.message, "run_id": run_id,
                               "audit_id": result.audit_id, "data": result.data}
        if result.decision is not None:
            out["rule"] = f"{result.decision.rule.file}:{result.decision.rule.name}"
        if result.status == "pending_approval" and result.approval_id is not None:
            out["approval_id"] = result.approval_id
            out["how"] = (f"one of the approvers runs: opsagent approvals approve {result.approval_id} "
                          f"(or in chat: approve {result.approval_id}); read opsagent://approvals/pending to follow it")
        return out

    # --- resources -------------------------------------------------------------
    def findings(self, who: Actor) -> list[dict[str, Any]]:
        """What `list_findings` shows `who`: the resource is that read, through the gate as them (so the policy may
        refuse it, and it is audited); ValueError with the gate's message when it does not answer."""
        answer = self.call(who, "list_findings", {})
        if answer["status"] not in ("ok", "no_data"):
            raise ValueError(answer["message"])
        return list((answer.get("data") or {}).get("findings", []))

    def active_leases(self) -> list[dict[str, Any]]:
        """The time-boxed wakes that hold a workload up now (the `opsagent://leases` resource)."""
        return [lease.model_dump(mode="json") for lease in newest_first(read_leases(self.store))
                if lease.state == "active"][:MAX_LEASES_LISTED]

    def pending_approvals(self) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json") for a in self.approvals.list("pending")]

    def run_audit(self, who: Actor, run_id: str) -> list[dict[str, Any]]:
        """The audit trail of a run `who` started; ValueError for any other run (the same words as for none)."""
        rows = sorted(self.store.list(AuditFilter(run_id=run_id, limit=MAX_AUDIT_ROWS)), key=lambda r: r.id) \
            if run_id.startswith(RUN_PREFIX) else []
        if not rows or (rows[0].actor, rows[0].channel) != (who.name, CHANNEL):
            raise ValueError(f"no run {run_id[:100]!r} of yours; every MCP call you make answers with its run_id")
        return [r.model_dump(mode="json") for r in rows]


__all__ = ["CHANNEL", "McpService", "RefusalLog", "UNAUTHENTICATED"]
