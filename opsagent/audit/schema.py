"""The audit database schema: tables, indexes, append-only triggers and full-text search.

Created with sqlite-utils so the file stays plain SQLite with readable table and
column names (sqlite3 or Datasette can open it). This module only creates and
describes the schema; it never appends or queries rows (see `store` and `query`).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

AUDIT_TABLE = "audit"
FTS_TABLE = "audit_fts"
FTS_STATE_TABLE = "audit_fts_state"
META_TABLE = "audit_meta"   # key/value facts about the database itself (e.g. which clock it runs on); not chained
SCHEMA_VERSION = 3
# A model call is the `run` row the agent writes per call, keyed `{run_id}:run:llm{n}` (see opsagent.agent.graph);
# spend caps and stats count exactly these rows, through a partial index that holds nothing else.
MODEL_CALL_WHERE = "kind = 'run' AND idempotency_key GLOB '*:run:llm[0-9]*'"

# The content of one audit row, in hashing and insert order. `id`, `prev_hash` and
# `hash` are added by the store; everything here is covered by the hash chain.
CONTENT_COLUMNS: dict[str, type] = {
    "time": str,
    "kind": str,
    "actor": str,
    "channel": str,
    "run_id": str,
    "finding_id": str,
    "message": str,
    "tool": str,
    "args": str,            # canonical JSON
    "namespace": str,       # derived from args, for filtering
    "workload": str,        # derived from args, for filtering
    "risk": str,
    "decision": str,
    "rule_file": str,
    "rule_name": str,
    "approval_id": int,
    "dry_run": int,
    "outcome": str,
    "summary": str,
    "duration_ms": float,
    "model": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "idempotency_key": str,
    "data": str,            # canonical JSON
}
FTS_COLUMNS = ("summary", "tool", "args", "rule_name", "message")

_TRIGGERS = {
    "audit_no_update": f"""
        CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON {AUDIT_TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be updated'); END
    """,
    "audit_no_delete": f"""
        CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON {AUDIT_TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be deleted'); END
    """,
}

_INDEXES: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("time",), False),
    (("tool", "time"), False),
    (("namespace", "workload"), False),
    (("actor",), False),
    (("run_id",), False),
    (("approval_id",), False),
    (("kind", "outcome"), False),
    (("idempotency_key",), True),   # UNIQUE; SQLite lets many rows hold NULL
)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create whatever is missing. The caller holds a write transaction (BEGIN IMMEDIATE),
    so several processes opening a new file at once see all of it or none of it."""
    if not db[AUDIT_TABLE].exists():
        columns: dict[str, Any] = {"id": int, **CONTENT_COLUMNS, "prev_hash": str, "hash": str}
        db.create_table(
            AUDIT_TABLE,
            columns,
            pk="id",
            not_null={"time", "kind", "actor", "prev_hash", "hash"},
            defaults={"dry_run": 0},
            if_not_exists=True,
        )
    for cols, unique in _INDEXES:
        name = "idx_audit_" + "_".join(cols)
        db[AUDIT_TABLE].create_index(list(cols), index_name=name, unique=unique, if_not_exists=True)
    db.execute(f"CREATE INDEX IF NOT EXISTS idx_audit_model_calls ON [{AUDIT_TABLE}] (actor, time) WHERE {MODEL_CALL_WHERE}")
    for sql in _TRIGGERS.values():
        db.execute(sql)
    # External-content FTS5 table with no triggers (the form sqlite-utils' enable_fts
    # makes, written here so it joins the open transaction): it is filled in catch-up
    # batches when someone searches, never on the append path.
    cols = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS [{FTS_TABLE}] USING FTS5 ({cols}, content=[{AUDIT_TABLE}])")
    if not db[FTS_STATE_TABLE].exists():
        db.create_table(FTS_STATE_TABLE, {"id": int, "last_indexed_id": int}, pk="id", if_not_exists=True)
    db.execute(f"INSERT OR IGNORE INTO [{FTS_STATE_TABLE}] (id, last_indexed_id) VALUES (1, 0)")
    if not db[META_TABLE].exists():
        db.create_table(META_TABLE, {"key": str, "value": str}, pk="key", if_not_exists=True)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
