"""`opsagent demo`: the daemon on the simulated demo cluster, one day in well under a minute.

Runs the real daemon (runtime, gate, audit log, approval queue, agent with
checkpoints) against the builtin `demo` scenario, advancing the simulator by
`step_minutes` of virtual time per cycle, and prints each finding, decision,
action and approval as it happens. People are played simply: the on-call
engineer (carol) answers routine write requests after `oncall_delay_minutes`;
nobody answers architectural requests, so those wait (and expire, as they
would) for a platform lead. At the end the same scenario and seed run again
with no agent for the baseline, and a `DemoSummary` compares the two.
It must not bypass the gate or write to the audit log itself.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console

from opsagent import shipped
from opsagent.daemon.loop import CycleReport
from opsagent.daemon.runner import Daemon, DaemonOptions

REPO = shipped.root()
ONCALL = "carol"


class PendingApproval(BaseModel):
    id: int
    tool: str
    args: dict[str, Any]
    approvers: list[str]
    approve_command: str


class DemoSummary(BaseModel):
    db: str
    planner: str
    simulated_hours: float
    cycles: int
    wall_seconds: float
    gpu_hours_idle_with_agent: float
    gpu_hours_idle_without_agent: float
    gpu_hours_allocated_with_agent: float
    gpu_hours_allocated_without_agent: float
    jobs_started_with_agent: int
    jobs_started_without_agent: int
    jobs_started: list[str] = Field(default_factory=list)
    actions_ok: dict[str, int] = Field(default_factory=dict)
    rollouts_recovered: int = 0
    wakes: int = 0
    sleeps: int = 0
    approvals_requested: int = 0
    approvals_approved: int = 0
    approvals_expired: int = 0
    approvals_pending: list[PendingApproval] = Field(default_factory=list)
    architectural_requests: list[str] = Field(default_factory=list)
    audit_records: int = 0
    audit_verified: bool = False
    llm_calls: int = 0
    llm_tokens: int = 0


def default_db() -> Path:
    return Path(tempfile.mkdtemp(prefix="opsagent-demo-")) / "opsagent-demo.db"


class _Printer:
    """Prints each run's new actions once, in simulated time order."""

    def __init__(self, console: Console, daemon: "Daemon | None" = None) -> None:
        self.console = console
        self.seen: dict[str, int] = {}
        self.daemon = daemon

    def on_run(self, kind: str, finding: Any, run: Any) -> None:
        new = run.actions[self.seen.get(run.run_id, 0):]
        self.seen[run.run_id] = len(run.actions)
        if not new and kind == "finding" and run.status not in ("waiting_approval",):
            return
        at = self.daemon.runtime.clock.now().strftime("%H:%M") if self.daemon else ""
        if finding is not None and new:
            self.console.print(f"[dim]{at}[/] [bold]{finding.kind}[/] {finding.summary}", highlight=False)
        for action in new:
            args = ", ".join(f"{k}={v}" for k, v in action.args.items())
            style = {"ok": "green", "pending_approval": "yellow", "denied": "red"}.get(action.status, "white")
            note = f" (approval #{action.approval_id})" if action.approval_id else ""
            self.console.print(f"[dim]{at}[/]   -> {action.tool}({args}) [{style}]{action.status}[/]{note}: "
                               f"{action.message[:120]}", highlight=False)


def _play_people(daemon: Daemon, *, delay: timedelta, console: Console) -> int:
    """The on-call engineer approves routine (write) requests once they are `delay` old."""
    from tools import get_tool

    now = daemon.runtime.clock.now()
    approved = 0
    for approval in daemon.runtime.approvals.list("pending"):
        tool = get_tool(approval.call.tool)
        if tool is None or tool.risk != "write" or now - approval.created_at < delay:
            continue
        if not any(daemon.runtime.policy.actor_matches(ONCALL, name) for name in approval.approvers):
            continue
        daemon.runtime.approvals.approve(approval.id, by=ONCALL, comment="on-call: routine, go ahead", channel="cli")
        console.print(f"[dim]{now:%H:%M}[/]   [cyan]{ONCALL} (on-call) approves #{approval.id}[/] {approval.call.tool}",
                      highlight=False)
        approved += 1
    return approved


