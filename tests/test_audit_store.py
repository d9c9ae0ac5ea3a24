"""The audit store appends hash-chained rows, refuses edits, and verify() names tampering.

Every test runs on a real SQLite file. Tampering is done the way an attacker with
file access would: raw SQL, after dropping the append-only triggers.
"""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from opsagent.audit import AuditFilter, AuditStore
from opsagent.model import AuditEntry

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def entry(i: int = 0, **overrides) -> AuditEntry:
    values = dict(
        time=T0 + timedelta(minutes=i), kind="result", actor="daemon", channel="daemon", tool="scale_workload",
        args={"namespace": "ml", "name": f"llm-{i % 3}", "replicas": 0}, risk="write", decision="allow",
        rule_file="policies/default.yaml", rule_name="free-idle-gpus", outcome="ok",
        summary=f"scaled ml/llm-{i % 3} to 0", duration_ms=12, data={"gpus_freed": 2},
    )
    values.update(overrides)
    return AuditEntry(**values)


@pytest.fixture
def store(tmp_path):
    s = AuditStore(tmp_path / "audit.db")
    yield s
    s.close()


def raw(store: AuditStore) -> sqlite3.Connection:
    conn = sqlite3.connect(store.path, isolation_level=None)
    return conn


def test_rows_are_stored_with_readable_columns_and_derived_target(store):
    audit_id = store.record(entry(1))
    rec = store.get(audit_id)
    assert rec.tool == "scale_workload" and rec.namespace == "ml" and rec.workload == "llm-1"
    assert rec.args == {"namespace": "ml", "name": "llm-1", "replicas": 0}
    assert rec.time == T0 + timedelta(minutes=1)
    assert rec.duration_ms == 12.0 and rec.data["gpus_freed"] == 2
    cols = {r[1] for r in raw(store).execute("PRAGMA table_info(audit)")}
    assert {"time", "kind", "actor", "args", "namespace", "workload", "rule_name", "prev_hash", "hash"} <= cols


def test_chain_links_each_row_to_the_previous_one(store):
    ids = [store.record(entry(i)) for i in range(5)]
    rows = [store.get(i) for i in ids]
    for before, after in zip(rows, rows[1:]):
        assert after.prev_hash == before.hash
    report = store.verify()
    assert report.ok and report.rows == 5 and report.head_hash == rows[-1].hash


def test_sql_update_and_delete_are_refused_by_triggers(store):
    store.record(entry(0))
    conn = raw(store)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET summary = 'nothing happened' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE id = 1")
    assert store.get(1).summary == "scaled ml/llm-0 to 0"


def test_verify_names_an_edited_row(store):
    for i in range(6):
        store.record(entry(i))
    conn = raw(store)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET outcome = 'error' WHERE id = 4")
    report = store.verify()
    assert not report.ok and report.first_bad_id == 4
    assert "edited" in report.problem


def test_verify_names_where_a_deleted_row_breaks_the_chain(store):
    for i in range(6):
        store.record(entry(i))
    conn = raw(store)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE id = 3")
    report = store.verify()
    assert not report.ok and report.first_bad_id == 4
    assert "row 2" in report.problem and "deleted" in report.problem


def test_verify_names_reordered_rows(store):
    for i in range(6):
        store.record(entry(i))
    conn = raw(store)
    conn.execute("DROP TRIGGER audit_no_update")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(audit)") if r[1] != "id"]
    two, three = (conn.execute(f"SELECT {', '.join(cols)} FROM audit WHERE id = ?", (i,)).fetchone() for i in (2, 3))
    sets = ", ".join(f"{c} = ?" for c in cols)
    conn.execute("UPDATE audit SET idempotency_key = NULL")
    conn.execute(f"UPDATE audit SET {sets} WHERE id = 2", three)
    conn.execute(f"UPDATE audit SET {sets} WHERE id = 3", two)
    report = store.verify()
    assert not report.ok and report.first_bad_id == 2


def test_verify_of_a_rewritten_first_row_names_it(store):
    store.record(entry(0))
    store.record(entry(1))
    conn = raw(store)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET prev_hash = ? WHERE id = 1", ("f" * 64,))
    report = store.verify()
    assert report.first_bad_id == 1 and "start of the log" in report.problem


def test_idempotency_key_second_record_returns_existing_id_and_writes_nothing(store):
    first = store.record(entry(0, idempotency_key="scale:ml/llm-0:cycle-7"))
    again = store.record(entry(1, idempotency_key="scale:ml/llm-0:cycle-7", summary="different"))
    assert again == first and store.count() == 1
    assert store.has_key("scale:ml/llm-0:cycle-7") and not store.has_key("other")
    assert store.find_by_key("scale:ml/llm-0:cycle-7").summary == "scaled ml/llm-0 to 0"
    assert store.find_by_key("other") is None
    assert store.verify().ok


def test_a_reopened_store_continues_the_same_chain(store, tmp_path):
    store.record(entry(0))
    with AuditStore(tmp_path / "audit.db") as again:
        again.record(entry(1))
        assert again.verify().ok and again.count() == 2


