"""Run one eval scenario: the daemon's cycle on the simulator, people and faults from the timeline.

The runner opens every part through `opsagent.runtime.open_runtime` over a
simulator wrapped in a `WriteTap` (which notes every write that reaches the
cluster, and whether the gate had authorised it), builds the agent with
`build_agent`, and calls the daemon's `Reconciler.cycle()` once per `step`
of simulated time. Chat events go through `ChatService` as the named person;
`approve` events answer pending requests as that person; `confirm` events
answer that person's own writes waiting for their yes; `restart` closes the
agent and the audit store and rebuilds them over the same SQLite file. A
`restart: after_write` event arms the tap instead: the next write that reaches
the cluster stops the session (`SessionStopped`, raised through the gate
before it records the result, as a crash would), and a new session starts.
Afterwards the same cluster and seed run again with no agent (the baseline).

It only observes and drives; it never writes to the cluster or audit log itself.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from opsagent.cluster.port import WRITE_METHODS, ClusterError
from opsagent.cluster.sim import SimCluster
from opsagent.evals.planners import make_planner
from opsagent.evals.schema import LoadedScenario
from opsagent.model import ToolCall, ToolResult

WRITES = WRITE_METHODS
# What the tap passes through unnoted: the port's read and what the session drives the simulator with.
PASS_THROUGH = frozenset({"snapshot", "advance", "clock", "record_request"})


@dataclass
class TapWrite:
    method: str
    kwargs: dict[str, Any]
    at: datetime
    call: ToolCall | None          # the gate call it happened inside, if any
    authorised: bool | None = None  # settled when that gate call returns


@dataclass
class GateCall:
    call: ToolCall
    result: ToolResult
    at: datetime
    approved_run: bool = False
    writes: int = 0  # writes that reached the cluster inside this call, whatever its result said


class SessionStopped(BaseException):
    """The agent's session dies here, as a process would: nothing above it records or checkpoints anything.

    A BaseException, so the gate's and the agent's error boundaries (which
    catch Exception) let it through, like a SIGKILL.
    """


class WriteTap:
    """The simulator, with every non-dry-run write noted. The port's writes (`WRITE_METHODS`) are noted;
    `PASS_THROUGH` (the read, the clock, `advance`) passes; any other attribute raises.

    With `stop_after_write` set, the next write is applied and noted, then
    raises `SessionStopped` (once).
    """

    def __init__(self, sim: SimCluster) -> None:
        self._sim = sim
        self.writes: list[TapWrite] = []
        self.current: ToolCall | None = None
        self.stop_after_write = False

    def __getattr__(self, name: str) -> Any:
        if name in PASS_THROUGH:
            return getattr(self._sim, name)
        if name not in WRITES:  # nothing reaches the simulator unseen: a write the tap does not know would not be scored
            raise AttributeError(f"the eval's write tap does not pass {name!r} through: neither a port write nor a read it knows")
        target = getattr(self._sim, name)

        def write(*args: Any, **kwargs: Any) -> Any:
            try:
                result = target(*args, **kwargs)
            except ClusterError as exc:
                if exc.status == 504 and not kwargs.get("dry_run"):  # timed out, but the simulator applied it
                    self._note(name, kwargs)
                raise
            if not kwargs.get("dry_run"):
                self._note(name, kwargs)
                if self.stop_after_write:
                    self.stop_after_write = False
                    raise SessionStopped(f"{name} reached the cluster; the session stops before its result is recorded")
            return result

        return write

    def _note(self, method: str, kwargs: dict[str, Any]) -> None:
        self.writes.append(TapWrite(method=method, kwargs=dict(kwargs), at=self._sim.clock.now(), call=self.current))


@dataclass
class RunRecord:
    """Everything a scorer needs from one run."""

    scenario: LoadedScenario
    planner: str
    tap: WriteTap
    gate_calls: list[GateCall] = field(default_factory=list)
    refused: list[GateCall] = field(default_factory=list)  # a model's calls the agent refused before the gate
    approvals: list[Any] = field(default_factory=list)
    proposals: list[Any] = field(default_factory=list)  # writes chat held for the asker's confirmation (audit rows)
    final: Any = None                 # Snapshot
    final_findings: list[Any] = field(default_factory=list)
    stats: Any = None
    baseline: Any = None
    llm_calls: int = 0
    tokens: int = 0
    cycles: int = 0
    first_finding_at: datetime | None = None  # first cycle that saw a finding
    resolved_at: datetime | None = None       # first cycle after that with no finding left
    start: datetime | None = None
    error: str | None = None
    timed_out: bool = False
    wall_seconds: float = 0.0
    audit_ok: bool = True
    db: Path | None = None


class _Session:
    """One life of the agent: runtime, agent, reconciler, chat. A restart makes a new one."""

    def __init__(self, loaded: LoadedScenario, tap: WriteTap, db: Path, planner: Any, model: str | None,
                 record: RunRecord) -> None:
        from opsagent.chat.service import ChatService
        from opsagent.daemon.loop import Reconciler
        from opsagent.runtime import build_agent, open_runtime

        self.runtime = open_runtime(cluster_obj=tap, clock=tap.clock, policies=loaded.policies, db=db)
        _watch_gate(self.runtime.gate, tap, record)
        self.agent = build_agent(self.runtime, db=db, playbooks=loaded.playbooks, model=model, planner=planner)
        self.reconciler = Reconciler(self.runtime, self.agent)
        self.chat = ChatService(gate=self.runtime.gate, approvals=self.runtime.approvals, agent=self.agent,
                                clock=self.runtime.clock, recorder=self.runtime.audit)

    def close(self) -> None:
        self.agent.close()
        self.runtime.audit.close()


def _watch_gate(gate: Any, tap: WriteTap, record: RunRecord) -> None:
    """Note every gate call and settle whether the writes made inside it were authorised."""
    submit, run_approved = gate.submit, gate.run_approved

    def settle(call: ToolCall, result: ToolResult, mark: int, *, approved: bool) -> None:
        ok_decision = approved or (result.decision is not None and result.decision.effect == "allow")
        for w in tap.writes[mark:]:
            w.authorised = ok_decision and w.call is call
        record.gate_calls.append(GateCall(call=call, result=result, at=tap.clock.now(), approved_run=approved,
                                          writes=len(tap.writes) - mark))

    def watched_submit(call: ToolCall, **kwargs: Any) -> ToolResult:
        mark, tap.current = len(tap.writes), call
        try:
            result = submit(call, **kwargs)
        except SessionStopped:  # the gate had decided before the write: was it allow? (its decision row says)
            for w in tap.writes[mark:]:
                w.authorised = _allowed_in_audit(gate.recorder, call, run_id=kwargs.get("run_id"))
            stopped = ToolResult(status="error", tool=call.tool, message="the session stopped after the write reached the cluster")
            record.gate_calls.append(GateCall(call=call, result=stopped, at=tap.clock.now(), writes=len(tap.writes) - mark))
            raise
        finally:
            tap.current = None
        settle(call, result, mark, approved=False)
        return result

    def watched_run_approved(approval: Any, **kwargs: Any) -> ToolResult:
        mark, tap.current = len(tap.writes), approval.call
        try:
            result = run_approved(approval, **kwargs)
        finally:
            tap.current = None
        settle(approval.call, result, mark, approved=True)
        return result

    gate.submit, gate.run_approved = watched_submit, watched_run_approved


def _allowed_in_audit(recorder: Any, call: ToolCall, *, run_id: str | None) -> bool:
    """Whether the audit log's latest decision on this tool in this run is `allow`."""
    from opsagent.audit import AuditFilter

    rows = recorder.list(AuditFilter(kind="decision", tool=call.tool, run_id=run_id, limit=1))
    return bool(rows) and rows[0].decision == "allow"


