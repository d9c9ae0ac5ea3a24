"""`opsagent agent`: run the agent loop on the simulator, and list runs waiting for a person.

Thin: parses options, calls `opsagent.agent.simulate.run_on_simulator` or
`Agent.waiting`, prints. It never talks to a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from opsagent.cli.common import MAX_SIM_HOURS, DbOpt, PlaybooksOpt, PoliciesOpt, fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, Section, emit, emit_sections
from opsagent.cli.model_options import BaseUrlOpt, model_option

agent_app = typer.Typer(help="The agent loop: plan, act through the gate, verify.\n\nExample: opsagent agent run --hours 8",
                        no_args_is_help=True)


@agent_app.command("run")
def run_cmd(
    scenario: str = typer.Option("demo", "--scenario", envvar="OPSAGENT_SCENARIO", help="Builtin scenario name or a scenario YAML file."),
    hours: float = typer.Option(24.0, "--hours", min=0.1, max=MAX_SIM_HOURS, help="Simulated hours to run."),
    step: str = typer.Option("5m", "--step", help="Reconcile interval in simulated time, e.g. 5m."),
    planner: str = typer.Option("offline", "--planner", envvar="OPSAGENT_PLANNER", help="offline (playbook steps) or llm (the --model)."),
    model: Optional[str] = model_option("For --planner llm."),
    base_url: Optional[str] = BaseUrlOpt,
    ollama_host: Optional[str] = typer.Option(None, "--ollama-host", envvar="OLLAMA_HOST", help="Ollama URL for --planner llm."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", envvar="OPSAGENT_AGENT_MAX_STEPS", min=1, max=100, help="Plan rounds per run (default 8)."),
    approve_as: Optional[str] = typer.Option(None, "--approve-as", help="Approve, as this person, every request they may approve (demo)."),
    policies: Path = PoliciesOpt,
    playbooks: Path = PlaybooksOpt,
    db: Path = DbOpt,
    output: Format = FormatOpt,
    no_headers: bool = NoHeadersOpt,
) -> None:
    """Run the agent against a simulated cluster and show each run.

    Every call passes the gate under the policy in --policies and is written to
    the audit log, approvals and agent checkpoints in --db (one SQLite file).

    One row per run; `-o wide` adds the planner, the calls the gate denied, the approvals it waits for,
    tokens and the whole summary; `-o name` prints `run/ID` lines.

    Example: opsagent agent run --hours 12 --approve-as carol --db /tmp/demo.db
    """
    from opsagent.agent.config import AgentConfig
    from opsagent.agent.simulate import run_on_simulator
    from opsagent.cli.sim import _load
    from opsagent.clock import parse_duration
    from opsagent.cluster.sim import ScenarioError
    from opsagent.playbooks import PlaybookError
    from opsagent.policy import PolicyError
    from opsagent.runtime import RuntimeError_

    if planner not in ("offline", "llm"):
        fail(f"--planner must be offline or llm, not {planner!r}", hint="opsagent agent run --planner llm --model qwen3:8b")
    try:
        seconds = parse_duration(step).total_seconds()
        if seconds <= 0:
            raise ValueError(f"--step {step!r}: the reconcile interval must be longer than zero")
        config = AgentConfig.from_env(model=model, ollama_host=ollama_host, base_url=base_url, max_steps=max_steps)
    except ValueError as exc:
        fail(str(exc), hint="durations look like 90s, 5m, 1h")
    from opsagent.cli.resolve import writable_db

    db = writable_db(db, "sim:" + scenario)
    try:
        result = run_on_simulator(scenario=_load(scenario), policies=policies, playbooks=playbooks, db=db, hours=hours,
                                  step_seconds=seconds, planner=planner, config=config, approve_as=approve_as)
    except (ScenarioError, PolicyError, PlaybookError) as exc:
        fail(str(exc), hint="check the file named above; `opsagent policy lint` and `opsagent playbook lint` help")
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    emit_sections([Section(list(result.reports), RUN_COLUMNS, "run", lambda r: r.run_id)], output, headers=not no_headers,
                  record={"runs": result.reports, "stats": result.stats,
                          "waiting": [{"run_id": t, "approval_id": a} for t, a in result.waiting]},
                  notes=[f"waiting: {t} needs approval {a} (opsagent approvals list)" for t, a in result.waiting])


def _calls(actions: list) -> str | None:
    return ",".join(f"{a.tool}:{a.status}" for a in actions) or None


RUN_COLUMNS = [
    Column("run", lambda r: r.run_id), Column("status", lambda r: r.status), Column("actions", lambda r: _calls(r.actions)),
    Column("llm calls", lambda r: r.llm_calls), Column("fell back", lambda r: r.fell_back),
    Column("summary", lambda r: r.summary if len(r.summary) <= 100 else r.summary[:99] + "…", narrow=True),
    Column("planner", lambda r: r.planner, wide=True), Column("denied", lambda r: _calls(r.denied), wide=True),
    Column("approvals", lambda r: r.pending_approvals, wide=True),
    Column("tokens", lambda r: r.prompt_tokens + r.completion_tokens, wide=True),
    Column("summary", lambda r: r.summary, wide=True),
]


@agent_app.command("waiting")
def waiting_cmd(db: Path = DbOpt, output: Format = FormatOpt, no_headers: bool = NoHeadersOpt) -> None:
    """List agent runs paused until a person decides an approval (`-o name` prints `run/ID` lines; wide is
    the same as table: every column is already shown).

    Example: opsagent agent waiting --db opsagent.db -o json
    """
    from opsagent.agent.simulate import checkpoint_path_for

    path = checkpoint_path_for(db)
    if not path.exists():
        fail(f"no agent checkpoints at {path}", hint="run `opsagent agent run --db DB` first, with the same --db")
    from langgraph.checkpoint.sqlite import SqliteSaver

    from opsagent.agent.graph import Deps, build_graph
    from opsagent.approvals.queue import approval_threads
    from opsagent.audit import AuditError
    from opsagent.audit.database import connect

    try:
        conn = connect(path, create=False, autocommit=False)
    except AuditError as exc:
        fail(str(exc), hint="point --db (or OPSAGENT_DB) at the file `opsagent agent run` or the daemon writes")
    try:
        SqliteSaver(conn).setup()  # an opsagent database that never held a run has no checkpoint tables yet
        graph = build_graph(Deps(gate=None, observe=lambda: None, detect_fn=lambda s: [], playbooks=None, policy=None,  # type: ignore[arg-type]
                                 recorder=None, clock=None, config=None, planners={})).compile(checkpointer=SqliteSaver(conn))  # type: ignore[arg-type]
        rows = []
        for thread_id in approval_threads(conn):  # only runs that asked a person can be paused for one
            snap = graph.get_state({"configurable": {"thread_id": thread_id}})
            if snap.interrupts:
                payload = snap.interrupts[0].value
                rows.append({"run_id": thread_id, "approval_id": payload.get("approval_id"), "tool": payload.get("tool"),
                             "args": payload.get("args")})
    finally:
        conn.close()
    emit(rows, WAITING_COLUMNS, output, kind="run", name_of=lambda r: r["run_id"], headers=not no_headers)


WAITING_COLUMNS = [
    Column("run", lambda r: r["run_id"]), Column("approval", lambda r: r["approval_id"]), Column("tool", lambda r: r["tool"]),
    Column("args", lambda r: ",".join(f"{k}={v}" for k, v in sorted((r["args"] or {}).items()))),
]


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
