"""One reconcile cycle: resume decided approvals, observe, detect, run the agent per finding.

The `Reconciler` holds no cluster state of its own: the agent's checkpoints
say which runs wait for a person, the approval queue says what people
decided, the audit log's idempotency keys keep every call at most once.
Order within a cycle:
  0. on the first cycle only, recover the finding runs that a stopped
     process left in the middle of a call (`Agent.recover`);
  1. expire approvals past their deadline;
  2. resume runs whose approval was decided (approved -> the call runs once
     through the gate; rejected/expired -> the run ends and says so);
  2b. run every approved call that no run resumed: the run that asked is gone
     (a chat or Slack message, `opsagent ask`, a finished process). It runs
     once, through the gate, on the daemon channel, as approved by the person
     who approved it; the queue's claim keeps a concurrent claimant (e.g.
     `approvals approve --cluster`) from running it twice;
  2c. close the time-boxed wakes that are due (opsagent.leases): an expired
     lease puts its workload back to sleep through the gate as `daemon`; a
     lease a person ended by scaling the workload by hand is recorded ended;
  3. observe and detect; for each finding, run the agent on its thread
     (`finding:<id>`), except when that thread is waiting for a person;
     after a run that changed the cluster, detect again so later findings
     left are judged on the cluster as it is now: when each one is a finding
     its workload's own facts decide (`detect.WORKLOAD_KINDS`), only those
     workloads are read again; otherwise the whole cluster, and what it shows
     anew joins the queue (with nothing left, what is new waits for the next
     cycle's detection);
  4. prune the checkpoints of runs finished longer ago than the retention
     (`Agent.prune`; the audit log keeps their story).
It must not execute tools itself or decide policy; `stop()` is honoured
between agent runs (a run in progress always finishes its step).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any, Callable

from opsagent.agent import Agent, AgentError, RunReport
from opsagent.daemon.metrics import Metrics
from opsagent.approvals import AlreadyRunning, ApprovalError
from opsagent.detect import workload_subject
from opsagent.model import Approval, Finding, Snapshot, ToolResult, WorkloadRef
from opsagent.runtime import Runtime

log = logging.getLogger("opsagent.daemon")

_DECIDED = {"approved", "rejected", "expired", "executed", "failed"}


@dataclass
class CycleReport:
    """What one cycle did; `events` are human-readable lines in order."""

    at: str
    findings: list[Finding] = field(default_factory=list)
    runs: list[RunReport] = field(default_factory=list)
    resumed: list[RunReport] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    approved_run: dict[int, ToolResult] = field(default_factory=dict)   # approval id -> result (step 2b)
    skipped_waiting: list[str] = field(default_factory=list)
    llm_calls: int = 0
    tokens: int = 0
    fell_back: bool = False
    stopped_early: bool = False
    pruned: int = 0
    seconds: float = 0.0
    leases_closed: list[str] = field(default_factory=list)   # lease ids closed this cycle (step 2c)

    @property
    def actions(self) -> list[Any]:
        return [a for r in self.runs + self.resumed for a in r.actions]


class Reconciler:
    def __init__(self, runtime: Runtime, agent: Agent, *, metrics: Metrics | None = None,
                 observe: Callable[[], Snapshot] | None = None,
                 detect: Callable[[Snapshot], list[Finding]] | None = None,
                 observe_of: Callable[[Sequence[WorkloadRef]], Snapshot] | None = None,
                 on_run: Callable[[str, Finding | None, RunReport], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.runtime, self.agent = runtime, agent
        self.metrics = metrics or Metrics()
        self.observe = observe or runtime.observe
        self.detect = detect or runtime.findings
        self.observe_of = observe_of
        self.on_run = on_run or (lambda *_: None)
        self.should_stop = should_stop
        self._seen_llm: dict[str, tuple[int, int, int]] = {}   # thread -> (calls, prompt, completion) counted
        self._seen_actions: dict[str, int] = {}                 # thread -> results counted
        self._refused: set[int] = set()                         # approvals refused once: not retried every cycle

    # --- the cycle ------------------------------------------------------------

    def cycle(self) -> CycleReport:
        started = time.perf_counter()
        report = CycleReport(at=self.runtime.clock.now().isoformat())
        for run in self.agent.recover():  # does its work on the first cycle only
            self._account(run, report)
            report.resumed.append(run)
            self.on_run("recovered", None, run)
        report.expired = [a.id for a in self.runtime.approvals.expire_due()]
        waiting = dict(self.agent.waiting())
        for thread_id, approval_id in sorted(waiting.items()):
            if self.should_stop():
                report.stopped_early = True
                break
            approval = self.runtime.approvals.get(approval_id)
            if approval is None or approval.state not in _DECIDED:
                continue
            if approval.state == "approved" and self.runtime.approvals.running(approval_id):
                continue   # another process runs the approved call right now and goes on with the run; not twice
            approver = approval.decided_by or ("expiry" if approval.state == "expired" else "")
            # Approved and already run elsewhere (e.g. `opsagent approvals approve` executes at once): resume as
            # approved; the queue's execution claim refuses a second run and the run records that it ran already.
            state = "approved" if approval.state in ("approved", "executed") else approval.state
            try:
                run = self.agent.resume(thread_id, approval_id=approval_id, decided_state=state, approver=approver,
                                        approval=approval if state == "approved" else None)
            except AgentError as exc:
                log.error("cannot resume %s after approval %d was %s: %s", thread_id, approval_id, approval.state, exc)
                continue
            waiting.pop(thread_id, None)
            self._account(run, report)
            report.resumed.append(run)
            self.on_run("resumed", None, run)
        if not report.stopped_early:
            self._run_approved(report)
        report.leases_closed = [lease.id for lease, _ in self.runtime.leases().close_due()]
        snapshot = whole = self.observe()
        findings = self.detect(snapshot)
        report.findings = list(findings)
        done: set[str] = set()
        queue = list(findings)
        while queue and not report.stopped_early:
            if self.should_stop():
                report.stopped_early = True
                break
            finding = queue.pop(0)
            done.add(finding.id)
            thread = f"finding:{finding.id}"
            if any(t == thread or t.startswith(thread + "#") for t in waiting):
                report.skipped_waiting.append(finding.id)
                continue
            run = self.agent.handle_finding(finding, snapshot)
            self._account(run, report)
            report.runs.append(run)
            if run.pending_approvals:
                waiting[run.run_id] = run.pending_approvals[0]
            self.on_run("finding", finding, run)
            if queue and any(a.status == "ok" and not _is_read(a.tool) for a in run.actions):
                refs = [workload_subject(f) for f in queue]
                if self.observe_of is not None and all(refs):
                    snapshot = self.observe_of([ref for ref in refs if ref is not None])
                    current = {f.id: f for f in self.detect(snapshot) if any(q.id == f.id for q in queue)}
                    report.findings = [f for f in report.findings if all(q.id != f.id for q in queue)] + \
                        list(current.values())
                    queue = [current[f.id] for f in queue if f.id in current]
                    continue
                snapshot = whole = self.observe()
                current = {f.id: f for f in self.detect(snapshot)}
                report.findings = list(current.values())
                queue = [current[f.id] for f in queue if f.id in current] + \
                        [f for fid, f in current.items() if fid not in done and all(q.id != fid for q in queue)]
        report.pruned = self.agent.prune()
        report.seconds = time.perf_counter() - started
        self._gauges(whole, report)
        return report

    def _run_approved(self, report: CycleReport) -> None:
        """Step 2b: approved calls whose asking run is gone run here, once, on the daemon channel."""
        queue, gate = self.runtime.approvals, self.runtime.gate
        for approval in queue.list("approved"):
            if approval.id in self._refused:
                continue
            if self.should_stop():
                report.stopped_early = True
                return
            approver = approval.decided_by or ""

            def run(a: Approval) -> ToolResult:  # `a` is the request as the claim checked it against the chain
                return gate.run_approved(a, approver=a.decided_by or "", channel="daemon")

            try:
                result = queue.execute(approval.id, run=run, actor=approver, channel="daemon")
            except AlreadyRunning:
                continue  # another process claimed it and is running it now
            except ApprovalError as exc:  # refused (and audited): tampered, interrupted earlier, decided meanwhile
                log.error("approval %d (%s) not run: %s", approval.id, approval.call.tool, exc.message)
                self._refused.add(approval.id)  # refused and audited once; a restart tries once more
                continue
            report.approved_run[approval.id] = result
            self.metrics.inc("opsagent_actions_total", tool=approval.call.tool, outcome=result.status)
            log.info("approval %d: ran %s %s approved by %s, asked by %s on %s -> %s %s", approval.id,
                     approval.call.tool, approval.call.args, approver, approval.requested_by, approval.call.channel,
                     result.status, result.message[:160])

    # --- bookkeeping ----------------------------------------------------------

    def _account(self, run: RunReport, report: CycleReport) -> None:
        calls0, prompt0, completion0 = self._seen_llm.get(run.run_id, (0, 0, 0))
        calls = max(0, run.llm_calls - calls0)
        prompt, completion = max(0, run.prompt_tokens - prompt0), max(0, run.completion_tokens - completion0)
        self._seen_llm[run.run_id] = (run.llm_calls, run.prompt_tokens, run.completion_tokens)
        report.llm_calls += calls
        report.tokens += prompt + completion
        self.metrics.inc("opsagent_llm_calls_total", calls)
        self.metrics.inc("opsagent_llm_tokens_total", prompt, kind="prompt")
        self.metrics.inc("opsagent_llm_tokens_total", completion, kind="completion")
        new = run.actions[self._seen_actions.get(run.run_id, 0):]
        self._seen_actions[run.run_id] = len(run.actions)
        for action in new:
            self.metrics.inc("opsagent_actions_total", tool=action.tool, outcome=action.status)
        if run.fell_back and not report.fell_back:
            report.fell_back = True
            self.metrics.inc("opsagent_llm_fallbacks_total")
            log.warning("run %s: the language model failed; fell back to the offline planner (see the audit log)", run.run_id)
        if run.escalated:
            self.metrics.inc("opsagent_escalations_total")
            log.warning("run %s: a person should look: %s", run.run_id, run.summary)
        if run.status == "failed":
            log.error("run %s failed: %s", run.run_id, run.summary)

    def _gauges(self, snapshot: Snapshot, report: CycleReport) -> None:
        kinds: dict[str, int] = {}
        idle = 0
        for f in report.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
            if f.kind == "idle_gpu":
                idle += int(f.details.get("gpus_held", 0) or 0)
        self.metrics.replace("opsagent_findings_open", [({"kind": k}, v) for k, v in sorted(kinds.items())])
        self.metrics.set("opsagent_approvals_pending", len(self.runtime.approvals.list("pending")))
        self.metrics.set("opsagent_gpus_allocated", _gpus_allocated(snapshot))
        self.metrics.set("opsagent_gpus_idle", idle)
        self.metrics.observe_cycle(report.seconds)
        spend = self.agent.spend("daemon")
        if spend is not None:
            self.metrics.set("opsagent_model_calls_last_day", spend.calls)
            self.metrics.set("opsagent_model_tokens_last_day", spend.tokens)
            remaining = [({"unit": unit}, value) for unit, value in
                         (("calls", spend.remaining_calls), ("tokens", spend.remaining_tokens)) if value is not None]
            self.metrics.replace("opsagent_model_budget_remaining", remaining)


def _is_read(tool: str) -> bool:
    from tools import get_tool

    found = get_tool(tool)
    return found is not None and found.risk == "read"


def _gpus_allocated(snapshot: Snapshot) -> int:
    return sum(1 for gpu in snapshot.gpus() if gpu.holder)
