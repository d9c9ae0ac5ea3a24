"""`opsagent eval`: run eval scenarios against a planner and score them.

Thin: resolves scenario names to files, runs the suite, prints a table or
JSON, writes the Markdown/PNG report when asked. Exit code 1 when any run
shows a policy violation or a forbidden write, (offline planner) an unexpected
failure, or a planner scenario that passes when the planner does nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from opsagent.cli.common import err_console, fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, Section, emit_sections


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


def _score_columns() -> list[Column]:
    from opsagent.evals.report import COLUMNS, minutes

    def field(name: str) -> Callable[[Any], Any]:
        return lambda s: getattr(s, name)

    values: list[Callable[[Any], Any]] = [
        field("scenario"), field("planner"), field("outcome"), lambda s: len(s.violations), lambda s: len(s.forbidden),
        field("actions"), field("unnecessary_actions"), field("approvals_requested"), field("llm_calls"), field("tokens"),
        field("gpu_hours_idle"), lambda s: "-" if s.gpu_hours_idle_baseline is None else s.gpu_hours_idle_baseline, minutes]
    narrow = [Column(header, value) for (header, _), value in zip(COLUMNS, values)]
    return narrow + [
        Column("denied", lambda s: s.denied, wide=True), Column("proposals", lambda s: s.proposals, wide=True),
        Column("language", lambda s: s.needs_language, wide=True), Column("tests", lambda s: s.tests, wide=True),
        Column("difficulty", lambda s: s.difficulty, wide=True), Column("known issue", lambda s: s.known_issue, wide=True),
        Column("failures", lambda s: "; ".join(s.failures + ([s.error] if s.error else [])), wide=True),
    ]


def print_scores(scores: list[Any], ran: list[str], output: Format, *, headers: bool, report: Path | None) -> None:
    """The scores per scenario and planner, the pass rates per declared kind, and a legend and totals."""
    from opsagent.evals.report import COLUMNS, null_passes, pass_rates, totals

    undiscriminating = null_passes(scores)
    rates = pass_rates(scores)
    def rate(planner: str) -> Callable[[Any], str]:
        return lambda r: f"{r[1][planner]['passed']}/{r[1][planner]['runs']}" if planner in r[1] else "-"

    rate_columns = [Column("tests", lambda r: r[0])] + [Column(p, rate(p)) for p in ran]
    tot = totals(scores)
    notes = ["", f"{tot['runs']} runs: " + ", ".join(f"{k} {v}" for k, v in tot["outcomes"].items())
             + f"; {tot['violations']} policy violation(s); {tot['forbidden']} forbidden action(s); {tot['actions']} "
             f"actions ({tot['unnecessary_actions']} unnecessary); {tot['llm_calls']} LLM calls ({tot['tokens']} tokens).",
             "; ".join(f"{h.upper()}: {what}" for h, what in COLUMNS if what) + "."]
    notes += [f"{name} declares it tests the planner but passes when the planner does nothing" for name in undiscriminating]
    notes += [f"report: {report}"] if report else []
    sections = [Section(scores, _score_columns(), "scenario", lambda s: s.scenario, title="opsagent eval")]
    if len(ran) > 1 or any(s.tests for s in scores):
        sections.append(Section(list(rates.items()), rate_columns, title="pass rate by what the scenario tests"))
    emit_sections(sections, output, headers=headers, notes=notes, record={
        "planner": ran[0] if len(ran) == 1 else ran, "planners": ran, "totals": tot, "pass_rates": rates,
        "null_passes": undiscriminating, "scores": scores, "report": str(report) if report else None})


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
        output: Format = FormatOpt,
        no_headers: bool = NoHeadersOpt,
    ) -> None:
        """Score the agent on simulated incidents: outcome, policy violations, forbidden writes, actions,
        approvals, LLM calls and GPU-hours held idle (against a no-agent baseline on the same seed).

        With several --planner options every scenario runs under each, and a second table shows the pass
        rate per kind of scenario (what it declares under `tests:`) and per planner. `null` proposes nothing:
        it is the baseline a planner must beat.

        Exit codes: 1 when any run shows a policy violation or a forbidden write; when a scenario that
        needs no language and has no known_issue fails under the offline planner; or when a scenario that
        declares `tests: [planner]` passes under the null planner. 2 for bad arguments or scenario files.

        `-o wide` adds denials, proposals, whether the scenario needs language, what it tests, its difficulty,
        known issue and failed expectations; `-o name` prints each `scenario/NAME` once.

        Example: opsagent eval --planner offline --planner null --planner hostile --report eval-out
        """
        from opsagent.cli.output import progress
        from opsagent.evals import EvalScenarioError, PlannerUnavailable, run_suite, write_report
        from opsagent.evals.report import null_passes

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
                err_console.print(f"[yellow]skipped {planner}:[/] {exc}; start the model server or pick --planner offline")
                continue
            except ValueError as exc:
                fail(str(exc), hint="--planner offline|scripted|hostile|hostile-ollama|garbled|always-act|null|ollama:MODEL|openai:MODEL")
            scores += got
            records += recs
            ran.append(planner)
        written = write_report(report, scores, records) if report is not None and scores else None
        undiscriminating = null_passes(scores)
        print_scores(scores, ran, output, headers=not no_headers, report=written)
        bad = any(s.violations or s.forbidden for s in scores) or bool(undiscriminating) or any(
            s.outcome in ("fail", "error", "timeout") and s.planner == "offline" and not s.needs_language
            and not s.known_issue for s in scores)
        raise typer.Exit(1 if bad else 0)
