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
SCHEMA_VERSION = 4
# Version 4 keeps the full-text index current as rows are appended (the `audit_fts_insert` trigger), adds the
# composite and partial indexes that windowed reads use, and notes in the FTS state how far the rows written before
# the trigger existed still need indexing (`backfill_to`; caught up in short batches, see `query.backfill_fts`).
FTS_TRIGGER = "audit_fts_insert"
# Successful, applied results that freed GPUs: `stats` finds each workload's last one before its window through
# a partial index that holds nothing else (idx_audit_freeings).
# GPU events are those and the results that may have taken GPUs again (see `opsagent.audit.freed`), in the
# partial index idx_audit_gpu_events. Both clauses are written out: a partial index takes no parameters.
RETURN_TOOLS = ("wake_workload", "scale_workload", "create_workload")
_APPLIED = "kind = 'result' AND outcome = 'ok' AND dry_run = 0"
# exactly `freed.gpus_freed_by(record) > 0`: a number above 0, and no dry run noted in the data either
FREEING_WHERE = (f"{_APPLIED} AND json_type(data, '$.gpus_freed') IN ('integer', 'real') "
                 f"AND json_extract(data, '$.gpus_freed') > 0 AND NOT coalesce(json_extract(data, '$.dry_run'), 0)")
GPU_EVENT_WHERE = (f"{_APPLIED} AND (json_extract(data, '$.gpus_freed') > 0 "
                   f"OR tool IN ({', '.join(repr(t) for t in RETURN_TOOLS)}))")
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
    (("kind", "outcome", "time"), False),   # windowed reads by kind and outcome (detection history, stats)
    (("kind", "time"), False),
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
    db.execute("DROP INDEX IF EXISTS idx_audit_kind_outcome")   # a prefix of idx_audit_kind_outcome_time
    db.execute(f"CREATE INDEX IF NOT EXISTS idx_audit_freeings ON [{AUDIT_TABLE}] (time) WHERE {FREEING_WHERE}")
    db.execute(f"CREATE INDEX IF NOT EXISTS idx_audit_gpu_events ON [{AUDIT_TABLE}] (time) WHERE {GPU_EVENT_WHERE}")
    for sql in _TRIGGERS.values():
        db.execute(sql)
    # External-content FTS5 table (the form sqlite-utils' enable_fts makes, written here so it
    # joins the open transaction), kept current by an insert trigger inside each append's own
    # transaction. The audit table is append-only, so no update or delete trigger is needed.
    cols = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS [{FTS_TABLE}] USING FTS5 ({cols}, content=[{AUDIT_TABLE}])")
    if not db[FTS_STATE_TABLE].exists():
        db.create_table(FTS_STATE_TABLE, {"id": int, "last_indexed_id": int, "backfill_to": int}, pk="id",
                        if_not_exists=True)
    elif "backfill_to" not in db[FTS_STATE_TABLE].columns_dict:
        db.execute(f"ALTER TABLE [{FTS_STATE_TABLE}] ADD COLUMN backfill_to INTEGER")
    db.execute(f"INSERT OR IGNORE INTO [{FTS_STATE_TABLE}] (id, last_indexed_id) VALUES (1, 0)")
    if not db[AUDIT_TABLE].triggers_dict.get(FTS_TRIGGER):
        # Rows already there (an older database) are indexed later in short batches up to here;
        # from now on every append indexes its own row.
        db.execute(f"UPDATE [{FTS_STATE_TABLE}] SET backfill_to = (SELECT coalesce(max(id), 0) FROM [{AUDIT_TABLE}]) "
                   f"WHERE id = 1")
        new = ", ".join(f"new.[{c}]" for c in FTS_COLUMNS)
        db.execute(f"CREATE TRIGGER [{FTS_TRIGGER}] AFTER INSERT ON [{AUDIT_TABLE}] "
                   f"BEGIN INSERT INTO [{FTS_TABLE}] (rowid, {cols}) VALUES (new.id, {new}); END")
    if not db[META_TABLE].exists():
        db.create_table(META_TABLE, {"key": str, "value": str}, pk="key", if_not_exists=True)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
