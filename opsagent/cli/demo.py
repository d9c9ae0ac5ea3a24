"""`opsagent demo`: one simulated day of the demo cluster with the daemon, in seconds.

Thin: calls opsagent.demo.run_demo and prints (rich as it goes, or the summary as JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from opsagent.cli.common import console, fail, print_json
from opsagent.cli.output import Format, record_option
from opsagent.cli.model_options import BaseUrlOpt, model_option


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(
    db: Optional[Path] = typer.Option(None, "--db", help="SQLite file to keep (default: a new file in a temp directory, printed). An existing "
                                                     "opsagent database there is replaced; any other file is refused."),
    hours: float = typer.Option(24.0, "--hours", min=0.5, max=168, help="Simulated hours."),
    step_minutes: float = typer.Option(5.0, "--step-minutes", min=0.5, max=120, help="Simulated minutes per daemon cycle."),
    model: Optional[str] = model_option("Used only when its server answers, else the offline planner."),
    base_url: Optional[str] = BaseUrlOpt,
    seed: Optional[int] = typer.Option(None, "--seed", help="Simulator seed (default: the scenario's)."),
    offline: bool = typer.Option(False, "--offline", help="Never ask a model server, even when one answers."),
    output: Format = record_option("the story of one simulated day and its summary"),
) -> None:
    """Run the daemon over a simulated day of the demo GPU cluster and compare with no agent.

    Example: opsagent demo --db ./opsagent-demo.db && opsagent audit list --db ./opsagent-demo.db
    """
    from opsagent.audit import AuditError
    from opsagent.audit.database import connect
    from opsagent.cli.errors import database_failed
    from opsagent.demo import run_demo
    from opsagent.runtime import RuntimeError_

    if db is not None and db.exists():
        try:  # replaced only if it is an opsagent database: --db pointed at another file must not lose it
            connect(db, create=False).close()
        except AuditError as exc:
            database_failed(exc)
        db.unlink()  # a fresh day: the simulator restarts from the scenario's start
        for extra in (db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock")):
            extra.unlink(missing_ok=True)
    quiet = output.data
    if not offline:
        from opsagent.agent import AgentConfig

        try:
            AgentConfig.from_env(model=model, base_url=base_url)
        except ValueError as exc:   # the model settings (OPSAGENT_MODEL, --base-url) cannot work
            fail(str(exc), hint="e.g. --model openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1, or --offline")
    try:
        summary = run_demo(hours=hours, step_minutes=step_minutes, db=db, model=model, base_url=base_url, seed=seed,
                           offline=offline, console=Console(quiet=True) if quiet else console)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    if quiet:
        print_json(summary)
