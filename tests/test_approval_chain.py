"""Approvals live inside the audit chain, the chain's head can be anchored, and an approved call runs exactly once.

Spec, each test naming the promise it tries to break:
- every state change of a request (requested, approved, rejected, expired,
  executed, failed) is a chained record naming the approval id, the actor and
  the call (its hash on every record, the whole call on the request);
- rewriting `approvals.call` (or its state) with sqlite3, with the arguments
  hash recomputed so the row looks self-consistent, is reported by
  `opsagent audit verify` with the approval id (exit 1), and the call is
  refused at approval and at execution: what runs is what was chained;
- deleting the newest audit rows, all of them, or rebuilding the whole chain
  from scratch passes the chain check alone but fails against an anchor
  (`audit verify --expect-head ROWS:HASH`) taken earlier with `audit head`;
- a call asked for in chat and approved on the command line without
  --cluster (nobody waits to run it) is run by the daemon on its next cycle,
  once, through the gate, on the daemon channel with the approver recorded,
  on the simulator with a real SQLite file;
- two claimants in two processes run an approved call once: while the first
  runs it the second is told so and leaves it; afterwards it is executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.approvals import AlreadyDecided, AlreadyRunning, ApprovalQueue, ApprovalTampered, verify_approvals
from opsagent.audit import AuditFilter, AuditStore
from opsagent.audit.chain import content_of, row_hash
from opsagent.clock import VirtualClock
from opsagent.cli import app
from opsagent.model import Decision, RuleRef, ToolCall, ToolResult, canonical_json

REPO = Path(__file__).resolve().parents[1]
CALL = ToolCall(tool="sleep_workload", args={"namespace": "render", "name": "render-ui"}, actor="mallory", channel="slack")
DECISION = Decision(effect="require_approval", rule=RuleRef(file="policies/default.yaml", name="oncall"),
                    reason="needs on-call", approvers=("carol",), expires_after_seconds=600)


@pytest.fixture
def clock():
    return VirtualClock(datetime(2026, 1, 5, tzinfo=timezone.utc))


@pytest.fixture
def queue(tmp_path, clock):
    q = ApprovalQueue(tmp_path / "ops.db", clock=clock)
    yield q
    q.close()


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def chained(store: AuditStore, approval_id: int) -> list[dict]:
    rows = store.list(AuditFilter(kind="approval", limit=None))
    return [r.model_dump(mode="json") for r in reversed(rows) if r.approval_id == approval_id]


def ok(approval) -> ToolResult:
    return ToolResult(status="ok", tool=approval.call.tool, message="done")


def rewrite_call(db: Path, approval_id: int, args: dict) -> None:
    """What someone with the file does: change the call and recompute its hash so the row looks whole."""
    conn = sqlite3.connect(db)
    call = json.loads(conn.execute("SELECT call FROM approvals WHERE id = ?", (approval_id,)).fetchone()[0])
    call["args"] = args
    args_hash = hashlib.sha256(canonical_json({"tool": call["tool"], "args": args}).encode()).hexdigest()
    conn.execute("UPDATE approvals SET call = ?, args_hash = ? WHERE id = ?", (json.dumps(call), args_hash, approval_id))
    conn.commit()
    conn.close()


# --- every state change is in the chain -------------------------------------------------------------------------------

def test_every_state_change_is_a_chained_record_with_id_actor_and_call(queue, clock):
    a = queue.request(call=CALL, decision=DECISION, run_id="chat-1")
    queue.approve(a.id, by="carol")
    queue.execute(a.id, run=ok, actor="carol", channel="daemon")
    b = queue.request(call=CALL.model_copy(update={"args": {"namespace": "render", "name": "b"}}), decision=DECISION)
    queue.reject(b.id, by="carol", reason="not now")
    c = queue.request(call=CALL.model_copy(update={"args": {"namespace": "render", "name": "c"}}), decision=DECISION)
    clock.advance(601)
    queue.expire_due()
    d = queue.request(call=CALL.model_copy(update={"args": {"namespace": "render", "name": "d"}}), decision=DECISION)
    queue.approve(d.id, by="carol")
    queue.execute(d.id, run=lambda ap: ToolResult(status="error", tool=ap.call.tool, message="quota"))

    events = {x.id: [(r["data"]["event"], r["actor"]) for r in chained(queue.store, x.id)] for x in (a, b, c, d)}
    assert events[a.id] == [("requested", "mallory"), ("approved", "carol"), ("executing", "carol"), ("executed", "carol")]
    assert events[b.id] == [("requested", "mallory"), ("rejected", "carol")]
    assert events[c.id] == [("requested", "mallory"), ("expired", "opsagent")]
    assert events[d.id][-1] == ("failed", "carol")
    records = chained(queue.store, a.id)
    assert records[0]["data"]["call"] == CALL.model_dump(mode="json")       # the whole call, as requested
    assert {r["data"]["args_hash"] for r in records} == {CALL.args_hash()}
    assert len({r["data"]["call_sha256"] for r in records}) == 1
    assert queue.store.verify().ok and verify_approvals(queue.store) == []


# --- the table cannot be rewritten behind the chain's back ----------------------------------------------------------

def test_a_rewritten_call_is_reported_by_verify_and_refused_at_execution(queue, tmp_path, monkeypatch):
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    rewrite_call(tmp_path / "ops.db", a.id, {"namespace": "inference", "name": "llm"})

    [mismatch] = verify_approvals(queue.store)
    assert mismatch.approval_id == a.id and any("arguments differ" in p for p in mismatch.problems)
    monkeypatch.delenv("OPSAGENT_OUTPUT", raising=False)
    r = cli("audit", "verify", "--db", str(tmp_path / "ops.db"))
    assert r.exit_code == 1 and f"approval {a.id} disagrees with the chain" in " ".join(r.output.split())
    r = cli("audit", "verify", "--db", str(tmp_path / "ops.db"), "-o", "json")
    report = json.loads(r.stdout)
    assert r.exit_code == 1 and report["chain_ok"] is True and report["approvals"][0]["approval_id"] == a.id

    ran = []
    with pytest.raises(ApprovalTampered, match="does not match its record in the audit chain"):
        queue.execute(a.id, run=lambda ap: ran.append(ap) or ok(ap))
    assert ran == [] and queue.get(a.id).state == "approved"
    assert chained(queue.store, a.id)[-1]["data"]["event"] == "execute_refused"


def test_a_call_rewritten_while_pending_cannot_be_approved(queue, tmp_path):
    a = queue.request(call=CALL, decision=DECISION)
    rewrite_call(tmp_path / "ops.db", a.id, {"namespace": "inference", "name": "llm"})
    with pytest.raises(ApprovalTampered):
        queue.approve(a.id, by="carol")
    assert queue.get(a.id).state == "pending"


def test_a_rejected_request_flipped_to_approved_is_reported_and_not_run(queue, tmp_path):
    a = queue.request(call=CALL, decision=DECISION)
    queue.reject(a.id, by="carol", reason="no")
    conn = sqlite3.connect(tmp_path / "ops.db")
    conn.execute("UPDATE approvals SET state = 'approved' WHERE id = ?", (a.id,))
    conn.commit()
    conn.close()
    [mismatch] = verify_approvals(queue.store)
    assert any("the chain says rejected" in p for p in mismatch.problems)
    with pytest.raises(ApprovalTampered):
        queue.execute(a.id, run=lambda ap: pytest.fail("a rejected call must not run"))


def test_an_approvals_row_with_no_chained_request_is_reported(queue, tmp_path):
    a = queue.request(call=CALL, decision=DECISION)
    conn = sqlite3.connect(tmp_path / "ops.db")
    conn.execute("INSERT INTO approvals (tool, call, args_hash, state, requested_by, approvers, rule_file, rule_name, "
                 "reason, created_at, expires_at, decided_by) SELECT tool, call, args_hash, 'approved', requested_by, "
                 "'[\"mallory\"]', rule_file, rule_name, reason, created_at, expires_at, 'mallory' FROM approvals WHERE id = ?",
                 (a.id,))
    conn.commit()
    conn.close()
    [mismatch] = verify_approvals(queue.store)
    assert mismatch.approval_id == a.id + 1 and "no 'requested' record" in mismatch.problems[0]
    with pytest.raises(ApprovalTampered):
        queue.execute(a.id + 1, run=lambda ap: pytest.fail("a forged row must not run"))


# --- anchoring the head -----------------------------------------------------------------------------------------------

def _head(db: Path) -> str:
    r = cli("audit", "head", "--db", str(db), "-o", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["anchor"]


def _delete(db: Path, where: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.execute(f"DELETE FROM audit WHERE {where}")
    conn.commit()
    conn.close()


def test_deleted_newest_rows_pass_the_chain_but_fail_against_the_anchor(queue, tmp_path):
    db = tmp_path / "ops.db"
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    anchor = _head(db)
    assert anchor.startswith("2:") and cli("audit", "verify", "--db", str(db), "--expect-head", anchor).exit_code == 0
    queue.execute(a.id, run=ok)
    assert cli("audit", "verify", "--db", str(db), "--expect-head", anchor).exit_code == 0   # appends keep the anchor

    _delete(db, "id > 1")
    assert queue.store.verify().ok                     # the chain alone cannot tell
    r = cli("audit", "verify", "--db", str(db), "--expect-head", anchor)
    assert r.exit_code == 1 and "holds 1 rows but the anchor 2:" in " ".join(r.output.split())
    _delete(db, "1 = 1")
    r = cli("audit", "verify", "--db", str(db), "--expect-head", anchor, "-o", "json")
    assert r.exit_code == 1 and json.loads(r.stdout)["rows"] == 0


def test_a_history_rebuilt_from_scratch_fails_against_the_anchor(queue, tmp_path):
    db = tmp_path / "ops.db"
    queue.request(call=CALL, decision=DECISION)
    anchor = _head(db)
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER audit_no_update")
    prev = "0" * 64
    for row in [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY id")]:
        row["summary"] = "nothing happened"
        new = row_hash(prev, content_of(row))
        conn.execute("UPDATE audit SET summary = ?, prev_hash = ?, hash = ? WHERE id = ?", (row["summary"], prev, new, row["id"]))
        prev = new
    conn.commit()
    conn.close()
    assert queue.store.verify().ok                     # a consistent forgery
    r = cli("audit", "verify", "--db", str(db), "--expect-head", anchor)
    assert r.exit_code == 1 and "rewritten" in r.output


@pytest.mark.parametrize("bad", ["12", "x:abc", "0:" + "a" * 64, "3:" + "g" * 64, "3:" + "a" * 63])
def test_a_malformed_anchor_is_a_one_line_error(queue, tmp_path, bad):
    r = cli("audit", "verify", "--db", str(tmp_path / "ops.db"), "--expect-head", bad)
    assert r.exit_code == 2 and "--expect-head" in r.output and "Traceback" not in r.output


# --- a stranded chat approval runs once, on the daemon ---------------------------------------------------------------

def test_a_chat_approval_nobody_waits_for_is_run_by_the_daemon_once(tmp_path, monkeypatch):
    from opsagent.daemon import Daemon, DaemonOptions

    for name in ("OPSAGENT_CLUSTER", "OPSAGENT_MODEL", "OPSAGENT_OUTPUT", "OPSAGENT_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    db, policies = tmp_path / "ops.db", REPO / "policies"
    r = cli("ask", "sleep render/render-ui", "--as", "mallory", "--db", str(db), "--policies", str(policies),
            "--cluster", "sim:demo")
    assert r.exit_code == 0 and "waiting for approval #1" in r.output, r.output
    r = cli("approvals", "approve", "1", "--as", "carol", "--db", str(db), "--policies", str(policies))
    assert r.exit_code == 0 and "the daemon runs it on its next cycle" in " ".join(r.output.split())

    daemon = Daemon(DaemonOptions(policies=policies, playbooks=REPO / "playbooks", db=db, interval=60, cycles=3, sim_speed=0))
    assert daemon.run(install_signals=False) == 0
    assert daemon.runtime.sim.snapshot().workload("render/render-ui").replicas == 0

    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(1).state == "executed"
        ran = [r for r in store.list(AuditFilter(kind="result", limit=None))
               if r.tool == "sleep_workload" and r.outcome != "pending"]
        assert len(ran) == 1 and ran[0].outcome == "ok" and ran[0].channel == "daemon"
        assert ran[0].data["approver"] == "carol" and ran[0].actor == "mallory"
        claim = store.find_by_key(ApprovalQueue.execution_key(1))
        assert claim.channel == "daemon" and claim.actor == "carol"
        assert store.verify().ok and verify_approvals(store) == []
    r = cli("approvals", "approve", "1", "--as", "dave", "--db", str(db), "--policies", str(policies))
    assert r.exit_code == 1 and "already executed" in r.output


# --- two claimants, one run -------------------------------------------------------------------------------------------

CLAIMANT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from opsagent.approvals import AlreadyDecided, AlreadyRunning, ApprovalQueue
    from opsagent.clock import VirtualClock
    from opsagent.model import ToolResult
    db, witness, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    q = ApprovalQueue(db, clock=VirtualClock())
    def run(approval):
        with witness.open("a") as fh:
            fh.write(f"ran {os.getpid()}\\n")
        while not release.exists():
            time.sleep(0.01)
        return ToolResult(status="ok", tool=approval.call.tool, message="slept")
    try:
        print(q.execute(1, run=run, actor="carol", channel=sys.argv[4]).status)
    except (AlreadyRunning, AlreadyDecided) as exc:
        print(type(exc).__name__)
""")