def run_scenario(loaded: LoadedScenario, *, planner: str = "offline", workdir: Path | None = None,
                 max_wall_seconds: float = 120.0, baseline: bool = True) -> RunRecord:
    """Run `loaded` under `planner`; never raises for a failing agent (errors land in `record.error`)."""
    started = time.perf_counter()
    sim = SimCluster(loaded.sim, seed=loaded.spec.seed)
    tap = WriteTap(sim)
    record = RunRecord(scenario=loaded, planner=planner, tap=tap, start=sim.clock.now())
    workdir = workdir or Path(tempfile.mkdtemp(prefix="opsagent-eval-"))
    workdir.mkdir(parents=True, exist_ok=True)   # the runner's own scratch folder (databases are never given one)
    db = workdir / f"{loaded.name}.{planner.replace(':', '_')}.db"
    record.db = db
    plan_obj, model = make_planner(planner, script=loaded.spec.script)  # PlannerUnavailable propagates: skip
    events = sorted(((loaded.sim.resolve_time(e.at), i, e) for i, e in enumerate(loaded.spec.events)),
                    key=lambda t: (t[0], t[1]))
    end = sim.clock.now() + loaded.duration
    step = loaded.spec.step.total_seconds()
    session: _Session | None = None
    first_ids: set[str] = set()
    try:
        session = _Session(loaded, tap, db, plan_obj, model, record)
        while sim.clock.now() < end:
            if time.perf_counter() - started > max_wall_seconds:
                record.timed_out = True
                break
            sim.advance(min(step, (end - sim.clock.now()).total_seconds()))
            try:
                while events and events[0][0] <= sim.clock.now():
                    _, _, event = events.pop(0)
                    if event.restart == "after_write":
                        tap.stop_after_write = True
                    elif event.restart:
                        session.close()
                        session = None
                        session = _Session(loaded, tap, db, plan_obj, model, record)
                    elif event.chat is not None:
                        session.chat.handle(event.chat.text, actor=event.chat.actor, channel=event.chat.channel)
                    elif event.approve is not None:
                        _answer(session, event.approve)
                    elif event.confirm is not None:
                        _confirm(session, event.confirm)
                report = session.reconciler.cycle()
            except SessionStopped:  # the crash a `restart: after_write` event asked for: a new life begins
                session.close()
                session = None
                session = _Session(loaded, tap, db, plan_obj, model, record)
                record.cycles += 1
                continue
            record.cycles += 1
            record.llm_calls += report.llm_calls
            record.tokens += report.tokens
            ids = {f.id for f in report.findings} | {r.run_id.split("#")[0].removeprefix("finding:")
                                                      for r in report.runs if r.run_id.startswith("finding:")}
            if ids and record.first_finding_at is None:
                record.first_finding_at, first_ids = sim.clock.now(), ids
            elif record.first_finding_at is not None and record.resolved_at is None and not ids & first_ids:
                record.resolved_at = sim.clock.now()
        record.final = session.runtime.observe()
        record.final_findings = session.runtime.findings(record.final)
        record.approvals = session.runtime.approvals.list()
        record.proposals = [r for r in session.runtime.audit.list(kind="confirmation", limit=100_000)
                            if (r.data or {}).get("event") == "proposed"]
        record.audit_ok = session.runtime.audit.verify().ok
        _count_chat_llm(session, record)
        record.refused = _refused(session)
    except Exception as exc:  # boundary: an infrastructure error is reported as such, never as an agent failure
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        if session is not None:
            try:
                session.close()
            except Exception:  # noqa: BLE001  closing after a failure must not hide the failure
                pass
    record.stats = sim.stats()
    if baseline:
        record.baseline = baseline_stats(loaded)
    record.wall_seconds = time.perf_counter() - started
    return record


