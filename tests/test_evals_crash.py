"""The eval harness's crash variant: `restart: after_write` stops the agent between a write and its result.

Spec: from the event's time on, the next write that reaches the simulated
cluster stops the agent's session as a crash would (nothing records the
result or checkpoints the step), and a new session starts over the same
SQLite file. crash-between-write-and-record uses it on the render UI's sleep:
the offline planner passes, the write is neither repeated nor left without a
result, and the UI's second quiet spell gets a fresh run. A `restart:` value
other than true/false/after_write is an error naming the file, line and field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.audit import AuditFilter, AuditStore
from opsagent.evals import DEFAULT_DIR, load_eval_scenario, run_scenario, score
from opsagent.evals.schema import EvalScenarioError


def test_the_crash_scenario_passes_and_the_crashed_write_has_one_recovered_result(tmp_path: Path) -> None:
    scenario = load_eval_scenario(DEFAULT_DIR / "crash-between-write-and-record.yaml")
    assert [e.restart for e in scenario.spec.events] == ["after_write"]
    record = run_scenario(scenario, planner="offline", workdir=tmp_path, baseline=False)
    result = score(record)
    assert result.outcome == "pass", (result.failures, result.error)
    assert not result.violations and result.actions == 3
    assert [(w.method, w.kwargs["replicas"], w.authorised) for w in record.tap.writes] == \
        [("scale", 0, True), ("scale", 1, True), ("scale", 0, True)]
    with AuditStore(record.db) as store:
        results = sorted(store.list(AuditFilter(kind="result", limit=1000)), key=lambda r: r.id)
        runs = [r.run_id for r in store.list(AuditFilter(kind="run", limit=1000)) if (r.summary or "").startswith("run done")]
        assert store.verify().ok
    assert [(r.tool, r.outcome, bool((r.data or {}).get("recovered"))) for r in results if r.risk == "write"] == \
        [("sleep_workload", "ok", True), ("wake_workload", "ok", False), ("sleep_workload", "ok", False)]
    assert sorted(runs) == ["finding:idle_gpu:render/render-ui", "finding:idle_gpu:render/render-ui#2",
                            "finding:wake_requested:render/render-ui"]


def test_an_unknown_restart_variant_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncluster: {nodes: []}\nevents:\n  - {at: '10:00', restart: sometimes}\n")
    with pytest.raises(EvalScenarioError) as err:
        load_eval_scenario(bad)
    assert "bad.yaml:4" in str(err.value) and "events.0.restart" in str(err.value)