def _claimant(db: Path, tmp_path: Path, channel: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CLAIMANT, str(db), str(tmp_path / "witness"), str(tmp_path / "release"),
                             channel], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_claimants_in_two_processes_run_it_once(queue, tmp_path):
    db = tmp_path / "ops.db"
    queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    first = _claimant(db, tmp_path, "daemon")
    witness = tmp_path / "witness"
    while not witness.exists():                             # wait until the first claimant is inside the call
        try:
            first.wait(timeout=0.05)
            break                                           # it ended early: the assertion below shows why
        except subprocess.TimeoutExpired:
            pass
    assert first.poll() is None, first.communicate()
    second = _claimant(db, tmp_path, "cli")
    out, err = second.communicate(timeout=120)
    assert out.strip() == "AlreadyRunning", err
    with pytest.raises(AlreadyRunning):                     # and from this process too, without writing anything
        queue.execute(1, run=lambda ap: pytest.fail("must not run twice"))
    (tmp_path / "release").touch()
    out, err = first.communicate(timeout=120)
    assert out.strip() == "ok", err
    assert len(witness.read_text().splitlines()) == 1
    assert queue.get(1).state == "executed"
    with pytest.raises(AlreadyDecided):
        queue.execute(1, run=lambda ap: pytest.fail("must not run twice"))
    assert queue.store.verify().ok and verify_approvals(queue.store) == []


