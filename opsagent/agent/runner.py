"""The agent's front door: run a finding or a chat message, resume after an approval.

`Agent` wires the graph to its checkpointer (a SQLite file, so a run waiting
for a person survives a restart) and turns graph state into a `RunReport`.
It guards the LangGraph pitfalls: a thread waiting for approval is never
restarted by new input, a finished thread is never silently "resumed" (a new
epoch thread starts instead), and resuming an unknown thread is an error.
After a restart, `recover()` carries on the finding runs that a stopped
process left in the middle of a call. `prune()` bounds the checkpoints:
a run finished longer ago than the retention keeps one small checkpoint of
its outcome (what the retry rules and the next epoch need), not its history.
It does not decide policy and never touches the cluster: the gate does.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Literal

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field

from opsagent.agent.breaker import Breaker
from opsagent.approvals import claims
from opsagent.agent.config import AgentConfig
from opsagent.agent.graph import Deps, build_graph
from opsagent.agent.holds import (
    MAX_RETRY_BACKOFF, call_key, limit_wait, rejected_calls, retryable_failure, went_unanswered,
)
from opsagent.gate.keys import run_key
from opsagent.gate.ledger import RECOVERY_WINDOW, finished_runs, has_key, interrupted_runs
from opsagent.agent.planners import Planner
from opsagent.agent.planners.offline import OfflinePlanner
from opsagent.agent.playbook_view import render_steps
from opsagent.agent.spend import Spend, spend_of
from opsagent.agent.state import AgentState, initial_state
from opsagent.audit.database import connect as connect_database
from opsagent.clock import Clock
from opsagent.model import Approval, Finding, Snapshot, WorkloadRef
from opsagent.playbooks import TemplateError


class AgentError(Exception):
    """A request the agent cannot serve (unknown run, not waiting, wrong approval)."""


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: str
    message: str = ""
    approval_id: int | None = None


class RunReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    run_id: str
    status: str
    actions: list[Action] = Field(default_factory=list)
    denied: list[Action] = Field(default_factory=list)
    pending_approvals: list[int] = Field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    planner: str = ""
    fell_back: bool = False
    escalated: bool = Field(default=False, description="this report newly hands the finding to a person (logged, counted)")
    resolved: bool | None = None
    summary: str = ""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def report_from(state: dict[str, Any], *, run_id: str) -> RunReport:
    actions = [Action(tool=r["tool"], args=r.get("args") or {}, status=r["status"], message=r.get("message", ""),
                      approval_id=r.get("approval_id")) for r in state.get("results", [])]
    pending = [state["pending_approval"]] if state.get("pending_approval") is not None else []
    return RunReport(
        run_id=run_id, status=state.get("status", "running"), actions=actions,
        denied=[a for a in actions if a.status in ("denied", "invalid")], pending_approvals=pending,
        llm_calls=state.get("llm_calls", 0), prompt_tokens=state.get("prompt_tokens", 0),
        completion_tokens=state.get("completion_tokens", 0), planner=state.get("planner", ""),
        fell_back=state.get("fell_back", False), resolved=state.get("resolved"), summary=state.get("report", ""),
    )


def make_llm_planner(config: AgentConfig, tools: dict[str, Any]) -> Planner:
    """The LLM planner over the configured model server. Builds the client lazily: no request until the first plan."""
    from opsagent.agent.models import classifier_for, make_chat_model
    from opsagent.agent.planners.llm import LlmPlanner

    return LlmPlanner(make_chat_model(config), tools=tools, model_name=config.model, classify=classifier_for(config))


_RUN_SLOTS = 1 << 40   # run locks sit in the claims file past every approval id (approvals lock at offset = id)


def _run_slot(thread_id: str) -> int:
    """The lock byte of one run (two runs that share one wait a cycle for each other, never run together)."""
    return _RUN_SLOTS + zlib.crc32(thread_id.encode())


class Agent:
    def __init__(
        self,
        *,
        gate: Any,
        policy: Any | None,
        playbooks: Any | None,
        observe: Callable[[], Snapshot],
        detect_fn: Callable[[Snapshot], list[Finding]],
        planner: Literal["offline", "llm"] | Planner = "offline",
        checkpoint_path: str | Path,
        recorder: Any,
        clock: Clock,
        config: AgentConfig | None = None,
        tools: dict[str, Any] | None = None,
        approvals: Any | None = None,
        settle: Callable[[], None] | None = None,
        observe_of: Callable[[Sequence[WorkloadRef]], Snapshot] | None = None,
    ) -> None:
        self.config = config or AgentConfig()
        self.clock, self.recorder, self.approvals = clock, recorder, approvals
        if tools is None:
            from tools import REGISTRY

            tools = REGISTRY
        planners: dict[str, Planner] = {"offline": OfflinePlanner()}
        if planner == "llm":
            primary: Planner = make_llm_planner(self.config, tools)
        elif planner == "offline":
            primary = planners["offline"]
        else:
            primary = planner
        planners[primary.name] = primary
        if getattr(primary, "no_fallback", False):  # a control planner (the evals' null) must not hand over its runs
            planners = {primary.name: primary}
        self.planner_name = primary.name
        self.deps = Deps(gate=gate, observe=observe, detect_fn=detect_fn, playbooks=playbooks, policy=policy,
                         recorder=recorder, clock=clock, config=self.config, planners=planners, settle=settle,
                         approvals=approvals, breaker=Breaker(cooldown_seconds=self.config.llm_cooldown_seconds),
                         tools=dict(tools), observe_of=observe_of)
        self._conn = connect_database(checkpoint_path, autocommit=False)  # the checked opener every part uses
        self._run_locks = claims.claims_path(Path(checkpoint_path))
        self.saver = SqliteSaver(self._conn)
        self.saver.setup()
        self.graph = build_graph(self.deps).compile(checkpointer=self.saver)
        self._recovered = False
        self._pruned_until: datetime | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs -----------------------------------------------------------------

    def reconcile_once(self) -> list[RunReport]:
        """Observe, detect, and run the agent once per finding. A steady cluster costs no LLM call."""
        recovered = self.recover()
        snapshot = self.deps.observe()
        reports = [self.handle_finding(f, snapshot) for f in self.deps.detect_fn(snapshot)]
        swept = self.sweep(skip={r.run_id for r in reports})
        self.prune()
        return recovered + reports + swept

    def spend(self, actor: str = "daemon") -> "Spend | None":
        """`actor`'s model use over the last 24 hours and its daily cap from the policy (for /metrics and status)."""
        return spend_of(self.recorder, getattr(self.deps.policy, "spend_caps", None), actor=actor, now=self.clock.now())

    def prune(self) -> int:
        """Shrink the checkpoints of runs finished more than `checkpoint_retention_seconds` ago; returns how many.

        Through the checkpointer's own API: `delete_thread` drops every
        checkpoint and pending write of the run, then one checkpoint is written
        back holding the run's outcome without its conversation (no messages,
        no proposals), marked `compacted`. So the next epoch of a finding, the
        playbook's retry count and backoff, and `state()` still see how the run
        ended, and a reused thread id can never make an old result look like a
        new one. The audit log keeps the whole story. Runs found finished in
        the audit log since the last call are looked at; the first call looks
        at all of them.
        """
        cutoff = self.clock.now() - timedelta(seconds=self.config.checkpoint_retention_seconds)
        pruned = 0
        for thread_id in dict.fromkeys(finished_runs(self.recorder, since=self._pruned_until, until=cutoff)):
            cfg = {"configurable": {"thread_id": thread_id}}
            if len(list(self.saver.list(cfg, limit=2))) < 2:
                continue   # already one checkpoint (pruned before), or none
            values, interrupted, unfinished = self._thread(thread_id)
            if not values or interrupted or unfinished or values.get("compacted"):
                continue
            keep = {k: v for k, v in values.items() if k not in ("messages", "proposed")}
            self.saver.delete_thread(thread_id)
            self.graph.update_state(cfg, {**keep, "compacted": True}, as_node="finish")
            pruned += 1
        self._pruned_until = cutoff
        return pruned

    def recover(self) -> list[RunReport]:
        """Carry on the finding runs that a stopped process left in the middle of a call. Works once per Agent.

        A run holds a claim without a result when the process died after
        submitting a call and before the gate recorded how it went. Continuing
        the run from its checkpoint hands the call to the gate again, which
        records the missing result from what the cluster shows and never runs
        it twice; the run then verifies its finding and finishes (or plans on).
        Only finding runs: the daemon owns them, while a chat process may still
        be in the middle of its own calls. The first call does the work (a
        process recovers when it starts); later calls return nothing.
        """
        if self._recovered:
            return []
        self._recovered = True
        reports = []
        for thread_id in interrupted_runs(self.recorder, since=self.clock.now() - RECOVERY_WINDOW):
            if not thread_id.startswith("finding:"):
                continue
            values, interrupted, unfinished = self._thread(thread_id)
            if not values or interrupted or not unfinished:
                continue
            self.deps.record_run(values, "run resumed after a restart: recovering the call that was in flight")  # type: ignore[arg-type]
            reports.append(self._invoke(None, thread_id, values))
        return reports

    def sweep(self, *, skip: set[str] = frozenset()) -> list[RunReport]:  # type: ignore[assignment]
        """Finish runs whose approval was settled elsewhere (rejected, expired, executed by another run)."""
        reports = []
        for thread_id, approval_id in self.waiting():
            settled = None if thread_id in skip else self._settled_approval(approval_id)
            if settled is not None:
                reports.append(self.resume(thread_id, approval_id=approval_id, decided_state=settled.state,
                                           approver=settled.decided_by or "", approval=settled))
        return reports

    def handle_finding(self, finding: Finding, snapshot: Snapshot | None = None) -> RunReport:
        """Start, continue or hold the run for `finding`. `snapshot` is the one it was found in (read again if not given)."""
        base = f"finding:{finding.id}"
        epoch, finished = 1, []
        while True:
            thread_id = base if epoch == 1 else f"{base}#{epoch}"
            values, interrupted, unfinished = self._thread(thread_id)
            if not values:
                if has_key(self.recorder, run_key(thread_id, "started")):
                    epoch += 1   # its checkpoints are gone but the audit log says it ran: never reuse its id
                    continue
                break
            if interrupted:  # waiting for a person: never start over; carry on once the request is settled
                settled = self._settled_approval(values.get("pending_approval"))
                if settled is not None:
                    return self.resume(thread_id, approval_id=settled.id, decided_state=settled.state,
                                       approver=settled.decided_by or "", approval=settled)
                return report_from(values, run_id=thread_id)
            if unfinished:
                return self._invoke(None, thread_id, values)  # a crash mid-run: carry on from the checkpoint
            finished.append((thread_id, values))
            epoch += 1
        snapshot = snapshot if snapshot is not None else self.deps.observe()
        playbook = self.deps.playbook_for(finding, snapshot)
        held = self._hold(finding, playbook, base, finished) or self._refused(finding, playbook, snapshot, finished)
        if held is not None:
            return held
        state = initial_state(run_id=thread_id, kind="finding", finding=finding.model_dump(mode="json"), message=None,
                              actor="daemon", channel="daemon", planner=self.planner_name,
                              started_at=self.clock.now().isoformat(), playbook=getattr(playbook, "name", None))
        # The details go with it: what the finding said when the agent acted on it outlives the events it read
        # (why a node was cordoned, say, after the XID that made it has left the event window).
        self.deps.record_run(state, f"run started for {finding.id} with planner {self.planner_name}: {finding.summary}",
                             key="started", data={"details": finding.details})
        return self._invoke(state, thread_id, state)

    def _settled_approval(self, approval_id: int | None) -> Approval | None:
        """The approval a run waits on, if it no longer waits for anyone (rejected, expired, executed elsewhere)."""
        if approval_id is None or self.approvals is None:
            return None
        approval = self.approvals.get(approval_id)
        if approval is None or approval.state in ("pending", "approved"):
            return None
        return approval

    def _hold(self, finding: Finding, playbook: Any, base: str,
              finished: list[tuple[str, dict[str, Any]]]) -> RunReport | None:
        """A report instead of a new run, when the playbook says wait, or its retry rule says not yet (or not again).

        Attempts are the trailing runs that did not resolve the finding with the
        same playbook at the same stage (the detector's `attempts`, where it
        counts them). So the detector paces retries that made progress, such as
        a rollout restart that went through, and the playbook's `retry` bounds
        runs that got nowhere (an API error, a denial, a failed check). A
        finding that was resolved and came back starts afresh.
        """
        name = getattr(playbook, "name", None)
        if getattr(playbook, "wait", False):
            summary = f"{finding.id}: waiting, as playbook {name} says ({finding.summary})"
            if not finished:
                return RunReport(run_id=base, status="done", planner=self.planner_name, summary=summary)
            return report_from(finished[-1][1], run_id=finished[-1][0]).model_copy(
                update={"summary": summary, "actions": [], "denied": []})
        if finished and (limited := limit_wait(finished[-1][1])) is not None:
            held = self._wait_for_limit(finding, finished, *limited)
            if held is not None:
                return held
        stage = (name, finding.details.get("attempts"))
        failed = 0
        for _, values in reversed(finished):
            seen = values.get("finding") or {}
            if values.get("resolved") is True or (values.get("playbook"), (seen.get("details") or {}).get("attempts")) != stage:
                break
            # a rate-limit deny, or a request nobody answered before it expired, is a "not yet":
            # not a failed attempt, so the finding is asked about again rather than dropped
            if limit_wait(values) is None and not went_unanswered(values):
                failed += 1
        if failed == 0:
            return None
        last_id, last = finished[-1]
        retry = getattr(playbook, "retry", None)
        max_attempts = int(getattr(retry, "max_attempts", 1))
        backoff = getattr(retry, "backoff", None)
        transient = all(retryable_failure(values) for _, values in finished[-failed:])
        escalated = False
        if failed >= max_attempts and transient and last.get("finished_at"):
            # the cluster said "not now" every time: keep coming back, slower, and tell a person once
            if failed == max_attempts:
                escalated = self._escalate(last, (
                    f"escalated: {failed} run(s) on {finding.id} failed with temporary cluster errors "
                    f"({str((last.get('results') or [{}])[-1].get('message') or '')[:200]}); still retrying with "
                    "a growing backoff, a person should look"), key=f"transient-{len(finished)}")
            wait = min(MAX_RETRY_BACKOFF, (backoff or MAX_RETRY_BACKOFF) * (2 ** (failed - max_attempts + 1)))
            due = datetime.fromisoformat(last["finished_at"]) + wait
            if self.clock.now() >= due and not escalated:  # a new hand-off is reported first; the retry follows
                return None
            summary = f"retry of {finding.id} due at {due.isoformat()} (temporary cluster errors so far: {failed})"
        elif failed >= max_attempts:
            summary = (f"{failed} run(s) did not resolve {finding.id} (playbook {name} allows {max_attempts}); "
                       "not trying again: a person should look")
            escalated = self._escalate(last, summary, key=f"gave-up-{len(finished)}")
        elif backoff is not None and last.get("finished_at"):
            due = datetime.fromisoformat(last["finished_at"]) + backoff
            if self.clock.now() >= due:
                return None
            summary = f"retry of {finding.id} due at {due.isoformat()} (attempt {failed + 1} of {max_attempts})"
        else:
            return None
        report = report_from(last, run_id=last_id)
        return report.model_copy(update={"summary": summary, "actions": [], "denied": [], "escalated": escalated})

    def _escalate(self, last: dict[str, Any], summary: str, *, key: str) -> bool:
        """Record, once, that this finding is now a person's (outcome error); True the first time only."""
        full = run_key(last.get("run_id"), key)
        find = getattr(self.recorder, "find_by_key", None)
        if callable(find) and find(full) is not None:
            return False
        self.deps.record_run(dict(last), summary, outcome="error", full_key=full)  # type: ignore[arg-type]
        return True

    def _wait_for_limit(self, finding: Finding, finished: list[tuple[str, dict[str, Any]]],
                        retry_at: datetime, row: dict[str, Any]) -> RunReport | None:
        """Hold the finding until the rate limit that refused its last run frees up; None once it has.

        A wait longer than `max_limit_wait_seconds` is escalated once: an audit
        entry with outcome error that names the limit and the time, for a person
        to decide whether it should happen sooner. The run still comes back.
        """
        now = self.clock.now()
        if now >= retry_at:
            return None
        last_id, last = finished[-1]
        ended = datetime.fromisoformat(last["finished_at"]) if last.get("finished_at") else now
        summary = f"{finding.id}: {row.get('tool')} was refused by a rate limit; trying again at {retry_at.isoformat()}"
        escalated = False
        if (retry_at - ended).total_seconds() > self.config.max_limit_wait_seconds:
            summary = (f"{finding.id}: escalated: {row.get('tool')} waits until {retry_at.isoformat()} for a rate limit "
                       f"({str(row.get('message') or '')[:200]}); a person should decide whether it should happen sooner. "
                       "The agent tries again then.")
            escalated = self._escalate(last, summary, key=f"limit-escalated-{len(finished)}")
        report = report_from(last, run_id=last_id)
        return report.model_copy(update={"summary": summary, "actions": [], "denied": [], "escalated": escalated})

    def _refused(self, finding: Finding, playbook: Any, snapshot: Snapshot,
                 finished: list[tuple[str, dict[str, Any]]]) -> RunReport | None:
        """A report instead of a new run when the playbook's next write is a call a person already rejected.

        The detector moves its stage on where it knows the next one (a rollback
        after a rejected restart); otherwise the finding waits for a person and
        the same call is never asked again for this incident.
        """
        refused = rejected_calls(finished)
        if not refused or playbook is None:
            return None
        try:
            steps = render_steps(playbook, finding, snapshot)
        except TemplateError:
            return None
        for tool, args in steps:
            row = refused.get(call_key(tool, args))
            if row is None:
                continue
            approval = self.approvals.get(row["approval_id"]) if self.approvals is not None else None
            who = getattr(approval, "decided_by", None) or "a person"
            why = getattr(approval, "reason", "") or ""
            summary = (f"{finding.id}: not asking again for {tool} {call_key('', args)}: rejected by {who}"
                       + (f" ({why[:200]})" if why else "") + "; waiting for a person or a change in the finding")
            last_id, last = finished[-1]
            self.deps.record_run(dict(last), summary, outcome="info", key=f"refused-{len(finished)}")  # type: ignore[arg-type]
            report = report_from(last, run_id=last_id)
            return report.model_copy(update={"summary": summary, "actions": [], "denied": []})
        return None

    def handle_message(self, text: str, *, actor: str, channel: str = "cli", actor_groups: tuple[str, ...] = ()) -> RunReport:
        thread_id = f"chat:{actor}:{uuid.uuid4().hex[:12]}"
        state = initial_state(run_id=thread_id, kind="message", finding=None, message=text, actor=actor, channel=channel,
                              planner=self.planner_name, started_at=self.clock.now().isoformat(), actor_groups=actor_groups)
        self.deps.record_run(state, f"run started for a message from {actor} with planner {self.planner_name}", key="started")
        return self._invoke(state, thread_id, state)

    def resume(self, thread_id: str, *, approval_id: int, decided_state: str, approver: str,
               approval: Approval | None = None, channel: str = "daemon") -> RunReport:
        """Continue a run that waits for `approval_id`, now that a person decided it.

        `channel` is where the resume happens (the daemon, or the chat or Slack service the
        person approved through); the approved call's execution is audited on it.
        """
        values, interrupted, _ = self._thread(thread_id)
        if not values:
            raise AgentError(f"no agent run {thread_id!r}")
        if not interrupted:
            raise AgentError(f"run {thread_id!r} is not waiting for an approval (status {values.get('status')})")
        if values.get("pending_approval") != approval_id:
            raise AgentError(f"run {thread_id!r} waits for approval {values.get('pending_approval')}, not {approval_id}")
        if approval is None and decided_state == "approved":
            if self.approvals is None:
                raise AgentError("an approved resume needs the approval record (pass approval= or give the Agent approvals=)")
            approval = self.approvals.get(approval_id)
            if approval is None:
                raise AgentError(f"approval {approval_id} not found")
        answer = {"decided_state": decided_state, "approver": approver, "channel": channel,
                  "approval": approval.model_dump(mode="json") if approval is not None else None}
        return self._invoke(Command(resume=answer), thread_id, values)

    def waiting(self) -> list[tuple[str, int]]:
        """Runs paused for a person: (thread id, approval id).

        The candidates are the runs that ever filed an approval request (the queue keeps
        each request's thread id); the checkpointer says, through its public state API,
        which of them are paused now.
        """
        queue: Any = self.approvals if self.approvals is not None else self.deps.gate.approvals  # the ApprovalQueue
        out = []
        for thread_id in queue.threads():
            values, interrupted, _ = self._thread(thread_id)
            if interrupted and values.get("pending_approval") is not None:
                out.append((thread_id, int(values["pending_approval"])))
        return out

    def state(self, thread_id: str) -> RunReport | None:
        values, _, _ = self._thread(thread_id)
        return report_from(values, run_id=thread_id) if values else None

    # --- helpers --------------------------------------------------------------

    def _thread(self, thread_id: str) -> tuple[dict[str, Any], bool, bool]:
        snap = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return dict(snap.values or {}), bool(snap.interrupts), bool(snap.next)

    def _invoke(self, payload: Any, thread_id: str, before: AgentState | dict[str, Any]) -> RunReport:
        """Drive the run on from its checkpoint, unless a live process (another one, or this one on another
        thread) is driving it now: a run whose process is alive is not taken up as if it had died."""
        slot = _run_slot(thread_id)
        if not claims.hold(self._run_locks, slot):
            values, _, _ = self._thread(thread_id)
            report = report_from(values or dict(before), run_id=thread_id)
            return report.model_copy(update={"summary": "another process is carrying this run on now; left to it"})
        try:
            return self._drive(payload, thread_id, before)
        finally:
            claims.release(self._run_locks, slot)

    def _drive(self, payload: Any, thread_id: str, before: AgentState | dict[str, Any]) -> RunReport:
        c = self.config  # two planners may each use their budgets (a fallback starts the offline one afresh)
        limit = 40 + 2 * (6 * c.max_steps + 2 * c.max_failures + c.verify_retries)
        cfg = {"configurable": {"thread_id": thread_id}, "recursion_limit": limit}
        try:
            self.graph.invoke(payload, cfg, durability="sync")  # each step is on disk before the next starts
        except Exception as exc:  # boundary: the run fails, the audit log says why, the checkpoint stays
            self.deps.record_run(dict(before), f"run failed: {type(exc).__name__}: {str(exc)[:300]}", outcome="error")  # type: ignore[arg-type]
            values, _, _ = self._thread(thread_id)
            report = report_from(values or dict(before), run_id=thread_id)
            return report.model_copy(update={"status": "failed", "summary": f"{type(exc).__name__}: {exc}"})
        values, _, _ = self._thread(thread_id)
        return report_from(values, run_id=thread_id)
