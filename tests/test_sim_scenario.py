"""Scenario files: bad input is named by file, line and field; the `opsagent sim` command runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.cluster.sim import ScenarioError, builtin_scenario, load_scenario

GOOD = """\
name: tiny
nodes:
  - name: n
    gpus:
      - {count: 2}
workloads:
  - namespace: a
    name: w
    image: w:1
    gpus: 1
timeline:
  - at: "12:30"
    requests: {workload: a/w, rps: 0}
"""


@pytest.mark.parametrize(
    "broken, line, field, words",
    [
        (GOOD.replace("    gpus: 1\n", "    gpus: 1\n    colour: red\n"), 11, "workloads.0.colour", "Extra inputs"),
        (GOOD.replace("gpus: 1\n", "gpus: -1\n"), 10, "workloads.0.gpus", "greater than or equal"),
        (GOOD.replace("{count: 2}", "{count: two}"), 5, "nodes.0.gpus.0.count", "integer"),
        (GOOD.replace("workload: a/w", "workload: a/nope"), 13, "timeline.0.requests.workload", "unknown workload"),
        (GOOD.replace('"12:30"', '"half past"'), 12, "timeline.0.at", "bad time"),
        (GOOD.replace("requests: {workload: a/w, rps: 0}", "requests: {workload: a/w}"), 13, "timeline.0.requests", "rps, count"),
        (GOOD.replace("requests: {workload: a/w, rps: 0}", "plant: {workload: a/nope, event: hi}"), 13,
         "timeline.0.plant.workload", "unknown workload"),
        (GOOD.replace("requests: {workload: a/w, rps: 0}", "plant: {workload: a/w}"), 13, "timeline.0.plant",
         "event, pod_message"),
        (GOOD.replace("requests: {workload: a/w, rps: 0}", "api_fault: {kind: slow}"), 13, "timeline.0.api_fault.kind",
         "'timeout'"),
    ],
)
def test_bad_scenarios_name_file_line_and_field(tmp_path, broken, line, field, words):
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert words in str(err) and f"{path}:{line}" in str(err)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nnodes: [\n  - a\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.line is not None and "not valid YAML" in str(info.value)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.yaml")


def test_times_accept_hhmm_offsets_and_iso():
    scenario = load_scenario_text(GOOD)
    assert scenario.resolve_time("13:00").hour == 13
    assert scenario.resolve_time("+90m").minute == 30
    assert scenario.resolve_time("2026-01-05T08:15:00Z").minute == 15


def load_scenario_text(text):
    from opsagent.cluster.sim import parse_scenario

    return parse_scenario(text, source="inline")


def test_builtin_demo_loads():
    demo = builtin_scenario("demo")
    assert demo.start.weekday() == 0 and demo.duration.total_seconds() == 86400
    with pytest.raises(ScenarioError):
        builtin_scenario("nope")


def test_cli_runs_demo_as_json():
    result = CliRunner().invoke(app, ["sim", "demo", "--hours", "2", "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["rows"]) == 2 and report["rows"][-1]["time"].startswith("2026-01-05T02:00")
    assert {w["workload"] for w in report["workloads"]} >= {"render/render-ui", "inference/llm"}
    assert report["stats"]["gpu_hours_allocated"] > 0


def test_cli_table_and_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["sim", "demo", "--hours", "1", "--step-minutes", "30"])
    assert result.exit_code == 0 and "held idle" in result.stdout
    bad = tmp_path / "s.yaml"
    bad.write_text(GOOD.replace("gpus: 1\n", "gpus: lots\n"))
    result = runner.invoke(app, ["sim", str(bad)])
    assert result.exit_code != 0 and f"{bad}:10" in result.output and "workloads.0.gpus" in result.output
    result = runner.invoke(app, ["sim", "nowhere"])
    assert result.exit_code != 0 and "no such scenario" in result.output
    assert "Example: opsagent sim" in runner.invoke(app, ["sim", "--help"]).stdout
