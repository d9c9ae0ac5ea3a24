"""`opsagent eval`: run eval scenarios against a planner and score them.

Thin: resolves scenario names to files, runs the suite, prints a table or
JSON, writes the Markdown/PNG report when asked. Exit code 1 when any run
shows a policy violation or a forbidden write, (offline planner) an unexpected
failure, or a planner scenario that passes when the planner does nothing.
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
        planners: List[str] = typer.Option(["offline"], "--planner", "-p", envvar="OPSAGENT_EVAL_PLANNER",
                                           help="offline, scripted, hostile, hostile-ollama, garbled, always-act, null, ollama:MODEL or "
                                                "openai:MODEL "
                                                "(server at OPSAGENT_BASE_URL). "
                                                "Repeat it to compare planners side by side."),
        repeats: int = typer.Option(1, "-k", "--repeats", min=1, max=100, help="Run each scenario N times."),
        report: Optional[Path] = typer.Option(None, "--report", help="Write report.md and plots/*.png into this folder."),
        output: Output = OutputOpt,
    ) -> None:
        """Score the agent on simulated incidents: outcome, policy violations, forbidden writes, actions,
        approvals, LLM calls and GPU-hours held idle (against a no-agent baseline on the same seed).

        With several --planner options every scenario runs under each, and a second table shows the pass
        rate per kind of scenario (what it declares under `tests:`) and per planner. `null` proposes nothing:
        it is the baseline a planner must beat.

        Exit codes: 1 when any run shows a policy violation or a forbidden write; when a scenario that
        needs no language and has no known_issue fails under the offline planner; or when a scenario that
        declares `tests: [planner]` passes under the null planner. 2 for bad arguments or scenario files.

        Example: opsagent eval --planner offline --planner null --planner hostile --report eval-out
        """
        from opsagent.cli.output import progress
        from opsagent.evals import EvalScenarioError, PlannerUnavailable, run_suite, write_report
        from opsagent.evals.report import null_passes, pass_rates, rates_table, table, totals

        paths = _resolve(list(scenarios or []))
        scores: list = []
        records: list = []
        ran: list[str] = []
        for planner in dict.fromkeys(planners):
            try:
                with progress(f"eval {planner}") as update:
                    got, recs = run_suite(paths, planner=planner, repeats=repeats,
                                          workdir=Path(tempfile.mkdtemp(prefix="opsagent-eval-")), progress=update)
            except EvalScenarioError as exc:
                fail(str(exc), hint="see evals/README.md for the scenario format")
            except PlannerUnavailable as exc:
                console.print(f"[yellow]skipped {planner}:[/] {exc}; start the model server or pick --planner offline")
                continue
            except ValueError as exc:
                fail(str(exc), hint="--planner offline|scripted|hostile|hostile-ollama|garbled|always-act|null|ollama:MODEL|openai:MODEL")
            scores += got
            records += recs
            ran.append(planner)
        written = write_report(report, scores, records) if report is not None and scores else None
        undiscriminating = null_passes(scores)
        if output.data:
            doc = {"planner": ran[0] if len(ran) == 1 else ran, "planners": ran, "totals": totals(scores),
                   "pass_rates": pass_rates(scores), "null_passes": undiscriminating, "scores": scores,
                   "report": str(written) if written else None}
            print_json(doc)
        else:
            shown = table(scores)
            # Never narrower than the table needs: a narrow or piped terminal must not cut scenario names
            # (a terminal wraps the long lines instead).
            wide = Console(width=max(console.width, shown.min_width or 0), force_terminal=console.is_terminal,
                           no_color=console.no_color, highlight=False)
            out = wide if console.is_terminal else console   # piped: plain columns (see opsagent.cli.common)
            out.print(shown)
            if len(ran) > 1 or any(s.tests for s in scores):
                out.print(rates_table(scores))
            for name in undiscriminating:
                console.print(f"[red]{name}[/] declares it tests the planner but passes when the planner does nothing")
            if written:
                console.print(f"report: {written}")
        bad = any(s.violations or s.forbidden for s in scores) or bool(undiscriminating) or any(
            s.outcome in ("fail", "error", "timeout") and s.planner == "offline" and not s.needs_language
            and not s.known_issue for s in scores)
        raise typer.Exit(1 if bad else 0)
