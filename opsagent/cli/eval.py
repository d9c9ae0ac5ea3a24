"""`opsagent eval`: run eval scenarios against a planner and score them.

Thin: resolves scenario names to files, runs the suite, prints a table or
JSON, writes the Markdown/PNG report when asked. Exit code 1 when any run
shows a policy violation, or (offline planner) an unexpected failure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from opsagent.cli.common import Output, OutputOpt, console, fail, print_json


def _resolve(names: list[str]) -> list[Path]:
    from opsagent.evals import DEFAULT_DIR

    if not names:
        return [DEFAULT_DIR]
    out = []
    for name in names:
        path = Path(name)
        if path.exists():
            out.append(path)
        elif (DEFAULT_DIR / f"{name}.yaml").exists():
            out.append(DEFAULT_DIR / f"{name}.yaml")
        else:
            fail(f"no scenario {name!r}", hint=f"give a file or folder, or a name from {DEFAULT_DIR}")
    return out


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        scenarios: Optional[List[str]] = typer.Argument(None, help="Scenario files, folders or names (default: every scenario in evals/scenarios)."),
        planner: str = typer.Option("offline", "--planner", "-p", envvar="OPSAGENT_EVAL_PLANNER",
                                    help="offline, scripted, hostile, hostile-ollama, garbled, always-act or ollama:MODEL."),
        repeats: int = typer.Option(1, "-k", "--repeats", min=1, max=100, help="Run each scenario N times."),
        report: Optional[Path] = typer.Option(None, "--report", help="Write report.md and plots/*.png into this folder."),
        output: Output = OutputOpt,
    ) -> None:
        """Score the agent on simulated incidents: outcome, policy violations, actions, approvals,
        LLM calls and GPU-hours held idle (against a no-agent baseline on the same seed).

        Example: opsagent eval --planner hostile --report eval-out
        """
        from opsagent.evals import EvalScenarioError, PlannerUnavailable, run_suite, write_report
        from opsagent.evals.report import table, totals

        paths = _resolve(list(scenarios or []))
        try:
            scores, records = run_suite(paths, planner=planner, repeats=repeats,
                                        workdir=Path(tempfile.mkdtemp(prefix="opsagent-eval-")))
        except EvalScenarioError as exc:
            fail(str(exc), hint="see evals/README.md for the scenario format")
        except PlannerUnavailable as exc:
            console.print(f"[yellow]skipped:[/] {exc}; start Ollama or pick --planner offline")
            raise typer.Exit(0)
        except ValueError as exc:
            fail(str(exc), hint="--planner offline|scripted|hostile|hostile-ollama|garbled|always-act|ollama:MODEL")
        written = write_report(report, scores, records) if report is not None else None
        if output == Output.json:
            print_json({"planner": planner, "totals": totals(scores), "scores": scores,
                        "report": str(written) if written else None})
        else:
            shown = table(scores)
            # Never narrower than the table needs: a narrow or piped terminal must not cut scenario names
            # (a terminal wraps the long lines instead).
            wide = Console(width=max(console.width, shown.min_width or 0), force_terminal=console.is_terminal,
                           no_color=console.no_color, highlight=False)
            wide.print(shown)
            if written:
                console.print(f"report: {written}")
        bad = any(s.violations for s in scores) or any(
            s.outcome in ("fail", "error", "timeout") and planner == "offline" and not s.needs_language
            and not s.known_issue for s in scores)
        raise typer.Exit(1 if bad else 0)
