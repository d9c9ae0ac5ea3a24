"""Opening the opsagent database: the one place a connection to it is made.

Every part that keeps state in the SQLite file (the audit store, the approval
queue, the Slack approval feed, the agent's checkpoints) gets its connection
from `connect`, so every one of them refuses the same bad files the same way:

- a path that does not exist becomes a new opsagent database, but only when its
  directory exists (no directories are created), and it is built in a private
  file and linked into place, so nobody ever sees a half-made database;
- an existing file must be SQLite (not empty, not text, not cut short) and
  carry opsagent's stamp (`PRAGMA application_id`, with the schema version in
  `user_version`). A database from an earlier opsagent version, which has no
  stamp, is recognised by its exact schema and stamped; anything else (another
  program's database, an `audit` table of another shape) is refused, never adopted;
- open-time checks wait at most `OPEN_TIMEOUT_SECONDS` for another process's
  lock, then say the database is locked.

Errors are `AuditError` subclasses named for what the caller should do; each
message names the file. `guarded(path)` turns SQLite errors met later (a page
damaged mid-file, a lock held too long) into the same errors. This module opens
and checks; it never appends, queries or changes audit rows.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from opsagent.audit.schema import AUDIT_TABLE, SCHEMA_VERSION, ensure_schema

# The connection and row types the store's callers annotate with: the approval queue and
# chat's confirmations work inside the store's transactions without importing sqlite3.
Connection = sqlite3.Connection
Row = sqlite3.Row

APPLICATION_ID = 0x4F707341   # "OpsA": marks a SQLite file as an opsagent database
OPEN_TIMEOUT_SECONDS = 5.0
# Earlier opsagent versions wrote user_version 2 and no application id; their audit table had exactly these columns.
LEGACY_VERSION = 2
LEGACY_TRIGGERS = frozenset({"audit_no_update", "audit_no_delete"})
LEGACY_AUDIT_COLUMNS = (
    "id", "time", "kind", "actor", "channel", "run_id", "finding_id", "message", "tool", "args", "namespace",
    "workload", "risk", "decision", "rule_file", "rule_name", "approval_id", "dry_run", "outcome", "summary",
    "duration_ms", "model", "prompt_tokens", "completion_tokens", "idempotency_key", "data", "prev_hash", "hash",
)


class AuditError(Exception):
    """Base of audit-store errors. The message names the database file."""


class AuditBusy(AuditError):
    """Another process held the database longer than the busy timeout. Retry later."""


class DatabaseLocked(AuditBusy):
    """Another process holds a lock on the database; try again when it has finished."""


class DatabaseMissing(AuditError):
    """There is no database at the path (or its directory does not exist)."""


class NotAnOpsagentDatabase(AuditError):
    """The file is not an opsagent database (not SQLite, empty, another program's, or a newer schema)."""


class DatabaseCorrupt(AuditError):
    """The file is an SQLite database but damaged (truncated, pages overwritten): restore it from a backup."""


def classify(path: Path, exc: sqlite3.Error, *, waited: float | None = None) -> AuditError:
    """Our error for an SQLite error, by what the caller should do about it."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        how_long = f"waited {waited:g} s" if waited is not None else "waited for its busy timeout"
        return DatabaseLocked(f"{path}: database is locked by another process ({how_long}); "
                              "try again when it has finished")
    if code == sqlite3.SQLITE_NOTADB:
        return NotAnOpsagentDatabase(f"{path}: not an opsagent database (not an SQLite file)")
    if code == sqlite3.SQLITE_CORRUPT:
        return DatabaseCorrupt(f"{path}: the database is damaged ({exc}); restore it from a backup")
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH):
        return AuditError(f"{path}: cannot open the database for writing ({exc}); check the file's permissions")
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL):
        return AuditError(f"{path}: cannot read or write the database ({exc}); check the disk")
    return AuditError(f"{path}: database error: {exc}")


@contextmanager
def guarded(path: Path, *, waited: float | None = None) -> Iterator[None]:
    """Turn SQLite errors raised inside the block into `AuditError`s naming `path`.

    Constraint and programming errors (IntegrityError, ProgrammingError,
    InterfaceError) pass through unchanged: they are the caller's to handle.
    """
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as exc:
        raise classify(path, exc, waited=waited) from exc


class GuardedLock:
    """A re-entrant lock whose block also translates SQLite errors (see `guarded`).

    The store serialises use of its one connection with it, so every read and
    write it makes reports a damaged or locked file the same way.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()

    def __enter__(self) -> "GuardedLock":
        self._lock.acquire()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            if isinstance(exc, sqlite3.Error) and not isinstance(
                    exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise classify(self.path, exc) from exc
        finally:
            self._lock.release()


def connect(path: str | Path, *, create: bool = True, open_timeout: float = OPEN_TIMEOUT_SECONDS,
            autocommit: bool = True) -> sqlite3.Connection:
    """A checked connection to the opsagent database at `path` (see the module docstring).

    `create=False` refuses a path with no database. `autocommit` gives the
    store's mode (it opens its own transactions); False gives Python's default
    transaction handling, which the LangGraph checkpointer expects.
    """
    path = Path(path)
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None if autocommit else "", check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        _build(conn)
        conn.execute("COMMIT")
        return conn
    if path.is_dir():
        raise NotAnOpsagentDatabase(f"{path}: is a directory, not a database file")
    if not path.exists():
        if not create:
            raise DatabaseMissing(f"no audit database at {path}")
        if not path.parent.is_dir():
            raise DatabaseMissing(f"{path}: directory {path.parent} does not exist (it is not created for you)")
        _create(path)
    _check_file(path)
    try:
        conn = sqlite3.connect(str(path), timeout=open_timeout, isolation_level=None if autocommit else "",
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise classify(path, exc, waited=open_timeout) from exc
    try:
        with guarded(path, waited=open_timeout):
            conn.execute(f"PRAGMA busy_timeout = {int(open_timeout * 1000)}")
            _check_pages(path, conn)
            _check_stamp(path, conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _build(conn: sqlite3.Connection) -> None:
    """The schema of a new database, stamped as opsagent's (inside the caller's transaction)."""
    ensure_schema(sqlite_utils.Database(conn))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _create(path: Path) -> None:
    """Build a new database in a private file beside `path`, then link it into place.

    Linking fails if `path` appeared meanwhile (another process made it): theirs is used.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            _build(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: rename, unless someone was faster
            if not path.exists():
                os.replace(tmp, path)
    except sqlite3.Error as exc:
        raise classify(path, exc) from exc
    except OSError as exc:
        raise AuditError(f"{path}: cannot create the database: {exc.strerror or exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _check_file(path: Path) -> None:
    """Refuse, from the file system's word alone, what cannot be a database file.

    The file itself is never opened here, only stat()ed: POSIX locks belong to
    a process, and closing any descriptor of the database file would drop the
    locks this process's SQLite connections hold on it, letting another process
    write at the same time (a corrupted database). Everything that needs the
    file's bytes goes through an SQLite connection (see `_check_pages`).
    """
    if not path.is_file():   # a pipe or a device would block or stream forever when read
        raise NotAnOpsagentDatabase(f"{path}: not a regular file, so not an opsagent database")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the database: {exc.strerror or exc}") from exc
    if size == 0:
        raise NotAnOpsagentDatabase(f"{path}: the file is empty, not an opsagent database "
                                    "(give a path that does not exist to create one)")


def _check_pages(path: Path, conn: sqlite3.Connection) -> None:
    """Refuse a file SQLite cannot read as a database, or one shorter than its header says (truncated)."""
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise NotAnOpsagentDatabase(f"{path}: not an opsagent database (not an SQLite file)") from None
        raise
    real = path.resolve()   # SQLite follows symlinks: its write-ahead log is named after the real file
    size = real.stat().st_size
    wal = real.with_name(real.name + "-wal")
    recovering = wal.exists() and wal.stat().st_size > 0   # newer pages may be in the WAL, not yet in the file
    if size < 100 or (pages and size < pages * page_size and not recovering):
        raise DatabaseCorrupt(f"{path}: the database is truncated ({size} bytes where its header says "
                              f"{pages * page_size}); restore it from a backup")


def _check_stamp(path: Path, conn: sqlite3.Connection) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise NotAnOpsagentDatabase(f"{path}: written by a newer opsagent (schema {version}; this one knows "
                                        f"up to {SCHEMA_VERSION}); upgrade opsagent to read it")
        missing = [c for c in LEGACY_AUDIT_COLUMNS if c not in _columns(conn)]
        if missing:   # the stamp alone is a claim; the audit table must back it
            raise NotAnOpsagentDatabase(f"{path}: marked as an opsagent database, but its {AUDIT_TABLE} table "
                                        f"lacks {_shown(missing)}")
        return
    if app_id != 0:
        raise NotAnOpsagentDatabase(f"{path}: not an opsagent database (another program's: application id {app_id:#x})")
    why = _legacy_mismatch(conn, version)
    if why:
        raise NotAnOpsagentDatabase(f"{path}: not an opsagent database ({why})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] == 0:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _columns(conn: sqlite3.Connection) -> tuple[str, ...]:
    return tuple(r[1] for r in conn.execute(f"PRAGMA table_info([{AUDIT_TABLE}])"))


def _shown(names: "list[str] | tuple[str, ...]", *, limit: int = 6) -> str:
    """Names read from someone else's file, safe to print: control characters are shown escaped, never sent."""
    parts = [n if n.isprintable() else repr(n) for n in names[:limit]]
    return ", ".join(parts) + (", …" if len(names) > limit else "")


def _legacy_mismatch(conn: sqlite3.Connection, version: int) -> str:
    """Why an unstamped database is not one an earlier opsagent made ('' when it is)."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if not tables:
        return "an SQLite database with no tables"
    if AUDIT_TABLE not in tables:
        return f"no {AUDIT_TABLE} table; its tables are {_shown(tables, limit=5)}"
    columns = _columns(conn)
    if columns != LEGACY_AUDIT_COLUMNS:
        return f"its {AUDIT_TABLE} table has other columns: {_shown(columns, limit=6)}"
    if version != LEGACY_VERSION:
        return f"schema version {version}, not one opsagent wrote"
    triggers = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (AUDIT_TABLE,))}
    if not LEGACY_TRIGGERS <= triggers:
        return f"its {AUDIT_TABLE} table is not append-only (no {', '.join(sorted(LEGACY_TRIGGERS - triggers))} trigger)"
    return ""


def check_integrity(path: Path, conn: sqlite3.Connection) -> None:
    """Read every page (`PRAGMA quick_check`); raise `DatabaseCorrupt` naming the first damage found.

    It costs one pass over the file, so it runs when asked (`opsagent audit verify`), not on every open.
    """
    with guarded(path):
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
    if rows != ["ok"]:
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        raise DatabaseCorrupt(f"{path}: the database is damaged: {rows[0]}{more}; restore it from a backup")