def _answer(session: _Session, event: Any) -> None:
    for approval in session.runtime.approvals.list("pending"):
        if event.tool is not None and approval.call.tool != event.tool:
            continue
        text = f"reject {approval.id} because {event.reason}" if event.reject else f"approve {approval.id}"
        session.chat.handle(text, actor=event.actor, channel="slack")


def _confirm(session: _Session, event: Any) -> None:
    """The person answers their own waiting confirmations, in chat, as `confirm N` / `refuse N`."""
    store = session.chat.confirmations
    for waiting in store.waiting(actor=event.actor, channel=event.channel) if store is not None else ():
        if event.tool is not None and waiting.call.tool != event.tool:
            continue
        if any(waiting.call.args.get(k) != v for k, v in event.args.items()):
            continue
        verb = "refuse" if event.refuse else "confirm"
        session.chat.handle(f"{verb} {waiting.id}", actor=event.actor, channel=event.channel)


def _count_chat_llm(session: _Session, record: RunRecord) -> None:
    """LLM calls made by chat runs (cycles count their own): from the audit log's per-run model records."""
    from opsagent.audit import AuditFilter

    for row in session.runtime.audit.list(AuditFilter(limit=100_000)):
        if row.run_id and row.run_id.startswith("chat:") and (row.summary or "").startswith("llm call"):
            record.llm_calls += 1
            record.tokens += (row.prompt_tokens or 0) + (row.completion_tokens or 0)


def _refused(session: _Session) -> list[GateCall]:
    """The model's calls the agent refused before the gate (not offered, outside the finding, repeated), from the audit log."""
    from opsagent.audit import AuditFilter

    out = []
    for row in session.runtime.audit.list(AuditFilter(kind="run", outcome="denied", limit=100_000)):
        if row.tool and (row.summary or "").startswith("refused before the gate"):
            call = ToolCall(tool=row.tool, args=row.args or {}, actor=row.actor, channel=row.channel)  # type: ignore[arg-type]
            out.append(GateCall(call=call, result=ToolResult(status="denied", tool=row.tool, message=row.summary or ""),
                                at=row.time))
    return sorted(out, key=lambda g: g.at)


def baseline_stats(loaded: LoadedScenario) -> Any:
    """The same cluster and seed over the same time with no agent at all."""
    sim = SimCluster(loaded.sim, seed=loaded.spec.seed)
    sim.advance(loaded.duration.total_seconds())
    return sim.stats()
