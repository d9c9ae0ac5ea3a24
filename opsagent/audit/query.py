"""Read-side queries over the audit log: list with filters, the story of one action,
full-text search, statistics and export.

Everything here reads, except `backfill_fts`, which indexes, in short batches,
the rows an older database held before its full-text index was kept current on
append (it never touches the audit table itself). Functions take a sqlite3 connection; `AuditStore` holds it.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import BaseModel, Field

from opsagent.audit.freed import RETURN_TOOLS, GpuEvent, gpu_hours_freed
from opsagent.audit.records import AuditRecord, iso
from opsagent.audit.schema import (
    AUDIT_TABLE,
    CONTENT_COLUMNS,
    FREEING_WHERE,
    FTS_COLUMNS,
    FTS_STATE_TABLE,
    FTS_TABLE,
    GPU_EVENT_WHERE,
    MODEL_CALL_WHERE,
)
from opsagent.model import Effect, EntryKind, Outcome

_ALL_COLUMNS = ("id", *CONTENT_COLUMNS, "prev_hash", "hash")


class AuditFilter(BaseModel):
    """Which rows `list` and `export` return. Every field is optional; they combine with AND."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    tool: str | None = None
    namespace: str | None = None
    workload: str | None = None
    outcome: Outcome | None = None
    decision: Effect | None = None
    kind: EntryKind | None = None
    run_id: str | None = None
    limit: int | None = Field(default=50, ge=1)

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("time >= ?")
            params.append(iso(self.since))
        if self.until is not None:
            clauses.append("time <= ?")
            params.append(iso(self.until))
        for column in ("actor", "tool", "namespace", "workload", "outcome", "decision", "kind", "run_id"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _records(cursor: sqlite3.Cursor) -> list[AuditRecord]:
    return [AuditRecord.from_row(dict(row)) for row in cursor]


def list_records(conn: sqlite3.Connection, filters: AuditFilter) -> list[AuditRecord]:
    where, params = filters.where()
    sql = f"SELECT * FROM [{AUDIT_TABLE}]{where} ORDER BY id DESC"
    if filters.limit is not None:
        sql += f" LIMIT {int(filters.limit)}"
    return _records(conn.execute(sql, params))


class Story(BaseModel):
    """One action told in order: finding → proposal → decision → approval → result."""

    id: int
    rows: list[AuditRecord]


def story(conn: sqlite3.Connection, audit_id: int) -> Story | None:
    """The row plus every row sharing its run id, approval id or idempotency key.

    One hop further: rows of the runs that the approval rows name, so an approval
    decided from the CLI links back to the agent run that proposed the call.
    """
    row = conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE id = ?", (audit_id,)).fetchone()
    if row is None:
        return None
    ids: set[int] = {audit_id}
    runs = {row["run_id"]} - {None}
    approvals = {row["approval_id"]} - {None}
    if row["idempotency_key"] is not None:
        ids.update(r[0] for r in conn.execute(
            f"SELECT id FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?", (row["idempotency_key"],)))
    for _ in range(2):  # runs → approvals → runs
        for run_id in list(runs):
            for r in conn.execute(f"SELECT id, approval_id FROM [{AUDIT_TABLE}] WHERE run_id = ?", (run_id,)):
                ids.add(r[0])
                if r[1] is not None:
                    approvals.add(r[1])
        for approval_id in list(approvals):
            for r in conn.execute(f"SELECT id, run_id FROM [{AUDIT_TABLE}] WHERE approval_id = ?", (approval_id,)):
                ids.add(r[0])
                if r[1] is not None:
                    runs.add(r[1])
    marks = ",".join("?" for _ in ids)
    rows = _records(conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE id IN ({marks}) ORDER BY id", sorted(ids)))
    return Story(id=audit_id, rows=rows)


# --- the history detection reads ----------------------------------------------

# What detection remembers of a finding: ok writes made for it (the caller drops reads), runs that saw it
# resolved, and calls people rejected for it. Each part is one range of idx_audit_kind_outcome_time.
_HISTORY_PARTS = (
    "kind = 'result' AND outcome = 'ok'",
    "kind = 'run' AND outcome = 'ok' AND json_extract(data, '$.resolved') = 1",
    "kind = 'approval' AND outcome = 'rejected' AND tool IS NOT NULL",
)


def finding_history(conn: sqlite3.Connection, *, since: datetime) -> list[AuditRecord]:
    """The rows since `since` that detection's history of findings is made of (see `_HISTORY_PARTS`),
    only those naming a finding, newest first."""
    parts = " UNION ALL ".join(
        f"SELECT * FROM [{AUDIT_TABLE}] WHERE {p} AND time >= ? AND finding_id IS NOT NULL" for p in _HISTORY_PARTS)
    return _records(conn.execute(f"SELECT * FROM ({parts}) ORDER BY id DESC", [iso(since)] * len(_HISTORY_PARTS)))


# What detection remembers of nodes over a longer lookback than the finding history: why a node was cordoned
# must outlive the hour of events the detectors see. Runs started for node_unhealthy findings (each records the
# finding's details) and the cordons and uncordons that went through.
_NODE_PARTS = (
    "kind = 'run' AND time >= ? AND finding_id GLOB 'node_unhealthy:*' AND idempotency_key GLOB '*:run:started'",
    "kind = 'result' AND outcome = 'ok' AND time >= ? AND tool IN ('cordon_node', 'uncordon_node') "
    "AND finding_id IS NOT NULL",
)


def node_history(conn: sqlite3.Connection, *, since: datetime) -> list[AuditRecord]:
    """The rows since `since` that detection's memory of nodes is made of (see `_NODE_PARTS`), newest first."""
    parts = " UNION ALL ".join(f"SELECT * FROM [{AUDIT_TABLE}] WHERE {p}" for p in _NODE_PARTS)
    return _records(conn.execute(f"SELECT * FROM ({parts}) ORDER BY id DESC", [iso(since)] * len(_NODE_PARTS)))


# --- full-text search ----------------------------------------------------------


FTS_BATCH_ROWS = 2000   # rows indexed per backfill transaction: a few milliseconds of write lock each


def fts_backlog(conn: sqlite3.Connection) -> int:
    """How many rows written before the index was kept current are still unindexed (0 once caught up)."""
    last, until = conn.execute(f"SELECT last_indexed_id, coalesce(backfill_to, 0) FROM [{FTS_STATE_TABLE}] "
                               f"WHERE id = 1").fetchone()
    return max(int(until) - int(last), 0)


def backfill_fts(conn: sqlite3.Connection, *, batch: int = FTS_BATCH_ROWS) -> int:
    """Index up to `batch` of the rows an older database held before its insert trigger existed.
    Call inside a write transaction; returns how many rows it indexed (0: nothing left).

    Rows appended since the trigger was made index themselves, so this only ever walks the
    fixed range (last_indexed_id, backfill_to], in batches short enough for appends to interleave.
    """
    last, until = conn.execute(f"SELECT last_indexed_id, coalesce(backfill_to, 0) FROM [{FTS_STATE_TABLE}] "
                               f"WHERE id = 1").fetchone()
    if until <= last:
        return 0
    top = min(int(until), int(last) + batch)
    cols = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    conn.execute(
        f"INSERT INTO [{FTS_TABLE}] (rowid, {cols}) SELECT id, {cols} FROM [{AUDIT_TABLE}] WHERE id > ? AND id <= ?",
        (last, top),
    )
    conn.execute(f"UPDATE [{FTS_STATE_TABLE}] SET last_indexed_id = ? WHERE id = 1", (top,))
    return int(top - last)


def fts_query(text: str) -> str:
    """Each word as a quoted FTS5 string, so user text cannot be FTS syntax; words AND together."""
    words = [w for w in text.replace('"', " ").split() if w]
    return " ".join(f'"{w}"' for w in words)


def search(conn: sqlite3.Connection, text: str, *, limit: int = 50) -> list[AuditRecord]:
    match = fts_query(text)
    if not match:
        return []
    # The newest matches come straight from the index in rowid order, so a word on every row costs no more than a rare one.
    sql = (f"SELECT * FROM [{AUDIT_TABLE}] WHERE id IN (SELECT rowid FROM [{FTS_TABLE}] WHERE [{FTS_TABLE}] MATCH ? "
           f"ORDER BY rowid DESC LIMIT ?) ORDER BY id DESC")
    return _records(conn.execute(sql, (match, int(limit))))


# --- statistics ----------------------------------------------------------------


class ToolCount(BaseModel):
    tool: str | None
    outcome: str | None
    count: int


class RuleCount(BaseModel):
    rule_file: str | None
    rule_name: str | None
    count: int


class AuditStats(BaseModel):
    rows: int
    actions: list[ToolCount] = Field(description="result rows per tool and outcome")
    denials: list[RuleCount] = Field(description="deny decisions per rule")
    approvals_waiting: int = Field(description="approvals requested, not decided, and not past their expiry")
    gpu_hours_freed: float = Field(description="GPUs freed × hours until the workload came back (or now), "
                                               "within the range; see `opsagent.audit.freed`")
    gpus_freed: float = Field(description="GPUs freed by successful, non-dry-run results in the range")
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int


WORKLOAD_KEY = ("CASE WHEN coalesce(namespace, '') != '' AND coalesce(workload, '') != '' "
                "THEN namespace || '/' || workload ELSE json_extract(data, '$.workload') END")   # `freed.workload_of`


# One GPU event per row, computed in SQL exactly as `freed.event_of` computes it from a record:
# workload, time, GPUs freed (0 unless a freeing), and whether it is a return (to one or more replicas).
_REPLICAS = ("CASE WHEN json_type(data, '$.replicas') IS NOT NULL THEN json_extract(data, '$.replicas') "
             "ELSE json_extract(args, '$.replicas') END")
_REPLICAS_TYPE = ("CASE WHEN json_type(data, '$.replicas') IS NOT NULL THEN json_type(data, '$.replicas') "
                  "ELSE json_type(args, '$.replicas') END")
GPU_EVENT_COLUMNS = (
    f"{WORKLOAD_KEY}, time, CASE WHEN {FREEING_WHERE} THEN json_extract(data, '$.gpus_freed') ELSE 0 END, "
    f"CASE WHEN NOT coalesce(json_extract(data, '$.dry_run'), 0) AND tool IN ({', '.join(repr(t) for t in RETURN_TOOLS)}) "
    f"AND (tool = 'wake_workload' OR ({_REPLICAS_TYPE} IN ('integer', 'true') AND {_REPLICAS} > 0)) "
    f"THEN coalesce(duration_ms, 0) END"
)


def _events(cursor: sqlite3.Cursor) -> list[GpuEvent]:
    out = []
    for workload, at, gpus, waited_ms in cursor:
        when = datetime.fromisoformat(at)
        back = when - timedelta(milliseconds=waited_ms) if waited_ms is not None else None
        out.append(GpuEvent(str(workload) if workload else None, when, float(gpus), back))
    return out


def _gpu_events(conn: sqlite3.Connection, since: datetime | None, end: datetime) -> list[GpuEvent]:
    """The GPU events `gpu_hours_freed` needs for [since, end], oldest first: those within the range, plus,
    for each workload, its events from its last freeing before `since` on (they decide whether its GPUs
    were still free when the range began).

    Earlier records cannot change the result: a freeing opens a new period whatever came before it.
    Both reads go through partial indexes that hold only freeings (idx_audit_freeings) or GPU events
    (idx_audit_gpu_events), and return a few columns computed in SQL, never whole rows.
    """
    select = f"SELECT {GPU_EVENT_COLUMNS} FROM [{AUDIT_TABLE}] WHERE {GPU_EVENT_WHERE}"
    if since is None:
        return _events(conn.execute(f"{select} AND time <= ? ORDER BY time, id", [iso(end)]))
    lo = iso(since)
    last_freeing = {w: datetime.fromisoformat(t) for w, t in conn.execute(
        f"SELECT w, max(time) FROM (SELECT {WORKLOAD_KEY} AS w, time FROM [{AUDIT_TABLE}] "
        f"WHERE {FREEING_WHERE} AND time < ?) WHERE w IS NOT NULL GROUP BY w", [lo])}
    carried: list[GpuEvent] = []
    if last_freeing:
        earliest = iso(min(last_freeing.values()))
        for event in _events(conn.execute(f"{select} AND time >= ? AND time < ? ORDER BY time, id", [earliest, lo])):
            start = last_freeing.get(event.workload or "")
            if start is not None and event.time >= start:
                carried.append(event)
    return carried + _events(conn.execute(f"{select} AND time >= ? AND time <= ? ORDER BY time, id", [lo, iso(end)]))


def stats(conn: sqlite3.Connection, *, since: datetime | None = None, now: datetime) -> AuditStats:
    """Totals over rows from `since` (all when None); `now` ends GPU-hours still running and expires approvals."""
    cond, params = ("time >= ?", [iso(since)]) if since is not None else ("1 = 1", [])
    t = f"[{AUDIT_TABLE}]"

    def one(sql: str, extra: list[Any] | None = None) -> Any:
        return conn.execute(sql, [*params, *(extra or [])]).fetchone()[0]

    actions = [ToolCount(tool=r[0], outcome=r[1], count=r[2]) for r in conn.execute(
        f"SELECT tool, outcome, count(*) FROM {t} WHERE kind = 'result' AND {cond} "
        f"GROUP BY tool, outcome ORDER BY count(*) DESC, tool", params)]
    denials = [RuleCount(rule_file=r[0], rule_name=r[1], count=r[2]) for r in conn.execute(
        f"SELECT rule_file, rule_name, count(*) FROM {t} WHERE kind = 'decision' AND decision = 'deny' AND {cond} "
        f"GROUP BY rule_file, rule_name ORDER BY count(*) DESC, rule_name", params)]
    # A request is waiting while nothing decided it and its expiry (noted on the request row) is still ahead.
    waiting = one(
        f"SELECT count(DISTINCT approval_id) FROM {t} WHERE kind = 'approval' AND outcome = 'pending' AND {cond} "
        f"AND coalesce(json_extract(data, '$.expires_at') > ?, 1) "
        f"AND approval_id NOT IN (SELECT approval_id FROM {t} WHERE kind = 'approval' "
        f"AND approval_id IS NOT NULL AND outcome IN ('approved', 'rejected', 'expired'))", [iso(now)])
    return AuditStats(
        rows=one(f"SELECT count(*) FROM {t} WHERE {cond}"),
        actions=actions,
        denials=denials,
        approvals_waiting=waiting,
        gpu_hours_freed=gpu_hours_freed(_gpu_events(conn, since, now), since=since, end=now),
        gpus_freed=one(f"SELECT coalesce(sum(json_extract(data, '$.gpus_freed')), 0) FROM {t} "
                       f"WHERE kind = 'result' AND outcome = 'ok' AND dry_run = 0 AND data IS NOT NULL "
                       f"AND coalesce(json_extract(data, '$.dry_run'), 0) = 0 "
                       f"AND json_extract(data, '$.gpus_freed') > 0 AND {cond}"),
        # model calls only: a run's `finished` row repeats its totals and must not count twice
        llm_calls=one(f"SELECT count(*) FROM {t} WHERE {MODEL_CALL_WHERE} AND {cond}"),
        prompt_tokens=one(f"SELECT coalesce(sum(prompt_tokens), 0) FROM {t} WHERE {MODEL_CALL_WHERE} AND {cond}"),
        completion_tokens=one(f"SELECT coalesce(sum(completion_tokens), 0) FROM {t} WHERE {MODEL_CALL_WHERE} AND {cond}"),
    )


def model_spend(conn: sqlite3.Connection, *, since: datetime, actor: str | None = None) -> tuple[int, int]:
    """(model calls, prompt + completion tokens) recorded at or after `since`, by `actor` or by everyone.

    Reads only the partial index of model-call rows (idx_audit_model_calls), so it stays cheap as the log grows.
    """
    sql = (f"SELECT count(*), coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0) "
           f"FROM [{AUDIT_TABLE}] WHERE {MODEL_CALL_WHERE} AND time >= ?")
    params: list[Any] = [iso(since)]
    if actor is not None:
        sql += " AND actor = ?"
        params.append(actor)
    calls, tokens = conn.execute(sql, params).fetchone()
    return int(calls), int(tokens)


# --- export --------------------------------------------------------------------

EXPORT_FORMATS = ("jsonl", "csv")


def export(conn: sqlite3.Connection, out: IO[str], *, fmt: str = "jsonl", filters: AuditFilter | None = None) -> int:
    """Stream rows oldest first. jsonl keeps args/data as objects; csv as JSON text."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    filters = filters or AuditFilter(limit=None)
    where, params = filters.where()
    sql = f"SELECT * FROM [{AUDIT_TABLE}]{where} ORDER BY id"
    if filters.limit is not None:
        sql += f" LIMIT {int(filters.limit)}"
    writer = csv.DictWriter(out, fieldnames=list(_ALL_COLUMNS)) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    for row in conn.execute(sql, params):
        record = AuditRecord.from_row(dict(row))
        if writer is not None:
            writer.writerow(record.flat())
        else:
            out.write(json.dumps(record.model_dump(mode="json"), sort_keys=True) + "\n")
        count += 1
    return count
