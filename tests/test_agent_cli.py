"""`opsagent agent run` and `opsagent agent waiting`, through the real CLI entry point.

Spec: `run` drives the agent over a simulated day with the shipped policy and
playbooks, writes the audit log and checkpoints, prints runs as JSON with
`-o json`; `waiting` lists runs paused for approval from those checkpoints;
bad arguments exit non-zero with a hint; each command's help ends with an example.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from opsagent.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["agent", *args])


def test_run_then_waiting_as_json(tmp_path):
    db = tmp_path / "ops.db"
    common = ["--policies", str(ROOT / "policies"), "--playbooks", str(ROOT / "playbooks"), "--db", str(db)]
    result = _run("run", "--hours", "14", *common, "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    resolved = {r["run_id"] for r in data["runs"] if r["resolved"]}
    assert any(r.startswith("finding:idle_gpu:") for r in resolved)
    with sqlite3.connect(db) as conn:  # checkpoints sit beside the audit tables in the one file
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] > 0
    waiting = _run("waiting", "--db", str(db), "-o", "json")
    assert waiting.exit_code == 0, waiting.output
    rows = json.loads(waiting.output)
    assert sorted(r["run_id"] for r in rows) == sorted(w["run_id"] for w in data["waiting"])
    assert all(isinstance(r["approval_id"], int) for r in rows)


def test_bad_arguments_fail_with_a_hint(tmp_path):
    result = _run("run", "--planner", "gpt", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "offline or llm" in result.output
    result = _run("run", "--step", "soon", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "duration" in result.output
    result = _run("waiting", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "no agent checkpoints" in result.output


def test_help_ends_with_an_example():
    for command in ("run", "waiting"):
        result = _run(command, "--help")
        assert result.exit_code == 0 and "Example: opsagent agent " + command in result.output
