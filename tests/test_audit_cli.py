"""`opsagent audit` and `opsagent approvals` on a real database file, through typer's runner.

Each command module is registered on a fresh app, so these tests need nothing
from other command modules.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import typer
from typer.testing import CliRunner

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.cli import approvals as approvals_cli
from opsagent.cli import audit as audit_cli
from opsagent.clock import VirtualClock
from opsagent.model import AuditEntry, Decision, RuleRef, ToolCall

NOW = datetime.now(timezone.utc)


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    audit_cli.register(app)
    approvals_cli.register(app)
    return app


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "ops.db"
    monkeypatch.setenv("OPSAGENT_DB", str(path))
    monkeypatch.delenv("OPSAGENT_OUTPUT", raising=False)
    monkeypatch.setenv("OPSAGENT_POLICIES", str(tmp_path / "no-policies"))
    store = AuditStore(path)
    for i, (tool, ns, outcome) in enumerate([("scale_workload", "ml", "ok"), ("wake_workload", "web", "ok"),
                                              ("delete_pod", "ml", "denied"), ("scale_workload", "ml", "error")]):
        store.record(AuditEntry(time=NOW - timedelta(hours=3 - i), kind="result", actor="daemon", tool=tool,
                                args={"namespace": ns, "name": "llm"}, outcome=outcome, run_id=f"run-{i}",
                                summary=f"{tool} in {ns} gave {outcome}", data={"gpu_hours_freed": 2.5} if i == 0 else None))
    store.close()
    return path


def run(*args: str):
    return CliRunner().invoke(make_app(), list(args))


def test_list_filters_and_json(db):
    r = run("audit", "list", "--namespace", "ml", "-o", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == [4, 3, 1]
    r = run("audit", "list", "--since", "90m", "-o", "json")
    assert [x["id"] for x in json.loads(r.stdout)] == [4, 3]
    r = run("audit", "list", "--until", (NOW - timedelta(minutes=150)).isoformat(), "-o", "json")
    assert [x["id"] for x in json.loads(r.stdout)] == [1]
    r = run("audit", "list", "--tool", "scale_workload", "--outcome", "ok", "-o", "jsonl")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == [1]
    r = run("audit", "list", "-o", "csv", "--limit", "2")
    assert r.stdout.splitlines()[0].startswith("id,time,kind") and len(r.stdout.splitlines()) == 3
    r = run("audit", "list")
    assert r.exit_code == 0 and "audit log" in r.stdout and "daemon" in r.stdout


def test_bad_time_is_a_clear_error(db):
    r = run("audit", "list", "--since", "yesterday-ish")
    assert r.exit_code == 2 and "--since" in r.output and "duration" in r.output


def test_missing_database_is_a_clear_error(tmp_path):
    r = run("audit", "list", "--db", str(tmp_path / "nope.db"))
    assert r.exit_code == 2 and "no audit database" in r.output


def test_show_search_stats_export(db, tmp_path):
    r = run("audit", "show", "2", "-o", "json")
    assert r.exit_code == 0 and [x["id"] for x in json.loads(r.stdout)["rows"]] == [2]
    assert run("audit", "show", "99").exit_code == 2
    r = run("audit", "search", "wake_workload web", "-o", "json")
    assert [x["id"] for x in json.loads(r.stdout)] == [2]
    r = run("audit", "stats", "-o", "json")
    stats = json.loads(r.stdout)
    assert stats["gpu_hours_freed"] == 2.5 and stats["rows"] == 4
    assert run("audit", "stats").exit_code == 0
    out = tmp_path / "audit.csv"
    r = run("audit", "export", "--format", "csv", "--out", str(out))
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 5
    r = run("audit", "export")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == [1, 2, 3, 4]
    assert run("audit", "export", "--format", "xml").exit_code == 2


def test_verify_exit_codes(db):
    r = run("audit", "verify", "-o", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET summary = 'nothing to see' WHERE id = 3")
    r = run("audit", "verify")
    assert r.exit_code == 1 and "row 3" in r.stdout


def test_every_command_has_help_ending_with_an_example(db):
    for group, names in (("audit", ("list", "show", "search", "stats", "export", "verify")),
                         ("approvals", ("list", "show", "approve", "reject"))):
        for name in names:
            r = run(group, name, "--help")
            assert r.exit_code == 0 and "Example: opsagent " + group in r.stdout, (group, name)


@pytest.fixture
def pending(db):
    q = ApprovalQueue(db, clock=VirtualClock(NOW))
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm", "gpus_per_replica": 2}, actor="daemon")
    a = q.request(call=call, decision=Decision(effect="require_approval", rule=RuleRef(file="p.yaml", name="arch"),
                                               reason="architecture", approvers=("alice",)))
    q.close()
    return a


def test_approvals_list_show_approve(pending, monkeypatch):
    r = run("approvals", "list", "-o", "json")
    assert r.exit_code == 0 and [x["id"] for x in json.loads(r.stdout)] == [pending.id]
    r = run("approvals", "show", str(pending.id), "-o", "json")
    assert json.loads(r.stdout)["args_hash"] == pending.args_hash
    r = run("approvals", "approve", str(pending.id), "--as", "mallory")
    assert r.exit_code == 1 and "not an approver" in r.output
    monkeypatch.setenv("OPSAGENT_ACTOR", "alice")
    r = run("approvals", "approve", str(pending.id), "--comment", "ok", "--no-execute")
    assert r.exit_code == 0 and "approved" in r.stdout
    r = run("approvals", "list", "--state", "approved", "-o", "json")
    assert json.loads(r.stdout)[0]["decided_by"] == "alice"
    r = run("audit", "list", "--kind", "approval", "-o", "json")
    assert [x["outcome"] for x in json.loads(r.stdout)] == ["approved", "denied", "pending"]


def test_approvals_reject_needs_a_reason_and_an_approver(pending):
    assert run("approvals", "reject", str(pending.id), "--as", "alice").exit_code == 2
    r = run("approvals", "reject", str(pending.id), "--reason", "no", "--as", "bob")
    assert r.exit_code == 1
    r = run("approvals", "reject", str(pending.id), "--reason", "use fewer GPUs", "--as", "alice")
    assert r.exit_code == 0
    assert json.loads(run("approvals", "show", str(pending.id), "-o", "json").stdout)["state"] == "rejected"