def run_demo(*, hours: float = 24.0, step_minutes: float = 5.0, db: Path | None = None, model: str | None = None,
             base_url: str | None = None,
             seed: int | None = None, console: Console | None = None, oncall_delay_minutes: float = 10.0,
             policies: Path | None = None, playbooks: Path | None = None, offline: bool = False,
             planner: Any = None) -> DemoSummary:
    """Run the demo day and its no-agent baseline; returns the summary (printing as it goes).

    `planner` is a planner object to run instead (e.g. the eval's hostile or garbled one); it wins over `model`.
    """
    console = console or Console(quiet=True)
    started = time.perf_counter()
    db = Path(db) if db is not None else default_db()
    if planner is not None:
        model = None
        console.print(f"Planner: [bold]{planner.name}[/] (offline playbooks if it fails).")
    elif not offline:
        from opsagent.agent import AgentConfig
        from opsagent.agent.server import server_problem, shown_url

        config = AgentConfig.from_env(model=model, base_url=base_url)
        problem = server_problem(config, timeout=0.5)
        if problem is None:
            model = config.model
            console.print(f"Planner: [bold]{model}[/] at {shown_url(config.server_url)} (offline playbooks if it fails).",
                          highlight=False, markup=False)
        else:
            console.print(f"The model cannot be used ({problem}): running the offline planner "
                          "(playbook steps, no language model).", highlight=False, markup=False)
            model = None
    else:
        model = None
        console.print("Planner: [bold]offline[/] (playbook steps, no language model).")
    options = DaemonOptions(cluster="sim:demo", policies=policies or REPO / "policies",
                            playbooks=playbooks or REPO / "playbooks", db=db, model=model,
                            base_url=base_url, interval=step_minutes * 60, cycles=int(hours * 60 / step_minutes), sim_speed=0, seed=seed)
    printer = _Printer(console)
    delay = timedelta(minutes=oncall_delay_minutes)
    state: dict[str, Any] = {"llm": 0, "tokens": 0, "jobs": set()}

    def on_cycle(report: CycleReport) -> None:
        state["llm"] += report.llm_calls
        state["tokens"] += report.tokens
        if report.fell_back:
            console.print("[yellow]the language model failed; this run fell back to the offline planner[/]")
        for job in daemon.runtime.observe().jobs:
            if job.started_at is not None and job.key not in state["jobs"]:
                state["jobs"].add(job.key)
                console.print(f"[dim]{job.started_at:%H:%M}[/] [green]job {job.key} started[/] on {job.gpus} GPU(s)",
                              highlight=False)
        _play_people(daemon, delay=delay, console=console)

    daemon = Daemon(options, on_cycle=on_cycle, on_run=printer.on_run, planner=planner)
    printer.daemon = daemon
    console.rule(f"opsagent demo: {hours:g} simulated hours of the demo cluster, {step_minutes:g}-minute cycles")
    daemon.run(install_signals=False)
    with_agent = daemon.runtime.sim.stats()  # type: ignore[union-attr]
    baseline = _baseline(hours=hours, seed=seed)
    summary = _summarize(daemon, db=db, with_agent=with_agent, baseline=baseline, hours=hours,
                         cycles=options.cycles or 0, llm=state,
                         planner=planner.name if planner is not None else model or "offline", started=started)
    _print_summary(console, summary)
    daemon.runtime.audit.close()
    return summary


def _baseline(*, hours: float, seed: int | None) -> Any:
    from opsagent.cluster.sim import SimCluster, builtin_scenario

    sim = SimCluster(builtin_scenario("demo"), seed=seed)
    sim.advance(hours * 3600)
    return sim.stats()


