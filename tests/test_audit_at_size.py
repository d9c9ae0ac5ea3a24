"""The audit log stays cheap to read as it grows: appends index themselves for search, a database
from schema 3 is migrated (its earlier rows indexed in short batches), `stats` reads only its window
and yet gives the same GPU-hours as a pass over the whole log, and detection's history holds only
the window's rows that name a finding.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from opsagent.audit import AuditFilter, AuditStore, query
from opsagent.audit.freed import gpu_hours_freed
from opsagent.audit.schema import FTS_TABLE, FTS_TRIGGER, SCHEMA_VERSION
from opsagent.model import AuditEntry

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def row(i: int, **overrides) -> AuditEntry:
    values = dict(time=T0 + timedelta(minutes=i), kind="result", actor="daemon", tool="scale_workload",
                  args={"namespace": "ml", "name": f"llm-{i}", "replicas": 0}, outcome="ok",
                  summary=f"scaled ml/llm-{i} to 0 word{i}")
    values.update(overrides)
    return AuditEntry(**values)


def indexed(path, word: str) -> list[int]:
    """Row ids the full-text index holds for `word`, read straight from the file (no catch-up runs)."""
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f"SELECT rowid FROM [{FTS_TABLE}] WHERE [{FTS_TABLE}] MATCH ?", (word,))]
    finally:
        conn.close()


def test_an_append_indexes_its_own_row_for_search(tmp_path):
    path = tmp_path / "a.db"
    with AuditStore(path) as store:
        first = store.record(row(1))
        assert indexed(path, "word1") == [first]
        store.search("word1")
        second = store.record(row(2))
        assert indexed(path, "word2") == [second]   # no search ran since this append
        assert [r.id for r in store.search("word2")] == [second]


def as_schema_3(path) -> None:
    """Turn a fresh database into what schema 3 made: no insert trigger, no backfill mark, the old indexes."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"DROP TRIGGER IF EXISTS {FTS_TRIGGER}")
    conn.execute(f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}]) VALUES ('delete-all')")
    for name in ("idx_audit_kind_outcome_time", "idx_audit_kind_time", "idx_audit_freeings", "idx_audit_gpu_events"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("CREATE INDEX idx_audit_kind_outcome ON audit (kind, outcome)")
    conn.execute("CREATE TABLE state3 (id INTEGER PRIMARY KEY, last_indexed_id INTEGER)")
    conn.execute("INSERT INTO state3 VALUES (1, 0)")
    conn.execute("DROP TABLE audit_fts_state")
    conn.execute("ALTER TABLE state3 RENAME TO audit_fts_state")
    conn.execute("PRAGMA user_version = 3")
    conn.close()


def test_a_schema_3_database_is_migrated_and_its_rows_indexed_in_batches(tmp_path):
    path = tmp_path / "old.db"
    with AuditStore(path) as store:   # seven rows appended the way schema 3 did: without indexing them
        store.db.conn.execute(f"DROP TRIGGER {FTS_TRIGGER}")
        ids = store.record_many([row(i) for i in range(7)])
    as_schema_3(path)
    assert indexed(path, "word3") == []

    with AuditStore(path) as store:
        conn = store.db.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert query.fts_backlog(conn) == 7
        new = store.record(row(100))
        assert indexed(path, "word100") == [new]      # new appends index themselves at once
        with store.transaction() as tx:
            assert query.backfill_fts(tx, batch=3) == 3
        assert query.fts_backlog(conn) == 4
        assert indexed(path, "word1") == [ids[1]] and indexed(path, "word5") == []
        assert [r.id for r in store.search("word5")] == [ids[5]]   # the rest is caught up before searching
        assert query.fts_backlog(conn) == 0
        assert store.catch_up_index() == 0
        assert sorted(r.id for r in store.search("scaled")) == sorted([*ids, new])
        assert store.verify().ok
        assert store.list(AuditFilter(kind="result", outcome="ok", limit=None))


def gpu_event(rng: random.Random, minute: int) -> AuditEntry:
    name = f"w{rng.randrange(4)}"
    choice = rng.random()
    if choice < 0.4:
        return AuditEntry(time=T0 + timedelta(minutes=minute), kind="result", actor="daemon", tool="sleep_workload",
                          outcome="ok", args={"namespace": "ml", "name": name}, duration_ms=5.0,
                          data={"workload": f"ml/{name}", "gpus_freed": rng.choice([1, 2, 4]),
                                "dry_run": rng.random() < 0.1})
    if choice < 0.7:
        return AuditEntry(time=T0 + timedelta(minutes=minute), kind="result", actor="proxy", tool="wake_workload",
                          outcome=rng.choice(["ok", "ok", "error"]), args={"namespace": "ml", "name": name},
                          duration_ms=rng.choice([0.0, 90_000.0]), data={"workload": f"ml/{name}", "replicas": 1})
    if choice < 0.85:
        replicas = rng.choice([0, 2])
        return AuditEntry(time=T0 + timedelta(minutes=minute), kind="result", actor="alice", tool="scale_workload",
                          outcome="ok", args={"namespace": "ml", "name": name, "replicas": replicas},
                          data={"workload": f"ml/{name}", "replicas": replicas})
    return AuditEntry(time=T0 + timedelta(minutes=minute), kind="decision", actor="daemon", tool="sleep_workload",
                      decision="deny", args={"namespace": "ml", "name": name})


@pytest.mark.parametrize("seed", range(6))
def test_windowed_stats_give_the_gpu_hours_of_a_pass_over_the_whole_log(tmp_path, seed):
    rng = random.Random(seed)
    with AuditStore(tmp_path / "s.db") as store:
        store.record_many([gpu_event(rng, minute) for minute in range(0, 3000, 7)])
        everything = store.list(AuditFilter(limit=None))[::-1]
        end = T0 + timedelta(minutes=3100)
        for since_minute in (0, 500, 1234, 2999, 3050):
            since = T0 + timedelta(minutes=since_minute)
            expected = gpu_hours_freed(everything, since=since, end=end)
            assert store.stats(since=since, now=end).gpu_hours_freed == expected
        assert store.stats(since=None, now=end).gpu_hours_freed == gpu_hours_freed(everything, since=None, end=end)


def test_finding_history_reads_only_the_window_and_rows_naming_a_finding(tmp_path):
    with AuditStore(tmp_path / "h.db") as store:
        store.record_many([
            row(0, finding_id="idle:ml/a"),                                        # before the window
            row(100, finding_id="idle:ml/a"),
            row(101),                                                              # names no finding
            row(102, finding_id="idle:ml/b", outcome="error"),
            AuditEntry(time=T0 + timedelta(minutes=103), kind="run", actor="daemon", outcome="ok",
                       finding_id="idle:ml/b", data={"resolved": True}),
            AuditEntry(time=T0 + timedelta(minutes=104), kind="run", actor="daemon", outcome="ok",
                       finding_id="idle:ml/c", data={"resolved": False}),
            AuditEntry(time=T0 + timedelta(minutes=105), kind="approval", actor="bob", outcome="rejected",
                       finding_id="idle:ml/d", tool="sleep_workload", summary="rejected: busy"),
        ])
        got = store.finding_history(since=T0 + timedelta(minutes=50))
        assert [(r.kind, r.finding_id, r.time.minute + 60 * r.time.hour) for r in got] == [
            ("approval", "idle:ml/d", 105), ("run", "idle:ml/b", 103), ("result", "idle:ml/a", 100)]
