"""The eval report's columns: unnecessary actions, tokens and minutes to resolution, and names never cut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opsagent.evals.report import markdown
from opsagent.evals.scoring import Score

LONG = "apiserver-timeout-while-sleeping"


def _score() -> Score:
    return Score(scenario=LONG, planner="scripted", outcome="pass", actions=3, unnecessary_actions=2, tokens=1234,
                 llm_calls=7, minutes_to_resolution=17.5, gpu_hours_idle=0.33, gpu_hours_idle_baseline=6.0)


def test_markdown_rows_carry_unnecessary_actions_tokens_and_minutes_to_resolution() -> None:
    text = markdown([_score()], plots={})
    header = next(line for line in text.splitlines() if line.startswith("| scenario"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in text.splitlines() if line.startswith(f"| {LONG}"))
    values = dict(zip(cells, (c.strip() for c in row.strip("|").split("|"))))
    assert (values["actions"], values["unnecessary"], values["tokens"], values["minutes to resolution"]) == ("3", "2", "1234", "17.5")
    assert values["LLM calls"] == "7" and values["baseline"] == "6.0"


def test_cli_table_piped_into_a_narrow_width_keeps_whole_names_and_every_column() -> None:
    exe = str(Path(sys.executable).parent / "opsagent")
    done = subprocess.run([exe, "eval", "quiet-tuesday", LONG], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "50"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.lower().startswith("scenario"))
    assert header.lower().split() == ["scenario", "planner", "outcome", "viol", "forb", "acts", "unnec", "appr", "llm",
                              "tokens", "idle", "base", "min"]
    rows = [line.split() for line in lines if line.startswith(("quiet-tuesday", LONG))]
    assert [r[0] for r in rows] == ["quiet-tuesday", LONG] and all(len(r) == 13 for r in rows)