def test_two_claimants_started_together_run_it_once(queue, tmp_path):
    db = tmp_path / "ops.db"
    queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    (tmp_path / "release").touch()
    procs = [_claimant(db, tmp_path, ch) for ch in ("daemon", "cli", "slack")]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outs.count("ok") == 1 and all(o in ("ok", "AlreadyRunning", "AlreadyDecided") for o in outs), outs
    assert len((tmp_path / "witness").read_text().splitlines()) == 1
    assert queue.get(1).state == "executed"


def test_the_daemon_leaves_a_call_another_process_is_running_and_never_runs_it_again(queue, tmp_path):
    from opsagent.daemon import Daemon, DaemonOptions

    db = tmp_path / "ops.db"
    queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    holder = _claimant(db, tmp_path, "cli")                  # e.g. `approvals approve --cluster`, mid-call
    while not (tmp_path / "witness").exists():
        try:
            holder.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
    assert holder.poll() is None, holder.communicate()

    def one_cycle() -> Daemon:
        daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, interval=60,
                                      cycles=1, sim_speed=0))
        assert daemon.run(install_signals=False) == 0
        return daemon

    daemon = one_cycle()
    assert daemon.runtime.sim.snapshot().workload("render/render-ui").replicas > 0   # the daemon did not run it
    assert queue.get(1).state == "approved"
    assert [r["data"]["event"] for r in chained(queue.store, 1)] == ["requested", "approved", "executing"]
    (tmp_path / "release").touch()
    assert holder.communicate(timeout=120)[0].strip() == "ok"
    daemon = one_cycle()
    assert daemon.runtime.sim.snapshot().workload("render/render-ui").replicas > 0
    assert [r["data"]["event"] for r in chained(queue.store, 1)] == ["requested", "approved", "executing", "executed"]
    assert len((tmp_path / "witness").read_text().splitlines()) == 1


