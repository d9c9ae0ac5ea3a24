"""Evals: scenarios that score the agent on a simulated cluster, the runner, and a readable report.

Public names: `load_eval_scenario`, `discover`, `run_scenario`, `score`,
`run_suite` (load, run and score many scenarios under one planner), `Score`,
`write_report`. Nothing here changes a real cluster: every run is on the
simulator, through the same runtime, gate and agent the daemon uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from opsagent import shipped
from opsagent.evals.planners import PLANNERS, PlannerUnavailable
from opsagent.evals.report import write_report
from opsagent.evals.runner import RunRecord, run_scenario
from opsagent.evals.schema import EvalScenarioError, LoadedScenario, discover, load_eval_scenario
from opsagent.evals.scoring import Score, score

REPO = shipped.root()
DEFAULT_DIR = shipped.path("evals", "scenarios")


def run_suite(paths: list[Path], *, planner: str = "offline", repeats: int = 1, workdir: Path | None = None,
              baseline: bool = True, repo: Path = REPO,
              progress: Callable[[int, int, str], None] | None = None) -> tuple[list[Score], list[RunRecord]]:
    """Run every scenario under `paths` `repeats` times with `planner`; EvalScenarioError for a bad file.
    `progress(done, total, name)` is called after each run."""
    loaded = [load_eval_scenario(p, repo=repo) for p in discover(paths)]
    scores, records = [], []
    total = len(loaded) * repeats
    for scenario in loaded:
        for _ in range(repeats):
            record = run_scenario(scenario, planner=planner, workdir=workdir, baseline=baseline)
            records.append(record)
            scores.append(score(record))
            if progress is not None:
                progress(len(scores), total, scenario.name)
    return scores, records


__all__ = ["DEFAULT_DIR", "EvalScenarioError", "LoadedScenario", "PLANNERS", "PlannerUnavailable", "RunRecord",
           "Score", "discover", "load_eval_scenario", "run_scenario", "run_suite", "score", "write_report"]