def test_count_recent_counts_results_in_the_window(store):
    for i in range(5):
        store.record(entry(i))
    store.record(entry(6, outcome="error"))
    store.record(entry(7, kind="decision"))
    since = T0 + timedelta(minutes=2)
    assert store.count_recent(tool="scale_workload", namespace="ml", actor="daemon", since=since) == 3
    assert store.count_recent(tool="scale_workload", namespace="ml", actor=None, since=since, outcome="error") == 1
    assert store.count_recent(tool="wake_workload", namespace=None, actor=None, since=T0) == 0
    assert store.count_recent(tool=None, namespace="other", actor=None, since=T0) == 0


def test_list_filters_newest_first(store):
    for i in range(9):
        store.record(entry(i, actor="alice" if i % 2 else "daemon"))
    rows = store.list(actor="alice")
    assert [r.id for r in rows] == [8, 6, 4, 2]
    rows = store.list(AuditFilter(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=5)))
    assert [r.id for r in rows] == [6, 5, 4]
    assert [r.workload for r in store.list(workload="llm-2", limit=2)] == ["llm-2", "llm-2"]
    assert store.list(outcome="error") == []


def test_search_finds_rows_appended_after_an_earlier_search(store):
    store.record(entry(0, summary="scaled ml/llm-0 to 0"))
    assert [r.id for r in store.search("llm-0")] == [1]
    store.record(entry(1, tool="cordon_node", args={"node": "gpu-node-7"}, summary="cordoned gpu-node-7"))
    store.record(entry(2, message='wake "inference" now OR NOT', summary="woke it"))
    assert [r.id for r in store.search("gpu-node-7")] == [2]
    assert [r.id for r in store.search("free-idle-gpus")][:1] == [3]
    assert [r.id for r in store.search('"inference" OR')] == [3]  # user text is not FTS syntax
    assert store.search("   ") == []


def test_stats_sum_actions_denials_gpu_hours_and_tokens(store):
    store.record(entry(0))
    store.record(entry(1))
    store.record(entry(2, outcome="error", data=None))
    store.record(entry(3, kind="decision", decision="deny", outcome="denied", rule_name="no-prod-deletes"))
    store.record(entry(4, kind="run", model="llama3.1", prompt_tokens=100, completion_tokens=20, tool=None, args=None,
                       idempotency_key="finding:x:run:llm1"))
    store.record(entry(5, kind="run", model="llama3.1", prompt_tokens=50, completion_tokens=5, tool=None, args=None,
                       idempotency_key="finding:x:run:llm2"))
    # the run's finished row repeats its totals: not a model call, not counted again
    store.record(entry(5, kind="run", model="llama3.1", prompt_tokens=150, completion_tokens=25, tool=None, args=None,
                       idempotency_key="finding:x:run:finished"))
    store.record(entry(6, kind="approval", outcome="pending", approval_id=1))
    store.record(entry(7, kind="approval", outcome="pending", approval_id=2))
    store.record(entry(8, kind="approval", outcome="approved", approval_id=1))
    s = store.stats(now=T0 + timedelta(hours=1))
    assert {(a.tool, a.outcome): a.count for a in s.actions} == {("scale_workload", "ok"): 2, ("scale_workload", "error"): 1}
    assert [(d.rule_name, d.count) for d in s.denials] == [("no-prod-deletes", 1)]
    # llm-0 freed 2 GPUs at T0 and llm-1 2 GPUs at T0+1m; nothing woke them before now (T0+1h)
    assert s.gpus_freed == 4 and s.gpu_hours_freed == pytest.approx(2 * 1 + 2 * 59 / 60, abs=1e-3)
    assert (s.llm_calls, s.prompt_tokens, s.completion_tokens) == (2, 150, 25)
    assert s.approvals_waiting == 1
    assert store.stats(since=T0 + timedelta(minutes=4)).actions == []


def test_show_tells_the_story_of_one_action(store):
    store.record(entry(0, kind="proposal", run_id="run-1", outcome=None, finding_id="idle_gpu:ml/llm-0"))
    store.record(entry(1, kind="decision", run_id="run-1", decision="require_approval", outcome="pending"))
    store.record(entry(2, kind="result", run_id="run-2"))  # another run
    store.record(entry(3, kind="approval", run_id="run-1", approval_id=7, outcome="pending"))
    store.record(entry(4, kind="approval", actor="bob", approval_id=7, outcome="approved"))
    done = store.record(entry(5, kind="result", actor="bob", approval_id=7, idempotency_key="approval:7:run"))
    story = store.show(done)
    assert [r.id for r in story.rows] == [1, 2, 4, 5, 6]
    assert [r.kind for r in story.rows] == ["proposal", "decision", "approval", "approval", "result"]
    assert store.show(999) is None
    assert [r.id for r in store.show(3).rows] == [3]


def test_export_jsonl_and_csv_round_trip_every_row(store):
    for i in range(4):
        store.record(entry(i))
    out = io.StringIO()
    assert store.export(out, fmt="jsonl") == 4
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["id"] for x in lines] == [1, 2, 3, 4] and lines[0]["args"]["namespace"] == "ml"
    out = io.StringIO()
    assert store.export(out, fmt="csv") == 4
    header, *rows = out.getvalue().splitlines()
    assert header.startswith("id,time,kind,actor") and len(rows) == 4
    with pytest.raises(ValueError, match="unknown export format"):
        store.export(io.StringIO(), fmt="xml")


def test_naive_times_are_taken_as_utc(store):
    audit_id = store.record(entry(0, time=datetime(2026, 1, 5, 12, 0)))
    assert store.get(audit_id).time == T0
