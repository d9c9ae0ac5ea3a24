"""`opsagent sim`: run a simulated GPU cluster scenario and show what happens.

Thin: loads the scenario (a file or a builtin name), advances the simulator
in steps, prints a row per step and a final state. It makes no decisions and
writes nothing to the cluster; it only watches the scenario play out.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

import typer
from opsagent.cli.common import MAX_SIM_HOURS, fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, Section, emit_sections
from opsagent.cluster.sim import ScenarioError, SimCluster, builtin_names, builtin_scenario, load_scenario

NOTABLE = {"FailedScheduling", "BackOff", "Failed", "ProgressDeadlineExceeded", "ScalingReplicaSet", "Started",
           "Completed", "Queued", "NodeNotReady", "NodeNotSchedulable", "DeploymentRollback", "ImageChanged"}


def _load(name: str):
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario(path)
    if name in builtin_names():
        return builtin_scenario(name)
    raise ScenarioError(f"no such scenario file or builtin (builtins: {', '.join(builtin_names())})", file=name)


def _row(sim: SimCluster, since) -> dict[str, Any]:
    snap = sim.snapshot()
    stats = sim.stats()
    idle = sum(len(p.gpu_ids) for w in snap.workloads if not w.request_rate for p in snap.pods_of(w.ref))
    notable = Counter()
    for e in sim.events_since(since):
        if e.time > since and e.reason in NOTABLE and not (e.reason == "Started" and e.kind == "Pod"):
            notable[f"{e.reason} {e.namespace + '/' if e.namespace else ''}{e.name}"] += 1
    return {
        "time": snap.time.isoformat(), "gpus_allocated": stats.gpus_allocated,
        "gpus_busy": round(sum(g.utilization for g in snap.gpus()) / 100.0, 2), "gpus_idle": idle,
        "pods_pending": stats.pods_pending, "jobs_queued": stats.jobs_waiting, "jobs_running": stats.jobs_running,
        "pending_requests": stats.pending_requests,
        "events": [f"{k} (x{n})" if n > 1 else k for k, n in notable.items()],
    }


def run(scenario_name: str, *, hours: float | None, step_minutes: float, seed: int | None) -> dict[str, Any]:
    """Load and run a scenario; return the report as JSON-able data."""
    scenario = _load(scenario_name)
    sim = SimCluster(scenario, seed=seed)
    total = timedelta(hours=hours) if hours is not None else scenario.duration
    step = timedelta(minutes=step_minutes)
    end = sim.now + total
    rows = []
    while sim.now < end:
        since = sim.now
        sim.advance(min(step, end - sim.now))
        rows.append(_row(sim, since))
    snap = sim.snapshot()
    stats = sim.stats()
    return {
        "scenario": scenario.name, "seed": sim.seed, "start": scenario.start.isoformat(), "end": sim.now.isoformat(),
        "rows": rows,
        "workloads": [{
            "workload": w.key, "replicas": w.replicas, "ready": w.ready_replicas, "gpus_held": snap.gpus_held_by(w.ref),
            "request_rate": w.request_rate, "gpu_utilization": w.gpu_utilization,
            "throughput_factor": w.throughput_factor, "rollout": w.rollout.status, "rollout_reason": w.rollout.reason,
            "revision": w.revision, "pending_requests": w.pending_requests,
        } for w in snap.workloads],
        "jobs": [{"job": j.key, "gpus": j.gpus, "state": j.state, "node": j.node} for j in snap.jobs],
        "stats": stats.model_dump(mode="json", exclude={"samples"}),
        "chat": [{"time": c["time"].isoformat(), "actor": c["actor"], "text": c["text"]} for c in sim.chat_log],
    }


def _events(r: dict[str, Any], shown: int | None) -> str:
    events = r["events"] if shown is None else r["events"][:shown]
    more = len(r["events"]) - len(events)
    return "; ".join(events) + (f"; +{more} more" if more else "")


STEP_COLUMNS = [
    Column("time", lambda r: r["time"][5:16]), Column("gpus held", lambda r: r["gpus_allocated"]),
    Column("busy", lambda r: f"{r['gpus_busy']:.2f}"), Column("idle", lambda r: r["gpus_idle"]),
    Column("pending pods", lambda r: r["pods_pending"]), Column("jobs q/run", lambda r: f"{r['jobs_queued']}/{r['jobs_running']}"),
    Column("waiting req", lambda r: r["pending_requests"]),
    Column("notable events", lambda r: _events(r, 4), narrow=True), Column("notable events", lambda r: _events(r, None), wide=True),
]
# The final state: workloads and jobs in one table, named KIND/NAME as `-o name` prints them (a job has no
# replicas, rate or rollout).
STATE_COLUMNS = [
    Column("name", lambda x: f"{x['kind']}/{x['name']}"), Column("ready", lambda x: f"{x['ready']}/{x['replicas']}" if "replicas" in x else None),
    Column("gpus", lambda x: x.get("gpus_held", x.get("gpus"))),
    Column("req/s", lambda x: f"{x['request_rate'] or 0:.1f}" if "request_rate" in x else None),
    Column("gpu %", lambda x: None if x.get("gpu_utilization") is None else f"{x['gpu_utilization']:.0f}"),
    Column("speed", lambda x: f"{x['throughput_factor']:.2f}" if "throughput_factor" in x else None),
    Column("state", lambda x: x.get("state") or x["rollout"]),
    Column("reason", lambda x: x.get("rollout_reason") if x.get("rollout") != "complete" else None, wide=True),
    Column("revision", lambda x: x.get("revision"), wide=True), Column("node", lambda x: x.get("node"), wide=True),
    Column("waiting req", lambda x: x.get("pending_requests"), wide=True),
]


def print_report(report: dict[str, Any], output: Format, *, headers: bool = True) -> None:
    state = ([{"kind": "workload", "name": w["workload"], **w} for w in report["workloads"]]
             + [{"kind": "job", "name": j["job"], **j} for j in report["jobs"]])
    s = report["stats"]
    emit_sections([Section(report["rows"], STEP_COLUMNS, title=f"{report['scenario']} (seed {report['seed']})"),
                   Section(state, STATE_COLUMNS, kind="", name_of=lambda x: f"{x['kind']}/{x['name']}",
                           title=f"state at {report['end'][:16].replace('T', ' ')}")],
                  output, record=report, headers=headers,
                  notes=["", f"GPU-hours held {s['gpu_hours_allocated']:.1f}, busy {s['gpu_hours_busy']:.1f}, "
                             f"held idle {s['gpu_hours_idle']:.1f}; jobs started {s['jobs_started']}, "
                             f"finished {s['jobs_finished']}, waiting {s['jobs_waiting']}"])


def register(app: typer.Typer) -> None:
    @app.command("sim")
    def sim_command(
        scenario: str = typer.Argument("demo", help="Scenario file (YAML) or builtin name.", envvar="OPSAGENT_SCENARIO"),
        hours: Optional[float] = typer.Option(None, "--hours", min=0, max=MAX_SIM_HOURS, help="Simulated hours to run (default: the scenario's duration).", envvar="OPSAGENT_SIM_HOURS"),
        step_minutes: float = typer.Option(60.0, "--step-minutes", min=1, max=7 * 24 * 60, help="Minutes per output row.", envvar="OPSAGENT_SIM_STEP_MINUTES"),
        seed: Optional[int] = typer.Option(None, "--seed", help="Override the scenario's random seed.", envvar="OPSAGENT_SIM_SEED"),
        output: Format = FormatOpt,
        no_headers: bool = NoHeadersOpt,
    ) -> None:
        """Run a simulated GPU cluster scenario and show, step by step, GPUs held, busy and idle,
        pending pods, queued jobs and notable events, then the final state and GPU-hours held idle.

        `-o wide` adds every event of a step (not only the first four) and each workload's rollout reason,
        revision and waiting requests, and each job's node; `-o name` prints the final state's
        `workload/NS/NAME` and `job/NS/NAME` lines; json and yaml hold the whole report.

        Example: opsagent sim demo --hours 6 --step-minutes 30
        """
        try:
            report = run(scenario, hours=hours, step_minutes=step_minutes, seed=seed)
        except ScenarioError as exc:
            fail(str(exc), hint="check the scenario against docs/simulator.md, or run `opsagent sim demo`")
        print_report(report, output, headers=not no_headers)
