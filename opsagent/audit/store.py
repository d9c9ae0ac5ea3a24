"""`AuditStore`: the append-only, hash-chained audit log in one SQLite file.

It implements the gate's `Recorder` protocol (`record`, `count_recent`) and the
idempotency look-ups a restart needs (`has_key`, `find_by_key`). Appends run in
one `BEGIN IMMEDIATE` transaction each (read the previous hash, insert), so several
processes (daemon, chat, Slack) can append at once without forking the chain or
losing rows. There is deliberately no update or delete API, and SQLite triggers
refuse UPDATE and DELETE on the audit table. Read-only queries live in `query`.
"""

from __future__ import annotations

import builtins

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from opsagent.audit import query
from opsagent.audit.chain import GENESIS, AuditHead, ChainReport, row_hash, verify_rows
from opsagent.audit.clocks import CLOCK_KINDS, ClockKind, database_clock
from opsagent.audit.database import AuditBusy, AuditError, DatabaseLocked, GuardedLock, connect
from opsagent.audit.records import AuditRecord, entry_to_row, iso
from opsagent.audit.schema import AUDIT_TABLE, CONTENT_COLUMNS, META_TABLE, SCHEMA_VERSION, ensure_schema
from opsagent.model import AuditEntry


_COLUMNS = (*CONTENT_COLUMNS, "prev_hash", "hash")
_INSERT = (
    f"INSERT INTO [{AUDIT_TABLE}] ({', '.join(f'[{c}]' for c in _COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_LAST_HASH = f"SELECT hash FROM [{AUDIT_TABLE}] ORDER BY id DESC LIMIT 1"
_BY_KEY = f"SELECT id FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?"


__all__ = ["AuditBusy", "AuditError", "AuditStore"]


class AuditStore:
    """The audit log. `AuditStore("opsagent.db")` creates the file and schema if needed
    (`create=False`: only open an existing database). A file that is not an opsagent
    database raises an `AuditError` subclass naming it (see `opsagent.audit.database`).

    A second `record()` with an idempotency key that is already stored writes
    nothing and returns the id of the row that holds the key: recording is
    idempotent, so a restart that replays a step cannot duplicate it.
    """

    def __init__(self, path: str | Path, *, busy_timeout_seconds: float = 30.0, synchronous: str = "NORMAL",
                 create: bool = True) -> None:
        self.path = Path(path)
        conn = connect(self.path, create=create)  # refuses what is not an opsagent database (see `database`)
        conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(conn)
        self._lock = GuardedLock(self.path)  # serialises the connection; SQLite errors become AuditErrors
        try:
            with self._lock:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    with self.transaction():
                        ensure_schema(self.db)
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        except AuditError:
            conn.close()
            raise

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "AuditStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): other writers wait until it ends."""
        with self._lock:
            conn = self.db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise DatabaseLocked(f"{self.path}: database is locked by another process (it stayed locked "
                                     f"through the busy timeout: {exc}); try again later") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    # --- appending (the Recorder protocol) -------------------------------------

    def record(self, entry: AuditEntry) -> int:
        """Append one entry; returns its audit id (or the id already holding its idempotency key)."""
        with self.transaction() as conn:
            audit_id, _ = self.append_in_transaction(conn, entry)
            return audit_id

    def record_many(self, entries: list[AuditEntry]) -> list[int]:
        """Append several entries in one transaction (faster for imports and batches)."""
        with self.transaction() as conn:
            return [self.append_in_transaction(conn, e)[0] for e in entries]

    def append_in_transaction(self, conn: sqlite3.Connection, entry: AuditEntry) -> tuple[int, bool]:
        """Append inside a transaction the caller opened with `transaction()`.

        Returns (audit id, created). created is False when the idempotency key was
        already stored; nothing is written then.
        """
        row = entry_to_row(entry)
        key = row["idempotency_key"]
        if key is not None:
            found = conn.execute(_BY_KEY, (key,)).fetchone()
            if found is not None:
                return int(found[0]), False
        last = conn.execute(_LAST_HASH).fetchone()
        prev_hash = last[0] if last is not None else GENESIS
        values = [row[c] for c in CONTENT_COLUMNS]
        values += [prev_hash, row_hash(prev_hash, row)]
        cursor = conn.execute(_INSERT, values)
        assert cursor.lastrowid is not None   # an INSERT always sets it
        return cursor.lastrowid, True

    @staticmethod
    def _recent(kind: str, since: datetime, **filters: str | None) -> tuple[str, list[Any]]:
        """The WHERE clause and parameters shared by `count_recent` and `times_recent`."""
        where = "kind = ? AND time >= ?"
        params: list[Any] = [kind, iso(since)]
        for column, value in filters.items():  # column names come from the keyword names below, never from input
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        return where, params

    def count_recent(self, *, tool: str | None, namespace: str | None, actor: str | None,
                     since: datetime, outcome: str | None = "ok", kind: str = "result") -> int:
        """How many `kind` rows (default: results, i.e. calls that ran) match, since `since`."""
        where, params = self._recent(kind, since, tool=tool, namespace=namespace, actor=actor, outcome=outcome)
        with self._lock:
            return int(self.db.conn.execute(f"SELECT count(*) FROM [{AUDIT_TABLE}] WHERE {where}", params).fetchone()[0])

    def finished_runs(self, *, since: datetime | None, until: datetime) -> list[str]:
        """Run ids whose `finished` run row was recorded in [since, until], oldest first (only the ids are read)."""
        sql = f"SELECT run_id FROM [{AUDIT_TABLE}] WHERE kind = 'run' AND idempotency_key GLOB '*:run:finished' AND time <= ?"
        params: list[Any] = [iso(until)]
        if since is not None:
            sql += " AND time >= ?"
            params.append(iso(since))
        with self._lock:
            return [r[0] for r in self.db.conn.execute(sql + " ORDER BY id", params) if r[0]]

    def model_spend(self, *, since: datetime, actor: str | None = None) -> tuple[int, int]:
        """(model calls, tokens) recorded since `since`, by `actor` (everyone when None): what spend caps count."""
        with self._lock:
            return query.model_spend(self.db.conn, since=since, actor=actor)

    def times_recent(self, *, tool: str | None, namespace: str | None, actor: str | None,
                     since: datetime, outcome: str | None = "ok", kind: str = "result") -> list[datetime]:
        """The times of the rows `count_recent` counts, oldest first (for when a rate limit frees up)."""
        where, params = self._recent(kind, since, tool=tool, namespace=namespace, actor=actor, outcome=outcome)
        with self._lock:
            rows = self.db.conn.execute(f"SELECT time FROM [{AUDIT_TABLE}] WHERE {where} ORDER BY time", params).fetchall()
        return [datetime.fromisoformat(row[0]) for row in rows]

    # --- the database's clock ----------------------------------------------------

    def clock_kind(self) -> ClockKind | None:
        """Which clock the database's records were made on, as last noted; None if never noted."""
        with self._lock:
            row = self.db.conn.execute(f"SELECT value FROM [{META_TABLE}] WHERE key = 'clock'").fetchone()
        return row[0] if row is not None and row[0] in CLOCK_KINDS else None

    def note_clock(self, kind: ClockKind) -> None:
        """Record which clock a live runtime writing here runs on (the last one noted wins)."""
        if kind not in CLOCK_KINDS:
            raise ValueError(f"unknown clock kind {kind!r}: use one of {', '.join(CLOCK_KINDS)}")
        if self.clock_kind() == kind:
            return
        with self.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO [{META_TABLE}] (key, value) VALUES ('clock', ?)", (kind,))

    def latest_time(self) -> datetime | None:
        """The newest time recorded in the audit log (None when it is empty)."""
        with self._lock:
            value = self.db.conn.execute(f"SELECT max(time) FROM [{AUDIT_TABLE}]").fetchone()[0]
        return datetime.fromisoformat(value) if value is not None else None

    # --- idempotency -----------------------------------------------------------

    def has_key(self, key: str) -> bool:
        with self._lock:
            return self.db.conn.execute(_BY_KEY, (key,)).fetchone() is not None

    def find_by_key(self, key: str) -> AuditRecord | None:
        with self._lock:
            row = self.db.conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?", (key,)).fetchone()
        return AuditRecord.from_row(dict(row)) if row is not None else None

    # --- reading ---------------------------------------------------------------

    def get(self, audit_id: int) -> AuditRecord | None:
        with self._lock:
            row = self.db.conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE id = ?", (audit_id,)).fetchone()
        return AuditRecord.from_row(dict(row)) if row is not None else None

    def count(self) -> int:
        with self._lock:
            return int(self.db.conn.execute(f"SELECT count(*) FROM [{AUDIT_TABLE}]").fetchone()[0])

    def run_entries(self, *, since: datetime) -> list[AuditRecord]:
        """The `run` rows recorded at or after `since`, oldest first (for the ledger's interrupted runs)."""
        return list(reversed(self.list(query.AuditFilter(kind="run", since=since, limit=None))))

    def list(self, filters: query.AuditFilter | None = None, **kwargs: Any) -> list[AuditRecord]:
        """Rows matching the filters, newest first. kwargs are `AuditFilter` fields."""
        with self._lock:
            return query.list_records(self.db.conn, filters or query.AuditFilter(**kwargs))

    def show(self, audit_id: int) -> query.Story | None:
        """The whole story of one action: every row sharing its run, approval or key."""
        with self._lock:
            return query.story(self.db.conn, audit_id)

    def search(self, text: str, *, limit: int = 50) -> builtins.list[AuditRecord]:
        """Full-text search over summary, tool, args, rule name and message (newest first)."""
        self.catch_up_index()
        with self._lock:
            return query.search(self.db.conn, text, limit=limit)

    def catch_up_index(self) -> int:
        """Index the rows an older database held before appends indexed themselves, one short transaction
        per batch, so appends from other processes get the lock between batches. Returns rows indexed."""
        done = 0
        with self._lock:
            backlog = query.fts_backlog(self.db.conn)
        while backlog > 0:
            with self.transaction() as conn:
                step = query.backfill_fts(conn)
            if step == 0:
                break
            done += step
            backlog -= step
        return done

    def finding_history(self, *, since: datetime) -> builtins.list[AuditRecord]:
        """What detection remembers of findings since `since` (see `query.finding_history`)."""
        with self._lock:
            return query.finding_history(self.db.conn, since=since)

    def node_history(self, *, since: datetime) -> builtins.list[AuditRecord]:
        """What detection remembers of nodes since `since` (see `query.node_history`)."""
        with self._lock:
            return query.node_history(self.db.conn, since=since)

    def stats(self, *, since: datetime | None = None, now: datetime | None = None) -> query.AuditStats:
        """Totals from `since` up to `now` (default: now on the database's own clock, see `clocks`)."""
        now = now or database_clock(self).now()
        with self._lock:
            return query.stats(self.db.conn, since=since, now=now)

    def export(self, out: IO[str], *, fmt: str = "jsonl", filters: query.AuditFilter | None = None) -> int:
        """Write rows oldest first as jsonl or csv; returns how many were written."""
        with self._lock:
            return query.export(self.db.conn, out, fmt=fmt, filters=filters)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same state of the file, and no writer waits."""
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def head(self) -> AuditHead:
        """The chain's row count and newest hash: note it elsewhere to check the log against later."""
        with self.reading() as conn:  # the count and the hash of one and the same state
            rows = int(conn.execute(f"SELECT count(*) FROM [{AUDIT_TABLE}]").fetchone()[0])
            last = conn.execute(_LAST_HASH).fetchone()
        return AuditHead(rows=rows, hash=last[0] if last is not None else GENESIS)

    def verify(self, *, anchor: AuditHead | None = None, on_rows: Callable[[int], None] | None = None) -> ChainReport:
        """Recompute the chain; names the first edited, deleted or reordered row. With `anchor`
        (a head noted earlier), a removed tail or a rewritten history up to it fails too.
        `on_rows(n)` is told every 1000 rows read (a progress bar)."""
        def rows(cursor: Any) -> Iterator[dict[str, Any]]:
            for n, r in enumerate(cursor, 1):
                if on_rows is not None and n % 1000 == 0:
                    on_rows(n)
                yield dict(r)

        with self._lock:
            cursor = self.db.conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] ORDER BY id")
            return verify_rows(rows(cursor), anchor=anchor)
