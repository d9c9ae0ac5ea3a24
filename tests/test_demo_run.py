"""The demo end to end through its library function, with a shorter day."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opsagent.audit import AuditStore
from opsagent.demo import run_demo


def test_demo_day_frees_idle_gpus_starts_the_job_and_asks_a_lead_for_the_topology(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")   # no Ollama: the offline planner, said plainly
    summary = run_demo(hours=16, step_minutes=5, db=tmp_path / "demo.db")
    assert summary.planner == "offline" and summary.llm_calls == 0
    assert summary.gpu_hours_idle_with_agent < summary.gpu_hours_idle_without_agent
    assert "training/finetune-7" in summary.jobs_started
    assert summary.jobs_started_with_agent > summary.jobs_started_without_agent
    assert any(r.startswith("#") and "set_gpu_placement inference/llm" in r for r in summary.architectural_requests)
    assert summary.rollouts_recovered == 1
    assert summary.wakes >= 2 and summary.sleeps >= 2
    assert summary.audit_verified and summary.audit_records > 20
    with AuditStore(tmp_path / "demo.db") as store:
        assert store.verify().ok and store.count() == summary.audit_records


def test_demo_ends_with_the_topology_change_pending_when_the_day_is_short(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    summary = run_demo(hours=1, step_minutes=5, db=tmp_path / "demo.db")
    pending = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    assert len(pending) == 1 and "group:platform-leads" in pending[0].approvers
    assert pending[0].approve_command.startswith(f"opsagent approvals approve {pending[0].id} --db ")


def test_demo_cli_prints_json(tmp_path: Path, monkeypatch) -> None:
    from opsagent.cli import app

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["demo", "--hours", "2", "--db", str(tmp_path / "d.db"), "-o", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["db"] == str(tmp_path / "d.db") and data["cycles"] == 24
