"""`opsagent audit` and `opsagent approvals` on a real database file, through typer's runner.

Each command module is registered on a fresh app, so these tests need nothing
from other command modules. Approvers come from a small policy directory written
per test (group membership is read from it; without it the commands stop early).
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
POLICY = """\
scope: {namespaces: ["*"]}
groups: {sre: [carol]}
rules:
  - name: read-anything
    tools: ["*"]
    risk: read
    effect: allow
"""


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
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("OPSAGENT_POLICIES", str(policies))
    store = AuditStore(path)
    for i, (tool, ns, outcome) in enumerate([("scale_workload", "ml", "ok"), ("wake_workload", "web", "ok"),
                                              ("delete_pod", "ml", "denied"), ("scale_workload", "ml", "error")]):
        store.record(AuditEntry(time=NOW - timedelta(hours=3 - i), kind="result", actor="daemon", tool=tool,
                                args={"namespace": ns, "name": "llm"}, outcome=outcome, run_id=f"run-{i}",
                                summary=f"{tool} in {ns} gave {outcome}", data={"gpus_freed": 2} if i == 0 else None))
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
    assert r.exit_code == 0 and r.stdout.split()[:3] == ["ID", "TIME", "KIND"] and "daemon" in r.stdout


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
    # row 1 freed 2 GPUs of ml/llm three hours ago and nothing woke it since (a real-clock database)
    # (the tolerance allows for minutes of real time between writing the rows and asking, on a loaded machine)
    assert stats["gpu_hours_freed"] == pytest.approx(6.0, abs=0.25) and stats["rows"] == 4
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
    for group, names in (("audit", ("list", "show", "search", "stats", "export", "head", "verify")),
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
    r = run("approvals", "approve", str(pending.id), "--comment", "ok")
    said = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "the daemon runs it on its next cycle" in said and "--cluster" in said
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


def test_approve_help_says_what_cluster_does(db):
    r = run("approvals", "approve", "--help")
    text = " ".join(r.stdout.replace("│", " ").split())
    assert r.exit_code == 0 and "Without it the decision is recorded and the daemon runs the call on its next cycle" in text


def test_approve_without_a_cluster_records_the_decision_and_runs_nothing(pending, db, monkeypatch):
    monkeypatch.delenv("OPSAGENT_CLUSTER", raising=False)
    r = run("approvals", "approve", str(pending.id), "--as", "alice")
    assert r.exit_code == 0, r.output
    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(pending.id).state == "approved"
        assert store.list(kind="result", tool="set_resources") == []   # nothing executed


@pytest.mark.parametrize(("option", "value"), [("--outcome", "bogus"), ("--decision", "maybe"), ("--kind", "row")])
def test_audit_list_refuses_unknown_filter_values(db, option, value):
    r = run("audit", "list", option, value)
    assert r.exit_code == 2 and option in r.output and value in r.output


def test_audit_list_accepts_every_valid_filter_value(db):
    r = run("audit", "list", "--outcome", "denied", "--decision", "allow", "--kind", "result", "-o", "json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    r = run("audit", "list", "--outcome", "denied", "-o", "json")
    assert [x["id"] for x in json.loads(r.stdout)] == [3]


def test_approvals_list_refuses_an_unknown_state(pending):
    r = run("approvals", "list", "--state", "bogus")
    assert r.exit_code == 2 and "--state" in r.output and "pending" in r.output


@pytest.mark.parametrize("machine", ["daemon", "wake-proxy"])
@pytest.mark.parametrize("action", [("approve",), ("reject", "--reason", "no")])
def test_machine_actors_cannot_decide_from_the_cli(pending, db, machine, action):
    before = AuditStore(db).count()
    r = run("approvals", action[0], str(pending.id), *action[1:], "--as", machine)
    assert r.exit_code == 2 and "machine actor" in r.output and "a person" in r.output
    with AuditStore(db) as store:
        assert store.count() == before   # refused before the queue: nothing decided, nothing audited
    assert json.loads(run("approvals", "show", str(pending.id), "-o", "json").stdout)["state"] == "pending"


@pytest.mark.parametrize("action", [("approve",), ("reject", "--reason", "no")])
def test_a_missing_policy_directory_stops_before_anything_is_audited(pending, db, tmp_path, action):
    before = AuditStore(db).count()
    r = run("approvals", action[0], str(pending.id), *action[1:], "--as", "carol",
            "--policies", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "policy directory not found" in r.output
    assert "--policies" in r.output and "OPSAGENT_POLICIES" in r.output
    assert "not an approver" not in r.output
    with AuditStore(db) as store:
        assert store.count() == before


def test_group_membership_comes_from_the_policy(db):
    q = ApprovalQueue(db, clock=VirtualClock(NOW))
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm", "gpus_per_replica": 4}, actor="daemon")
    a = q.request(call=call, decision=Decision(effect="require_approval", rule=RuleRef(file="p.yaml", name="arch"),
                                               reason="architecture", approvers=("group:sre",)))
    q.close()
    r = run("approvals", "approve", str(a.id), "--as", "carol")
    assert r.exit_code == 0, r.output


def test_a_virtual_clock_database_is_judged_in_its_own_time(db, tmp_path, monkeypatch):
    """A request made on the simulator expires in simulated time, whatever the wall clock says."""
    db = tmp_path / "sim.db"
    monkeypatch.setenv("OPSAGENT_DB", str(db))
    sim_start = datetime(2026, 1, 5, tzinfo=timezone.utc)   # long before (or after) the wall clock: it must not matter
    clock = VirtualClock(sim_start)
    q = ApprovalQueue(db, clock=clock)
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm", "gpus_per_replica": 2}, actor="daemon")
    decision = Decision(effect="require_approval", rule=RuleRef(file="p.yaml", name="arch"), reason="architecture",
                        approvers=("alice",), expires_after_seconds=600)
    early = q.request(call=call, decision=decision)
    clock.advance(timedelta(minutes=5))
    late = q.request(call=call.model_copy(update={"args": {**call.args, "gpus_per_replica": 3}}), decision=decision)
    q.close()
    assert AuditStore(db).clock_kind() == "virtual"
    # the database's now is 00:05 simulated: both requests are still open, whatever the wall clock says
    shown = {x["id"]: x["state"] for x in json.loads(run("approvals", "list", "-o", "json").stdout)}
    assert shown == {early.id: "pending", late.id: "pending"}
    # the simulator runs on to 00:12 and records something: the first request (due 00:10) is now past its expiry
    with AuditStore(db) as store:
        store.record(AuditEntry(time=sim_start + timedelta(minutes=12), kind="run", actor="daemon", outcome="info"))
    assert json.loads(run("audit", "stats", "-o", "json").stdout)["approvals_waiting"] == 1   # before any sweep
    assert json.loads(run("approvals", "show", str(early.id), "-o", "json").stdout)["state"] == "expired"
    assert json.loads(run("approvals", "show", str(early.id), "-o", "json").stdout)["state"] == "expired"
    r = run("approvals", "approve", str(late.id), "--as", "alice")
    assert r.exit_code == 0, r.output
    rows = json.loads(run("audit", "list", "--kind", "approval", "-o", "json").stdout)
    assert [x["outcome"] for x in rows if x["approval_id"] == early.id] == ["expired", "pending"]   # audited once
    decided = next(x for x in rows if x["approval_id"] == late.id and x["outcome"] == "approved")
    assert decided["time"].startswith("2026-01-05T00:12")   # stamped in the database's time
    # durations count back from the database's now too
    since = json.loads(run("audit", "list", "--since", "3m", "-o", "json").stdout)
    assert {x["time"][:16] for x in since} == {"2026-01-05T00:12"}


def test_verify_reports_progress_on_large_logs_and_stays_quiet_in_pipes(tmp_path):
    path = tmp_path / "big.db"
    store = AuditStore(path)
    store.record_many([AuditEntry(time=NOW, kind="result", actor="daemon", tool="scale_workload", outcome="ok",
                                  summary=f"row {i}") for i in range(2500)])
    told: list[int] = []
    report = store.verify(on_rows=told.append)
    store.close()
    assert report.ok and report.rows == 2500 and told == [1000, 2000]
    r = run("audit", "verify", "--db", str(path))   # not a terminal: the bar prints nothing
    assert r.exit_code == 0 and r.stdout.startswith("intact: 2500 rows") and r.stderr == ""


def test_stats_covers_the_last_week_unless_told_otherwise(tmp_path):
    db = tmp_path / "week.db"
    now = datetime.now(timezone.utc)
    with AuditStore(db) as store:
        for days in (1, 3, 10, 40):
            store.record(AuditEntry(time=now - timedelta(days=days), kind="result", actor="daemon",
                                    tool="sleep_workload", outcome="ok"))
    assert json.loads(run("audit", "stats", "--db", str(db), "-o", "json").stdout)["rows"] == 2
    assert json.loads(run("audit", "stats", "--db", str(db), "--since", "all", "-o", "json").stdout)["rows"] == 4
    assert json.loads(run("audit", "stats", "--db", str(db), "--since", "30d", "-o", "json").stdout)["rows"] == 3