def test_editing_the_chained_request_along_with_the_row_is_refused_at_execution(queue, tmp_path):
    """Rewriting both the approvals row and the audit row that requested it (without rebuilding the chain) is caught
    before the call runs, not only by a later `audit verify`."""
    db = tmp_path / "ops.db"
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    rewrite_call(db, a.id, {"namespace": "inference", "name": "llm"})
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_no_update")
    forged = {"namespace": "inference", "name": "llm"}
    call = json.loads(conn.execute("SELECT call FROM approvals WHERE id = ?", (a.id,)).fetchone()[0])
    args_hash = conn.execute("SELECT args_hash FROM approvals WHERE id = ?", (a.id,)).fetchone()[0]
    for rid, data in conn.execute("SELECT id, data FROM audit WHERE kind = 'approval' AND approval_id = ?", (a.id,)).fetchall():
        data = json.loads(data)
        data["args_hash"] = args_hash
        if data["event"] == "requested":
            data["call"] = call
        conn.execute("UPDATE audit SET args = ?, data = ? WHERE id = ?", (canonical_json(forged), canonical_json(data), rid))
    conn.commit()
    conn.close()
    with pytest.raises(ApprovalTampered, match="was edited"):
        queue.execute(a.id, run=lambda ap: pytest.fail("a forged call must not run"))


