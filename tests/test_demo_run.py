"""The demo end to end through its library function, with a shorter day."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opsagent.approvals import ApprovalQueue
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
        assert store.clock_kind() == "virtual"
        stats = store.stats()   # up to the database's own now: where the simulated day stopped
    # GPU-hours freed, worked out from the sleep and wake records, sit between the idle hours the
    # simulator says the agent saved and all the idle hours there were without it
    saved = summary.gpu_hours_idle_without_agent - summary.gpu_hours_idle_with_agent
    assert 0.9 * saved <= stats.gpu_hours_freed <= summary.gpu_hours_idle_without_agent
    assert stats.gpus_freed >= summary.sleeps


def test_demo_summary_labels_recovered_rollouts(tmp_path: Path, monkeypatch) -> None:
    from rich.console import Console

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    console = Console(record=True, width=200)
    run_demo(hours=1, step_minutes=5, db=tmp_path / "demo.db", console=console)
    text = console.export_text()
    assert "rollout(s) recovered" in text and "retry/rollback" not in text
    assert "records the decision" in text and "--cluster sim:demo" in text


def test_demo_ends_with_the_topology_change_pending_when_the_day_is_short(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    summary = run_demo(hours=1, step_minutes=5, db=tmp_path / "demo.db")
    pending = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    assert len(pending) == 1 and "group:platform-leads" in pending[0].approvers
    assert pending[0].approve_command.startswith(f"opsagent approvals approve {pending[0].id} --db ")


def test_the_demo_closing_hint_works_on_the_demo_database(tmp_path: Path, monkeypatch) -> None:
    """The printed command approves (on the simulated clock the request was made on, not the wall
    clock); only --cluster runs the call, once."""
    from opsagent.cli import app

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("OPSAGENT_CLUSTER", raising=False)
    monkeypatch.chdir(tmp_path)   # the hint names the policy directory; it must not depend on the working directory
    db = tmp_path / "demo.db"
    summary = run_demo(hours=1, step_minutes=5, db=db)
    [first] = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    args = first.approve_command.replace("<approver>", "alice").split()[1:]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(first.id).state == "approved"

    again = tmp_path / "again.db"
    summary = run_demo(hours=1, step_minutes=5, db=again)
    [second] = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    args = second.approve_command.replace("<approver>", "bob").split()[1:] + ["--cluster", "sim:demo"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ran it now on sim:demo: ok" in " ".join(result.output.split())
    with AuditStore(again) as store:
        assert ApprovalQueue(store, clock=None).get(second.id).state == "executed"


def test_demo_cli_prints_json(tmp_path: Path, monkeypatch) -> None:
    from opsagent.cli import app

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["demo", "--hours", "2", "--db", str(tmp_path / "d.db"), "-o", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["db"] == str(tmp_path / "d.db") and data["cycles"] == 24
