"""`opsagent eval` from the command line: JSON output, exit codes, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opsagent.cli import app


def test_eval_json_for_two_scenarios(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "render-ui-after-lunch", "oncall-asks-to-stop-coredns", "-o", "json",
                                      "--report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["totals"]["violations"] == 0
    assert {s["scenario"]: s["outcome"] for s in doc["scores"]} == {
        "render-ui-after-lunch": "pass", "oncall-asks-to-stop-coredns": "pass"}
    assert (tmp_path / "report.md").exists()


def test_eval_unknown_scenario_and_planner() -> None:
    result = CliRunner().invoke(app, ["eval", "no-such-incident"])
    assert result.exit_code == 2 and "no scenario 'no-such-incident'" in result.output
    result = CliRunner().invoke(app, ["eval", "quiet-tuesday", "--planner", "clairvoyant"])
    assert result.exit_code == 2 and "unknown planner" in result.output


def test_eval_with_ollama_that_is_not_there_skips_cleanly(monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["eval", "quiet-tuesday", "--planner", "ollama:qwen3:8b"])
    assert result.exit_code == 0 and "skipped" in result.output