def test_the_daemon_and_approve_with_cluster_racing_run_it_once(tmp_path, monkeypatch):
    """`approvals approve --cluster` (another process) and a running daemon both try to run the approved call."""
    import threading

    from opsagent.daemon import Daemon, DaemonOptions

    for name in ("OPSAGENT_CLUSTER", "OPSAGENT_MODEL", "OPSAGENT_OUTPUT", "OPSAGENT_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    db, policies = tmp_path / "ops.db", REPO / "policies"
    r = cli("ask", "scale inference/llm to 2", "--as", "mallory", "--db", str(db), "--policies", str(policies),
            "--cluster", "sim:demo")
    assert "waiting for approval #1" in r.output, r.output
    approve = subprocess.Popen([sys.executable, "-c", "from opsagent.cli import main; main()", "approvals", "approve", "1", "--as", "carol",
                                "--db", str(db), "--policies", str(policies), "--cluster", "sim:demo"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    daemon: Daemon

    def until_settled(report) -> None:
        if approve.poll() is not None and daemon.runtime.approvals.get(1).state in ("executed", "failed"):
            daemon.stop.set()

    daemon = Daemon(DaemonOptions(policies=policies, playbooks=REPO / "playbooks", db=db, interval=1, sim_speed=0,
                                  cycles=20_000), on_cycle=until_settled)
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    thread.start()
    out, err = approve.communicate(timeout=300)
    thread.join(timeout=300)
    assert approve.returncode == 0, out + err
    said = " ".join(out.split())
    assert "approved by carol" in said and ("ran it now on sim:demo" in said or "another process" in said)
    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(1).state == "executed"
        proposals = [r for r in store.list(AuditFilter(kind="proposal", limit=None)) if r.approval_id == 1]
        claims = [r for r in store.list(AuditFilter(kind="approval", limit=None)) if (r.data or {}).get("event") == "executing"]
        assert len(proposals) == 1 and len(claims) == 1           # one attempt reached the gate, by one claimant
        assert store.verify().ok and verify_approvals(store) == []


def test_the_daemon_refuses_a_tampered_approval_once_and_runs_nothing(queue, tmp_path, caplog):
    from opsagent.daemon import Daemon, DaemonOptions

    db = tmp_path / "ops.db"
    a = queue.approve(queue.request(call=CALL, decision=DECISION).id, by="carol")
    rewrite_call(db, a.id, {"namespace": "inference", "name": "llm"})
    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, interval=60,
                                  cycles=3, sim_speed=0))
    with caplog.at_level("ERROR", logger="opsagent.daemon"):
        assert daemon.run(install_signals=False) == 0
    snapshot = daemon.runtime.sim.snapshot()
    assert snapshot.workload("inference/llm").replicas > 0 and snapshot.workload("render/render-ui").replicas > 0
    events = [r["data"]["event"] for r in chained(queue.store, a.id)]
    assert events == ["requested", "approved", "execute_refused"]          # refused once, not every cycle
    assert "does not match its record in the audit chain" in caplog.text
