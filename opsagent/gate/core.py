"""The gate: the only path by which a tool runs.

`Gate.submit(call)` looks the tool up, validates the arguments, asks the
policy's pure `decide()`, and then runs the tool, files an approval request, or
refuses. `Gate.run_approved(approval)` runs a call a person approved, after
deciding it again under the policy in force now; the approver must be one of
the approvers that decision names (when the policy changed since the request,
the approvers named then no longer count). Each step is written through
the `Recorder` before the next one starts: a `proposal`, a `decision` and a
`result` entry per call (or a proposal and an `invalid` result when the call
never reached a decision). For a replayable call (a run id and a planner call
id) the decision row is the claim on running it: it carries the attempt that
wrote it, and an attempt that finds another one's decision under its key (a
second process submitting the same call at the same moment) runs nothing.

The gate never raises for bad input: unknown tools, malformed or oversized
arguments and cluster failures come back as a `ToolResult` a model can read.
It must not decide policy itself beyond three built-in guards that no policy can
loosen: architectural tools never run without an approval, a run may not
change more distinct workloads than the policy's blast radius, and the replicas
of a workload an autoscaler owns are never written (opsagent/policy/ownership.py).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from pydantic import ValidationError

from opsagent.clock import Clock
from opsagent.cluster.port import Cluster, ClusterError, ReadOnlyCluster, read_only
from opsagent.detect.probes import explain as explain_not_ready
from opsagent.gate.keys import OUTCOME, approval_run_id, args_hash, executed_key, kind_key, status_of, step_key
from opsagent.gate.support import (
    builtin,
    counts_for,
    format_validation_error,
    small_data,
    target_key,
)
from opsagent.gate.recovery import Observed, before_of, observed_effect
from opsagent.model import (MAX_ARGS_BYTES, Approval, AuditEntry, Decision, EntryKind, Risk, RuleRef, Snapshot, ToolCall, ToolResult, WorkloadRef, args_size,
                            bounded_json, is_stand_in)
from opsagent.policy.ownership import autoscaler_refusal
from tools import REGISTRY, Target, Tool, ToolContext, ToolInput, closest_names

__all__ = ["ApprovalSink", "Gate", "GatePolicy", "Recorder", "MAX_ARGS_BYTES"]



@runtime_checkable
class Recorder(Protocol):
    """Where the gate writes its audit entries and reads back what it already did."""

    def record(self, entry: AuditEntry) -> int:
        """Store one entry; return its audit id."""

    def count_recent(self, *, tool: str | None, namespace: str | None, actor: str | None, since: Any, outcome: str = "ok") -> int:
        """How many `result` entries match, at or after `since` (for rate limits)."""

    def find_by_key(self, key: str) -> Any:
        """The stored entry with this idempotency key (with its `id`), or None (for replay and recovery)."""


@runtime_checkable
class ApprovalSink(Protocol):
    """Where a call that needs a person goes: the approval queue."""

    def request(self, *, call: ToolCall, decision: Decision, run_id: str | None) -> Approval: ...


@runtime_checkable
class GatePolicy(Protocol):
    """What the gate itself asks of the policy, besides handing it to `decide()`."""

    max_workloads_per_run: int | None

    def actor_matches(self, actor: str, name: str) -> bool: ...

    def intent_for(self, workload: Any) -> Any: ...


def _require(name: str, value: Any, port: type) -> None:
    """Refuse to build a gate whose collaborator lacks part of its port: nothing is skipped at run time."""
    if isinstance(value, port):
        return
    members = sorted({m for m in (*vars(port), *getattr(port, "__annotations__", {})) if not m.startswith("_")})
    missing = [m for m in members if not hasattr(value, m)] or members
    raise TypeError(f"the gate needs a {port.__name__} for {name}; {type(value).__name__} lacks {', '.join(missing)}")


class _Step:
    """The audit context of one call passing the gate: shared fields and keys."""

    def __init__(self, gate: "Gate", call: ToolCall, run_id: str | None, nonce: str, extra: dict[str, Any] | None = None) -> None:
        self.gate, self.call, self.run_id, self.nonce = gate, call, run_id, nonce
        # A planner's call id names the call only within its run; without a run every attempt is new.
        self.replayable = run_id is not None and call.id is not None
        self.call_ref = call.id if self.replayable and call.id else nonce
        self.key = step_key(run_id, self.call_ref, call)
        self.started = gate.clock.monotonic()
        self.extra = extra or {}
        self.risk: Risk | None = None
        self.done_key: str | None = None  # set for approved calls: their one 'executed' result key
        self.executing = False
        self.channel: str | None = None  # where an approved call runs, when not where it was asked

    def record(self, kind: EntryKind, **fields: Any) -> int:
        call = self.call
        entry = AuditEntry(
            time=self.gate.clock.now(), kind=kind, actor=call.actor, channel=self.channel or call.channel, run_id=self.run_id,
            finding_id=call.finding_id, message=call.message, tool=call.tool, risk=self.risk,
            idempotency_key=self.done_key if (kind == "result" and self.executing and self.done_key) else kind_key(self.key, kind),
            **fields,
        )
        return self.gate.recorder.record(entry)

    def finish(self, result: ToolResult, *, dry_run: bool = False) -> ToolResult:
        elapsed = (self.gate.clock.monotonic() - self.started) * 1000.0
        data = {**self.extra, **small_data(result.data, read=self.risk == "read")}
        audit_id = self.record(
            "result", args=self.gate._loggable_args(self.call), outcome=OUTCOME[result.status], summary=result.message[:1000],
            duration_ms=round(elapsed, 3), dry_run=dry_run, approval_id=result.approval_id, data=data or None,
            decision=result.decision.effect if result.decision else None,
            rule_file=(result.decision.rule.file or None) if result.decision else None,
            rule_name=(result.decision.rule.name or None) if result.decision else None,
        )
        return result.model_copy(update={"audit_id": audit_id})


class Gate:
    """Validate → decide → execute / request approval / deny, recording every step."""

    def __init__(
        self,
        *,
        policy: GatePolicy,
        cluster: Cluster,
        clock: Clock,
        recorder: Recorder,
        approvals: ApprovalSink,
        tools: dict[str, Tool] = REGISTRY,
        findings: Callable[[], list] = lambda: [],
        decide: Callable[..., Decision] | None = None,
        wait: Callable[[float], None] | None = None,
        proposals_dir: Path | None = None,
        poll_seconds: float = 5.0,
        max_args_bytes: int = MAX_ARGS_BYTES,
    ) -> None:
        _require("policy", policy, GatePolicy)
        _require("recorder", recorder, Recorder)
        _require("approvals", approvals, ApprovalSink)
        if decide is None:
            from opsagent.policy import decide as policy_decide

            decide = policy_decide
        self.policy, self.cluster, self.clock, self.recorder = policy, cluster, clock, recorder
        self.approvals, self.tools, self.findings = approvals, tools, findings
        self._decide: Callable[..., Decision] = decide
        self.wait, self.proposals_dir, self.poll_seconds, self.max_args_bytes = wait, proposals_dir, poll_seconds, max_args_bytes
        self._changed: dict[str, set[str]] = {}
        self.leading: Callable[[], bool] = lambda: True   # the daemon sets its leader's still_leading(): no write without it

    # --- public -----------------------------------------------------------
    @property
    def reader(self) -> ReadOnlyCluster:
        """The gate's cluster as anything but the gate may hold it (leases, the agent's waits): reads only."""
        return read_only(self.cluster)

    def submit(self, call: ToolCall, *, run_id: str | None = None, confirmation: int | None = None) -> ToolResult:
        """Run `call` if the policy allows it; otherwise file an approval request or refuse.

        With a `run_id` and a planner call id (`call.id`), a call that already went
        through the gate is not run again: its recorded result comes back instead.
        `confirmation` is the id of the chat confirmation by which the person who
        asks said yes to exactly this call; a rule with `confirm: true` allows a
        write only with one (the chat service passes it, nothing else does).
        """
        extra = {"confirmation_id": confirmation} if confirmation is not None else None
        step = _Step(self, call, run_id, uuid.uuid4().hex[:16], extra)
        return self._replay(step) or self._process(step, confirmed=confirmation is not None)

    def preview(self, call: ToolCall) -> Decision:
        """The decision the policy in force would make on `call` now; nothing is recorded or run.

        Chat asks it whether a call needs the asker's confirmation first
        (`Decision.confirm`). A call that cannot run at all (unknown tool, bad
        arguments, unreadable cluster) comes back as a built-in deny saying why.
        """
        tool = self.tools.get(call.tool)
        args, problem = self._validate(call, tool)
        if problem is not None:
            return builtin("deny", "invalid-call", problem)
        assert tool is not None and args is not None
        target = args.target()
        try:
            snapshot = self._view(target) if tool.risk != "read" else None
        except ClusterError as exc:
            return builtin("deny", "cluster-unreadable", f"cannot read the cluster to decide: {exc.message}")
        return self._decision(call, tool, target, snapshot, None, None, None, confirmed=True)

    def run_approved(self, approval: Approval, *, approver: str, channel: str | None = None) -> ToolResult:
        """Run a call a person approved, if it is still exactly that call and still not denied.

        `channel` is where it runs (e.g. the daemon running a call asked for in chat); its audit
        rows say so, and name the approver. Default: the channel the call was asked on.
        """
        call = approval.call
        step = _Step(self, call, approval.thread_id, uuid.uuid4().hex[:16], {"approval_id": approval.id, "approver": approver})
        step.channel = channel
        step.key = step_key(approval_run_id(approval.id), step.call_ref, call)
        step.done_key = executed_key(approval.id)
        return self._replay(step) or self._process(step, approval=approval, approver=approver)

    @staticmethod
    def executed_key(approval_id: int) -> str:
        """Idempotency key of the result entry of an approved call that ran: one per approval."""
        return executed_key(approval_id)

    def changed_in_run(self, run_id: str) -> frozenset[str]:
        """Targets (`namespace/name`, `node:NAME`) this gate let a run write to."""
        return frozenset(self._changed.get(run_id, ()))

    # --- the steps --------------------------------------------------------
    def _replay(self, step: _Step) -> ToolResult | None:
        """A call already seen (same idempotency key): never run it twice (invariant 7)."""
        if not step.replayable and step.done_key is None:
            return None
        find = self.recorder.find_by_key
        done = find(step.done_key or kind_key(step.key, "result"))
        if done is not None:
            status = status_of(getattr(done, "outcome", None))
            return ToolResult(status=status, tool=step.call.tool, audit_id=getattr(done, "id", None),
                              approval_id=getattr(done, "approval_id", None), data={"replayed": True},
                              message=f"already handled (audit {getattr(done, 'id', '?')}): {getattr(done, 'summary', '') or ''}")
        if step.done_key is None and find(kind_key(step.key, "proposal")) is not None:
            return self._recover(step)
        return None

    def _recover(self, step: _Step) -> ToolResult | None:
        """The missing result of a call whose process died at the gate; None when nothing can have run yet.

        The recorded decision says how far the call got. Without one, or for a
        read or a dry run, nothing changed and the call is processed now (its
        proposal row is already there and is not written twice). After a deny
        nothing ran. After `allow` the write may or may not have reached the
        cluster: the cluster is read and the result records what it shows,
        `ok` when the change is in effect and `error` otherwise; the call is
        never run a second time.
        """
        call = step.call
        tool = self.tools.get(call.tool)
        step.risk = tool.risk if tool else None
        decided = self.recorder.find_by_key(kind_key(step.key, "decision"))
        if decided is None or tool is None or tool.risk == "read" or decided.dry_run:
            return None
        decision = Decision(effect=decided.decision or "deny", rule=RuleRef(file=decided.rule_file or "", name=decided.rule_name or ""),
                            reason=decided.summary or "", dry_run=bool(decided.dry_run))
        data: dict[str, Any] = {"recovered": True, "interrupted": True, "retryable": False}
        if decision.effect == "deny":
            return step.finish(ToolResult(status="denied", tool=call.tool, decision=decision, data=data,
                                          message=f"denied by {decision.rule.file}:{decision.rule.name}: {decision.reason}"))
        if decision.effect == "require_approval":
            return step.finish(ToolResult(status="error", tool=call.tool, decision=decision, data=data,
                                          message="interrupted while filing the approval request; not filed again "
                                                  "(see `opsagent approvals list`, then propose it again if it is missing)"))
        before = (decided.data or {}).get("before")
        seen: Observed | None
        try:
            observed = observed_effect(call.tool, dict(call.args), before, self.cluster.snapshot())
        except ClusterError as exc:
            seen = None
            detail = f"the cluster could not be read to check ({exc.message})"
        else:
            seen, detail = observed, observed.detail
        data["effect"] = seen.verdict if seen is not None else "unknown"
        stopped = "the process stopped after the policy allowed this call and before its result was recorded"
        if seen is not None and seen.verdict == "in_effect":
            return step.finish(ToolResult(status="ok", tool=call.tool, decision=decision, data=data,
                                          message=f"recovered after a restart: {stopped}; the cluster shows the change ({detail})"))
        verdict = "does not show the change" if data["effect"] == "not_in_effect" else "cannot tell whether it took effect"
        return step.finish(ToolResult(status="error", tool=call.tool, decision=decision, data=data,
                                      message=f"recovered after a restart: {stopped}; the cluster {verdict} ({detail}); "
                                              "not run again (check the cluster, then propose a new call)"))

    def _process(self, step: _Step, *, approval: Approval | None = None, approver: str | None = None,
                 confirmed: bool = False) -> ToolResult:
        call = step.call
        tool = self.tools.get(call.tool)
        step.risk = tool.risk if tool else None
        step.record("proposal", args=self._loggable_args(call), approval_id=approval.id if approval else None, data=step.extra or None)
        args, problem = self._validate(call, tool)
        if problem is not None:
            return step.finish(ToolResult(status="invalid", tool=call.tool, message=problem))
        assert tool is not None and args is not None
        target = args.target()
        snapshot: Snapshot | None = None
        try:
            if tool.risk != "read":
                snapshot = self._view(target)
        except ClusterError as exc:
            decision = builtin("deny", "cluster-unreadable", f"cannot read the cluster to decide: {exc.message}")
        else:
            decision = self._decision(call, tool, target, snapshot, step.run_id, approval, approver, confirmed=confirmed)
        before = before_of(dict(args.model_dump()), snapshot) if decision.effect == "allow" or approval else None
        data: dict[str, Any] = {"before": before} if before else {}
        if step.replayable:  # the decision row is the claim: its key is unique, and it names the attempt that made it
            data["attempt"] = step.nonce
        step.record("decision", args=self._loggable_args(call), decision=decision.effect, rule_file=decision.rule.file,
                    rule_name=decision.rule.name, summary=decision.reason[:1000], dry_run=decision.dry_run,
                    approval_id=approval.id if approval else None, data=data or None)
        if step.replayable and not self._decided_here(step):
            return ToolResult(status="error", tool=call.tool, decision=decision, data={"retryable": False, "in_flight": True},
                              message="another process is running this same call now (its decision is recorded); "
                                      "not run twice here")
        if decision.effect == "deny":
            where = f"{decision.rule.file}:{decision.rule.name}"
            return step.finish(ToolResult(status="denied", tool=call.tool, decision=decision, message=f"denied by {where}: {decision.reason}"))
        if decision.effect == "require_approval" and approval is None:
            return self._request_approval(step, decision)
        return self._execute(step, tool, args, target, snapshot, decision)

    def _decided_here(self, step: _Step) -> bool:
        """Whether the recorded decision of a replayable call is this attempt's: a second process that submits the
        same call at once finds the first one's row under the key (the store skips a second insert of a key)."""
        row = self.recorder.find_by_key(kind_key(step.key, "decision"))
        data = getattr(row, "data", None) if row is not None else None
        return not isinstance(data, dict) or data.get("attempt", step.nonce) == step.nonce

    def _validate(self, call: ToolCall, tool: Tool | None) -> tuple[ToolInput | None, str | None]:
        size = self._args_size(call)
        if size is None or size > self.max_args_bytes:
            shown = "cannot be encoded as JSON" if size is None else f"are {size} bytes"
            return None, f"arguments {shown}; the limit is {self.max_args_bytes} bytes of JSON"
        if tool is None:
            near = closest_names(call.tool, list(self.tools))
            names = near or sorted(self.tools)
            label = "did you mean" if near else "valid tools are"
            return None, f"unknown tool {str(call.tool)[:100]!r}; {label}: {', '.join(names)}"
        try:
            return tool.input_model.model_validate(call.args), None
        except ValidationError as exc:
            return None, f"bad arguments for {tool.name}: {format_validation_error(exc)}"
        except (ValueError, TypeError, RecursionError) as exc:
            return None, f"bad arguments for {tool.name}: {type(exc).__name__}: {str(exc)[:300]}"

    def _decision(self, call: ToolCall, tool: Tool, target: Any, snapshot: Snapshot | None, run_id: str | None,
                  approval: Approval | None, approver: str | None, *, confirmed: bool = False) -> Decision:
        now = self.clock.now()
        if approval is not None:
            refusal = self._approval_problem(call, approval, approver or "", now)
            if refusal:
                return builtin("deny", "approval-invalid", refusal)
        owned = autoscaler_refusal(tool.replicas, getattr(target, "workload", None), snapshot)
        if owned:  # built-in guard, like the approval rule for architectural tools: no policy loosens it
            return builtin("deny", "autoscaler-owned", owned)
        counts = counts_for(self.recorder, known_tools=list(self.tools), run_workloads=lambda: self._changed.get(run_id or "", set()))
        try:
            decision = self._decide(self.policy, call=call, risk=tool.risk, target=target, snapshot=snapshot, now=now, counts=counts)
        except Exception as exc:  # a decide() bug must fail closed, and the audit log says why
            return builtin("deny", "decide-error", f"the policy decision failed ({type(exc).__name__}: {str(exc)[:200]}); refusing")
        if not isinstance(decision, Decision):
            return builtin("deny", "decide-error", "the policy decision returned no Decision; refusing")
        if approval is not None and decision.effect != "deny":
            refusal = self._approver_problem(approval, approver or "", decision)
            if refusal:
                return builtin("deny", "approval-invalid", refusal)
        if tool.risk == "architectural" and decision.effect == "allow" and approval is None:
            decision = Decision(effect="require_approval", rule=decision.rule, approvers=decision.approvers, dry_run=decision.dry_run,
                                reason=f"architectural tools always need a person's approval ({decision.reason})".strip(),
                                expires_after_seconds=decision.expires_after_seconds)
        if decision.effect != "deny" and tool.risk != "read" and approval is None and run_id is not None:
            limit = self.policy.max_workloads_per_run
            key = target_key(target)
            changed = self._changed.get(run_id, set())
            if isinstance(limit, int) and key and key not in changed and len(changed) >= limit:
                return builtin("deny", "blast-radius", f"this run already changed {len(changed)} target(s), the policy's limit is {limit}")
        if decision.effect == "allow" and decision.confirm and tool.risk != "read" and approval is None and not confirmed:
            return decision.model_copy(update={"effect": "deny", "reason": (
                f"rule {decision.rule.name} lets this run only after the person who asks confirms it in chat, "
                f"and nobody confirmed it ({decision.reason})")})
        return decision

    def approvers_now(self, approval: Approval) -> tuple[str, ...]:
        """The approvers the policy in force names for an approval's call; empty when it names none or would refuse.

        The approval queue asks this when a person approves, so approving and
        executing check the same people (see `_approver_problem`).
        """
        call = approval.call
        tool = self.tools.get(call.tool)
        if tool is None:
            return ()
        try:
            args = tool.input_model.model_validate(call.args)
            snapshot = self._view(args.target()) if tool.risk != "read" else None
        except (ValidationError, ClusterError):  # unknown now: the approvers stored with the request apply
            return ()
        decision = self._decision(call, tool, args.target(), snapshot, None, None, None)
        return tuple(decision.approvers) if decision.effect != "deny" else ()

    def _approval_problem(self, call: ToolCall, approval: Approval, approver: str, now: Any) -> str | None:
        if approval.state != "approved":
            return f"approval {approval.id} is {approval.state}, not approved"
        if approval.args_hash != args_hash(call):
            return f"approval {approval.id} was for different arguments (hash mismatch); nothing runs"
        if approval.expires_at <= now:
            return f"approval {approval.id} expired at {approval.expires_at.isoformat()}"
        if not approver or approver != (approval.decided_by or approver):
            return f"approval {approval.id} was decided by {approval.decided_by}, not {approver}"
        return None

    def _approver_problem(self, approval: Approval, approver: str, decision: Decision) -> str | None:
        """Why `approver` may not run this approved call under the policy in force now, or None.

        The approvers that count are the ones the current decision names for
        the call; only when it names none (the call would now run without a
        person) do the approvers stored with the request apply.
        """
        approvers = tuple(decision.approvers) or tuple(approval.approvers)
        if not approvers or any(self.policy.actor_matches(approver, name) for name in approvers):
            return None
        if decision.approvers and set(decision.approvers) != set(approval.approvers):
            return (f"{approver} is not one of the approvers the policy in force names for this call "
                    f"({', '.join(decision.approvers)}, rule {decision.rule.file}:{decision.rule.name}); "
                    f"the request was made when they were {', '.join(approval.approvers) or 'none'}")
        return f"{approver} is not one of the approvers: {', '.join(approvers)}"

    def _request_approval(self, step: _Step, decision: Decision) -> ToolResult:
        call = step.call
        try:
            approval = self.approvals.request(call=call, decision=decision, run_id=step.run_id)
        except Exception as exc:  # the queue failed: the call must not run, and the log says so
            return step.finish(ToolResult(status="error", tool=call.tool, decision=decision,
                                          message=f"could not file the approval request: {type(exc).__name__}: {str(exc)[:200]}",
                                          data={"retryable": True}))
        who = ", ".join(approval.approvers or decision.approvers) or "an authorized approver"
        return step.finish(ToolResult(status="pending_approval", tool=call.tool, decision=decision, approval_id=approval.id,
                                      message=f"pending approval {approval.id}, needs one of: {who}",
                                      data={"approval_id": approval.id, "approvers": list(approval.approvers or decision.approvers),
                                            "expires_at": approval.expires_at.isoformat()}))

    def _execute(self, step: _Step, tool: Tool, args: ToolInput, target: Any, snapshot: Snapshot | None, decision: Decision) -> ToolResult:
        call = step.call
        if tool.risk == "architectural" and "approval_id" not in step.extra:  # defence in depth: never without a person
            return step.finish(ToolResult(status="denied", tool=call.tool, decision=decision,
                                          message="architectural tools run only after a person approves them"))
        if tool.risk != "read" and not self.leading():
            return step.finish(ToolResult(status="error", tool=call.tool, decision=decision,
                                          data={"retryable": True, "error": "NotLeader"},
                                          message=f"{tool.name} not run: this daemon lost leadership (its Lease was "
                                                  "taken or could not be renewed); no write made"))
        if tool.risk != "read" and step.run_id is not None and (key := target_key(target)):
            self._changed.setdefault(step.run_id, set()).add(key)
        ctx = self._context(tool, target, snapshot, decision)
        step.executing = True
        try:
            outcome = tool.run(ctx, args)
        except ClusterError as exc:
            data = {"retryable": exc.retryable, "error": type(exc).__name__, "http_status": exc.status}
            if getattr(exc, "delay", None) is not None:
                data["retry_after_seconds"] = exc.delay  # type: ignore[attr-defined]
            hint = " (retry later)" if exc.retryable else ""
            return step.finish(ToolResult(status="error", tool=call.tool, decision=decision, data=data,
                                          message=f"{tool.name} failed: {exc.message}{hint}"), dry_run=decision.dry_run)
        except Exception as exc:  # a tool bug: report it as data, the log keeps the type
            return step.finish(ToolResult(status="error", tool=call.tool, decision=decision, data={"retryable": False, "error": type(exc).__name__},
                                          message=f"{tool.name} failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}"),
                               dry_run=decision.dry_run)
        return step.finish(ToolResult(status=outcome.status, tool=call.tool, decision=decision, message=outcome.message, data=outcome.data),
                           dry_run=decision.dry_run)

    # --- helpers ----------------------------------------------------------
    def _view(self, target: Any) -> Snapshot:
        """What a decision about `target` reads. A call on one workload reads that workload (its pods, its
        autoscaler, what its facts are computed from) by point lookups when the adapter can show one workload
        (`ReadsWorkloads`): the same facts as the whole snapshot, without reading the whole cluster. Anything else,
        or a workload the cluster does not have (so the tool can name the ones that exist), reads the whole cluster."""
        ref = getattr(target, "workload", None)
        narrow = getattr(self.cluster, "snapshot_of", None) if isinstance(ref, WorkloadRef) else None
        if narrow is not None:
            view = narrow([ref])
            if view.workload(ref) is not None:
                return view
        return self.cluster.snapshot()

    def _context(self, tool: Tool, target: Any, snapshot: Snapshot | None, decision: Decision) -> ToolContext:
        cluster = read_only(self.cluster) if tool.risk == "read" else self.cluster
        # After the decision, a write tool looks again (waiting, checking its change) at its own target only.
        read = self.cluster.snapshot if tool.risk == "read" else (lambda: self._view(target))
        ctx = ToolContext(cluster=cluster, clock=self.clock, observe=_decided_then_fresh(snapshot, read), dry_run=decision.dry_run,
                          warm_replicas=lambda ref: self._warm_replicas(ref, snapshot), findings=self.findings, poll_seconds=self.poll_seconds,
                          wait=self.wait, proposals_dir=self.proposals_dir,
                          explain_not_ready=explain_not_ready)
        ref = getattr(target, "workload", None)
        wake = self._wake_rule(ref, snapshot) if ref is not None else None
        if wake is not None:
            ctx = replace(ctx, wake_timeout_seconds=wake.timeout.total_seconds())
        return ctx

    def _wake_rule(self, ref: WorkloadRef | None, snapshot: Snapshot | None) -> Any:
        if ref is None:
            return None
        try:
            workload = (snapshot or self._view(Target(workload=ref))).workload(ref)
        except ClusterError:
            return None
        intent = self.policy.intent_for(workload) if workload is not None else None
        return getattr(intent, "wake", None)

    def _warm_replicas(self, ref: WorkloadRef, decided: Snapshot | None = None) -> int:
        """The intent's warm replicas for `ref`, read from the snapshot the call was decided on when it shows `ref`."""
        wake = self._wake_rule(ref, decided if decided is not None and decided.workload(ref) is not None else None)
        return wake.warm_replicas if wake is not None else 1

    def _args_size(self, call: ToolCall) -> int | None:
        """Bytes of the arguments as JSON; for the stand-in the agent keeps of oversized ones, the size it recorded
        (so they are refused as too large, whatever the stand-in says, and never parsed as a tool's input)."""
        if is_stand_in(call.args):
            recorded = call.args.get("_bytes")
            if recorded is None:
                return None                  # it stood in for arguments that were not JSON
            if recorded > self.max_args_bytes:
                return int(recorded)         # too large, as recorded; a smaller claim is parsed like any arguments
        return args_size(call.args)

    def _loggable_args(self, call: ToolCall) -> dict[str, Any]:
        """The arguments as the audit log keeps them: oversized ones as size, digest and a short prefix."""
        return dict(bounded_json(dict(call.args), limit=self.max_args_bytes))


def _decided_then_fresh(snapshot: Snapshot | None, read: Callable[[], Snapshot]) -> Callable[[], Snapshot]:
    """The tool's first look is the snapshot the decision was made on (no second read of the whole
    cluster before acting); every later look reads the cluster again."""
    if snapshot is None:
        return read
    pending = [snapshot]
    return lambda: pending.pop() if pending else read()