def _summarize(daemon: Daemon, *, db: Path, with_agent: Any, baseline: Any, hours: float, cycles: int,
               llm: dict[str, int], planner: str, started: float) -> DemoSummary:
    from opsagent.audit.query import AuditFilter
    from tools import get_tool

    audit, approvals = daemon.runtime.audit, daemon.runtime.approvals
    results = audit.list(AuditFilter(kind="result", outcome="ok", limit=100_000))
    ok: dict[str, int] = {}
    for record in results:
        if record.tool:
            ok[record.tool] = ok.get(record.tool, 0) + 1
    every = approvals.list()
    pending = [PendingApproval(id=a.id, tool=a.call.tool, args=dict(a.call.args), approvers=list(a.approvers),
                               approve_command=f"opsagent approvals approve {a.id} --db {db} --as <approver>"
                                               f" --policies {daemon.options.policies}")
               for a in every if a.state == "pending"]
    arch = [f"#{a.id} {a.call.tool} {a.call.args.get('namespace')}/{a.call.args.get('name')} ({a.state})"
            for a in every if (get_tool(a.call.tool) is not None and get_tool(a.call.tool).risk == "architectural")]
    snapshot = daemon.runtime.observe()
    started_jobs = sorted(j.key for j in snapshot.jobs if getattr(j, "started_at", None) is not None)
    retried = {f"{r.args.get('namespace')}/{r.args.get('name')}" for r in results
               if r.tool in ("restart_rollout", "undo_rollout") and r.args}
    recovered = sum(1 for key in retried if (w := snapshot.workload(key)) is not None and w.rollout.status == "complete")
    report = audit.verify()
    return DemoSummary(
        db=str(db), planner=planner, simulated_hours=hours, cycles=cycles,
        wall_seconds=round(time.perf_counter() - started, 2),
        gpu_hours_idle_with_agent=round(with_agent.gpu_hours_idle, 2),
        gpu_hours_idle_without_agent=round(baseline.gpu_hours_idle, 2),
        gpu_hours_allocated_with_agent=round(with_agent.gpu_hours_allocated, 2),
        gpu_hours_allocated_without_agent=round(baseline.gpu_hours_allocated, 2),
        jobs_started_with_agent=with_agent.jobs_started, jobs_started_without_agent=baseline.jobs_started,
        jobs_started=started_jobs, actions_ok=ok, rollouts_recovered=recovered,
        wakes=ok.get("wake_workload", 0), sleeps=ok.get("sleep_workload", 0),
        approvals_requested=len(every), approvals_approved=sum(1 for a in every if a.decided_by and a.state in ("approved", "executed", "failed")),
        approvals_expired=sum(1 for a in every if a.state == "expired"), approvals_pending=pending,
        architectural_requests=arch, audit_records=audit.count(), audit_verified=report.ok,
        llm_calls=llm["llm"], llm_tokens=llm["tokens"],
    )


def _print_summary(console: Console, s: DemoSummary) -> None:
    console.rule("summary")
    saved = s.gpu_hours_idle_without_agent - s.gpu_hours_idle_with_agent
    console.print(f"GPU-hours held idle: {s.gpu_hours_idle_with_agent:g} with the agent, "
                  f"{s.gpu_hours_idle_without_agent:g} without ({saved:+.2f} saved)", highlight=False)
    console.print(f"jobs started: {s.jobs_started_with_agent} with the agent, {s.jobs_started_without_agent} without"
                  + (f" ({', '.join(s.jobs_started)})" if s.jobs_started else ""), highlight=False)
    console.print(f"actions: {s.sleeps} sleep, {s.wakes} wake, {s.rollouts_recovered} rollout(s) recovered; "
                  f"approvals: {s.approvals_requested} asked, {s.approvals_approved} approved, {s.approvals_expired} expired unanswered",
                  highlight=False)
    for request in s.architectural_requests:
        console.print(f"architectural request for a platform lead: {request}", highlight=False)
    for p in s.approvals_pending:
        console.print(f"waiting for {', '.join(p.approvers)}: #{p.id} {p.tool} {p.args}\n   {p.approve_command}\n"
                      "   (records the decision; the daemon runs the call when it resumes, "
                      "or add --cluster sim:demo to run it now on a fresh simulator)", highlight=False, markup=False)
    console.print(f"audit: {s.audit_records} records, chain {'verified' if s.audit_verified else 'BROKEN'}; "
                  f"LLM calls: {s.llm_calls} ({s.llm_tokens} tokens), planner {s.planner}", highlight=False)
    console.print(f"inspect: opsagent audit list --db {s.db}    ({s.cycles} cycles in {s.wall_seconds:g}s)", highlight=False)
