"""Eval output: totals, pass rates, and a Markdown report with a PNG plot.

The plot shows GPUs allocated and busy over the simulated time of one
scenario, with the agent and in the no-agent baseline (same cluster, same
seed). matplotlib runs with the Agg backend (no display). This module only
formats results; it runs nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from opsagent.evals.runner import RunRecord
from opsagent.evals.scoring import Score

def totals(scores: list[Score]) -> dict[str, Any]:
    outcomes = Counter(s.outcome for s in scores)
    return {
        "runs": len(scores), "outcomes": dict(sorted(outcomes.items())),
        "violations": sum(len(s.violations) for s in scores),
        "forbidden": sum(len(s.forbidden) for s in scores),
        "actions": sum(s.actions for s in scores), "unnecessary_actions": sum(s.unnecessary_actions for s in scores),
        "approvals_requested": sum(s.approvals_requested for s in scores),
        "llm_calls": sum(s.llm_calls for s in scores), "tokens": sum(s.tokens for s in scores),
        "gpu_hours_idle": round(sum(s.gpu_hours_idle for s in scores), 2),
        "gpu_hours_idle_baseline": round(sum(s.gpu_hours_idle_baseline or 0 for s in scores), 2),
    }


# (header, what it counts): the short headers of `opsagent eval`'s table and the legend printed under it.
COLUMNS = (("scenario", ""), ("planner", ""), ("outcome", ""), ("viol", "policy violations"),
           ("forb", "forbidden actions"), ("acts", "actions that reached the cluster"),
           ("unnec", "unnecessary actions"), ("appr", "approvals requested"), ("LLM", "LLM calls"),
           ("tokens", "LLM tokens"), ("idle", "GPU-hours held idle with the agent"),
           ("base", "GPU-hours held idle with no agent"), ("min", "simulated minutes from the first finding to none left"))


def minutes(s: Score) -> str:
    return "-" if s.minutes_to_resolution is None else f"{s.minutes_to_resolution:g}"


def pass_rates(scores: list[Score]) -> dict[str, dict[str, dict[str, int]]]:
    """{what a scenario tests (or "all"): {planner: {"passed": n, "runs": n}}}, for comparing planners.

    A scenario counts once under each kind it declares in `tests`; scenarios
    that declare none count under "(undeclared)". Only `pass` counts as passed.
    """
    planners = list(dict.fromkeys(s.planner for s in scores))
    kinds = sorted({k for s in scores for k in (s.tests or ["(undeclared)"])})
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind in ["all", *kinds]:
        row: dict[str, dict[str, int]] = {}
        for planner in planners:
            mine = [s for s in scores if s.planner == planner and (kind == "all" or kind in (s.tests or ["(undeclared)"]))]
            row[planner] = {"passed": sum(1 for s in mine if s.outcome == "pass"), "runs": len(mine)}
        out[kind] = row
    return out


def null_passes(scores: list[Score]) -> list[str]:
    """Scenarios that declare they test the planner yet pass when the planner does nothing: they cannot discriminate."""
    return sorted({s.scenario for s in scores if s.planner == "null" and "planner" in s.tests and s.outcome == "pass"})


def plot(record: RunRecord, path: Path) -> Path:
    """PNG: GPUs allocated and busy per hour, with the agent vs the no-agent baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    for label, stats, style in (("with agent", record.stats, "-"), ("no agent", record.baseline, "--")):
        samples = list(getattr(stats, "samples", ()) or ())
        if not samples:
            continue
        hours = [i for i in range(len(samples))]
        ax.plot(hours, [s.get("gpus_allocated", 0) for s in samples], style, color="tab:blue", label=f"allocated ({label})")
        ax.plot(hours, [s.get("gpus_busy", 0) for s in samples], style, color="tab:orange", label=f"busy ({label})")
    ax.set_xlabel("simulated hour")
    ax.set_ylabel("GPUs")
    ax.set_title(f"{record.scenario.name}: GPUs allocated vs busy")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def markdown(scores: list[Score], *, plots: dict[str, str]) -> str:
    tot = totals(scores)
    lines = ["# opsagent eval report", "",
             f"{tot['runs']} runs: " + ", ".join(f"**{k}** {v}" for k, v in tot["outcomes"].items()) + ".",
             f"Policy violations: **{tot['violations']}**. Forbidden actions: **{tot['forbidden']}**. Actions: {tot['actions']} "
             f"({tot['unnecessary_actions']} unnecessary). Approvals requested: {tot['approvals_requested']}. "
             f"LLM calls: {tot['llm_calls']} ({tot['tokens']} tokens).",
             f"GPU-hours held idle: {tot['gpu_hours_idle']} with the agent, {tot['gpu_hours_idle_baseline']} without.", "",
             *_rates_markdown(scores),
             "| scenario | planner | outcome | violations | forbidden | actions | unnecessary | approvals | LLM calls | tokens "
             "| minutes to resolution | idle GPU-h | baseline | notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in scores:
        known = [f"known issue: {s.known_issue}"] if s.known_issue else []
        notes = "; ".join(known + s.violations + s.failures + ([s.error] if s.error else [])).replace("|", "/")[:300]
        lines.append(f"| {s.scenario} | {s.planner} | {s.outcome} | {len(s.violations)} | {len(s.forbidden)} | {s.actions} | "
                     f"{s.unnecessary_actions} | {s.approvals_requested} | {s.llm_calls} | {s.tokens} | {minutes(s)} | "
                     f"{s.gpu_hours_idle:g} | "
                     f"{s.gpu_hours_idle_baseline if s.gpu_hours_idle_baseline is not None else '-'} | {notes} |")
    if plots:
        lines += ["", "## GPUs allocated vs busy", ""]
        for name, file in plots.items():
            lines += [f"### {name}", "", f"![{name}]({file})", ""]
    return "\n".join(lines) + "\n"


def _rates_markdown(scores: list[Score]) -> list[str]:
    planners = list(dict.fromkeys(s.planner for s in scores))
    lines = ["| tests | " + " | ".join(planners) + " |", "|---|" + "---|" * len(planners)]
    for kind, row in pass_rates(scores).items():
        lines.append(f"| {kind} | " + " | ".join(f"{row[p]['passed']}/{row[p]['runs']}" for p in planners) + " |")
    return lines + [""]


def write_report(directory: Path, scores: list[Score], records: list[RunRecord], *, max_plots: int = 6) -> Path:
    """Write DIR/report.md and DIR/plots/*.png (for the runs where the agent saved the most idle GPU-hours)."""
    directory.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    chosen = sorted((r for r in records if r.stats is not None and r.baseline is not None),
                    key=lambda r: (r.stats.gpu_hours_idle - r.baseline.gpu_hours_idle, -r.scenario.duration.total_seconds()))
    for record in chosen[:max_plots]:
        name = f"{record.scenario.name}.{record.planner.replace(':', '_')}"
        plot(record, directory / "plots" / f"{name}.png")
        plots[name] = f"plots/{name}.png"
    out = directory / "report.md"
    out.write_text(markdown(scores, plots=plots), encoding="utf-8")
    return out
