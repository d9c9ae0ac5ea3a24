"""Opening the opsagent database: what is created, what is refused, and how each refusal reads.

Every case runs on a real file: a new path, a missing directory, a directory,
an empty file, text, another program's SQLite database (with and without an
`audit` table of its own), a database an earlier opsagent wrote (no stamp),
one from a newer schema, a real database cut short, one with pages overwritten
in the middle, and one held locked by another process. The library raises an
`AuditError` subclass naming the file; the command prints it on one line and
exits non-zero, without a traceback. Nothing that is not an opsagent database is
ever adopted: its bytes are unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.audit import (
    AuditStore,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseMissing,
    NotAnOpsagentDatabase,
)
from opsagent.audit.database import APPLICATION_ID, LEGACY_VERSION, check_integrity, connect
from opsagent.audit.schema import SCHEMA_VERSION
from opsagent.cli import app
from opsagent.model import AuditEntry

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def entry(i: int) -> AuditEntry:
    return AuditEntry(time=NOW, kind="result", actor="daemon", channel="daemon", tool="scale_workload",
                      args={"namespace": "ml", "name": f"w{i}", "replicas": 1}, outcome="ok",
                      summary=f"scaled ml/w{i} to 1 " + "x" * 300)


def real_db(path: Path, rows: int = 3) -> Path:
    with AuditStore(path) as store:
        store.record_many([entry(i) for i in range(rows)])
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA application_id").fetchone()[0], conn.execute("PRAGMA user_version").fetchone()[0]


@pytest.fixture(autouse=True)
def _simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSAGENT_CLUSTER", "sim:demo")   # commands here run on the simulator unless told otherwise


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


# --- new paths -------------------------------------------------------------------------------------

def test_a_new_path_becomes_a_stamped_opsagent_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with AuditStore(path) as store:
        store.record(entry(1))
        assert store.verify().ok
    assert stamp(path) == (APPLICATION_ID, SCHEMA_VERSION)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".new")]   # no private build file left behind


def test_a_missing_directory_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "deeper" / "x.db"
    with pytest.raises(DatabaseMissing, match="does not exist"):
        AuditStore(path)
    assert not (tmp_path / "missing").exists()
    r = cli("audit", "list", "--db", str(path))
    assert r.exit_code == 2 and str(path) in r.output
    for args in (["ask", "show gpus", "--as", "alice"], ["approvals", "list"], ["agent", "waiting"]):
        r = cli(*args, "--db", str(path), "--policies", "policies", "--playbooks", "playbooks") if args[0] == "ask" \
            else cli(*args, "--db", str(path))
        assert r.exit_code == 2 and str(path) in r.output, (args, r.output)
    assert not (tmp_path / "missing").exists()


def test_read_commands_do_not_create_a_database(tmp_path: Path) -> None:
    path = tmp_path / "nothing.db"
    r = cli("audit", "verify", "--db", str(path))
    assert r.exit_code == 2 and "no audit database" in r.output and not path.exists()
    with pytest.raises(DatabaseMissing):
        connect(path, create=False)


def test_two_processes_creating_one_new_path_share_one_database(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from datetime import datetime, timezone
        from opsagent.audit import AuditStore
        from opsagent.model import AuditEntry
        with AuditStore({str(path)!r}) as store:
            for i in range(20):
                store.record(AuditEntry(time=datetime.now(timezone.utc), kind="run", actor="daemon", summary=str(i)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with AuditStore(path) as store:
        assert store.count() == 60 and store.verify().ok


# --- files that are not an opsagent database ---------------------------------------------------------

def foreign_plain(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
        conn.execute("INSERT INTO people VALUES ('ada')")
    return path


def foreign_audit(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT, prev_hash TEXT, hash TEXT)")
        conn.execute("INSERT INTO audit (what) VALUES ('someone else''s log')")
    return path


def other_app(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("CREATE TABLE audit (x)")
    return path


def no_tables(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")   # writes a valid header and no tables
    return path


def written(data: bytes):
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path
    return make


REFUSED = [
    ("empty file", written(b""), NotAnOpsagentDatabase, "empty"),
    ("plain text", written(b"name,value\nalice,1\n"), NotAnOpsagentDatabase, "not an SQLite file"),
    ("binary noise", written(bytes(range(256)) * 64), NotAnOpsagentDatabase, "not an SQLite file"),
    ("foreign sqlite", foreign_plain, NotAnOpsagentDatabase, "no audit table"),
    ("foreign audit table", foreign_audit, NotAnOpsagentDatabase, "audit table has other columns"),
    ("another program's id", other_app, NotAnOpsagentDatabase, "application id 0x4d2"),
    ("sqlite with no tables", no_tables, NotAnOpsagentDatabase, "no tables"),
]


@pytest.mark.parametrize("name,make,error,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_file_that_is_not_an_opsagent_database_is_refused_and_left_unchanged(
        tmp_path: Path, name: str, make, error: type, words: str) -> None:
    path = make(tmp_path / "other.db")
    before = digest(path)
    with pytest.raises(error, match=words) as caught:
        AuditStore(path)
    assert str(path) in str(caught.value)
    with pytest.raises(error):
        connect(path, autocommit=False)   # the agent's checkpointer opens through the same door
    for args in (["audit", "list"], ["audit", "verify"], ["approvals", "list"], ["agent", "waiting"]):
        r = cli(*args, "--db", str(path))
        assert r.exit_code == 2, (args, r.output)
        assert str(path) in r.output and words.split()[0] in r.output, (args, r.output)
        assert r.output.count("error:") == 1
    r = cli("daemon", "--once", "--db", str(path), "--sim-speed", "0")
    assert r.exit_code == 2 and str(path) in r.output
    assert digest(path) == before and not any(p.name.endswith("-wal") for p in tmp_path.iterdir())


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(NotAnOpsagentDatabase, match="is a directory"):
        AuditStore(tmp_path)
    r = cli("approvals", "list", "--db", str(tmp_path))
    assert r.exit_code == 2 and "is a directory" in r.output


def test_another_file_wearing_the_opsagent_stamp_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "impostor.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT)")
    with pytest.raises(NotAnOpsagentDatabase, match="lacks time, kind"):
        AuditStore(path)


def test_names_from_a_foreign_file_cannot_send_terminal_escapes(tmp_path: Path) -> None:
    path = tmp_path / "escape.db"
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "\x1b[2Jgotcha" (x)')   # a table name that clears the screen
    r = cli("audit", "list", "--db", str(path))
    assert r.exit_code == 2 and "\x1b" not in r.output and "gotcha" in r.output


def test_a_named_pipe_is_refused_without_reading_from_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    with pytest.raises(NotAnOpsagentDatabase, match="not a regular file"):
        AuditStore(fifo)


def test_a_newer_schema_is_refused_rather_than_misread(tmp_path: Path) -> None:
    path = real_db(tmp_path / "future.db")
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(NotAnOpsagentDatabase, match="newer opsagent"):
        AuditStore(path)


def test_demo_refuses_to_replace_a_file_that_is_not_its_database(tmp_path: Path) -> None:
    path = foreign_plain(tmp_path / "precious.db")
    before = digest(path)
    r = cli("demo", "--hours", "0.5", "--db", str(path))
    assert r.exit_code == 2 and "not an opsagent database" in r.output
    assert digest(path) == before


# --- databases from earlier versions --------------------------------------------------------------------

def test_a_database_from_an_earlier_version_is_recognised_and_stamped(tmp_path: Path) -> None:
    path = real_db(tmp_path / "old.db", rows=5)
    with sqlite3.connect(path) as conn:   # earlier versions wrote schema 2 without an application id
        conn.execute("PRAGMA application_id = 0")
        conn.execute(f"PRAGMA user_version = {LEGACY_VERSION}")
    assert stamp(path) == (0, LEGACY_VERSION)
    r = cli("audit", "verify", "--db", str(path))
    assert r.exit_code == 0 and "intact: 5 rows" in r.output
    assert stamp(path) == (APPLICATION_ID, SCHEMA_VERSION)


def test_an_unstamped_database_without_the_append_only_triggers_is_not_taken_for_an_earlier_version(
        tmp_path: Path) -> None:
    path = real_db(tmp_path / "editable.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.execute(f"PRAGMA user_version = {LEGACY_VERSION}")
        conn.execute("DROP TRIGGER audit_no_delete")
    with pytest.raises(NotAnOpsagentDatabase, match="audit_no_delete"):
        AuditStore(path)


def test_an_unstamped_database_with_an_extra_audit_column_is_not_taken_for_an_earlier_version(tmp_path: Path) -> None:
    path = real_db(tmp_path / "lookalike.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.execute(f"PRAGMA user_version = {LEGACY_VERSION}")
        conn.execute("ALTER TABLE audit ADD COLUMN sneaky TEXT")
    with pytest.raises(NotAnOpsagentDatabase, match="other columns"):
        AuditStore(path)
    assert stamp(path)[0] == 0


# --- damaged databases ---------------------------------------------------------------------------------

def test_a_truncated_database_is_reported_as_damaged(tmp_path: Path) -> None:
    path = real_db(tmp_path / "cut.db", rows=400)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatabaseCorrupt, match="truncated"):
        AuditStore(path)
    for args in (["audit", "list"], ["approvals", "list"]):
        r = cli(*args, "--db", str(path))
        assert r.exit_code == 2 and "truncated" in r.output and str(path) in r.output
    r = cli("audit", "verify", "--db", str(path))   # verify's question is "intact?": no, exit 1
    assert r.exit_code == 1 and "truncated" in r.output and "intact" not in r.output


def overwrite_middle_pages(path: Path, pages: int = 3) -> None:
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    count = len(data) // page_size
    start = (count // 2) * page_size
    data[start:start + pages * page_size] = b"\x5a" * (pages * page_size)
    path.write_bytes(bytes(data))


def test_pages_overwritten_mid_file_are_found_by_verify_and_reading_them_fails_cleanly(tmp_path: Path) -> None:
    path = real_db(tmp_path / "damaged.db", rows=600)
    overwrite_middle_pages(path)
    r = cli("audit", "verify", "--db", str(path))
    assert r.exit_code == 1 and "damaged" in r.output and str(path) in r.output
    assert "intact" not in r.output
    with AuditStore(path) as store, pytest.raises(DatabaseCorrupt, match="damaged"):
        check_integrity(store.path, store.db.conn)
    for args in (["audit", "list", "--limit", "100000"], ["audit", "export"], ["audit", "stats"]):
        r = cli(*args, "--db", str(path))
        assert r.exit_code == 2, (args, r.output)
        assert "damaged" in r.output and str(path) in r.output and "internal error" not in r.output


# --- locks -----------------------------------------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO audit_meta (key, value) VALUES ('held', 'yes')")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def locked_db(tmp_path: Path):
    path = real_db(tmp_path / "busy.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    yield path
    holder.communicate(timeout=30)


def test_a_database_locked_by_another_process_says_so(locked_db: Path) -> None:
    with pytest.raises(DatabaseLocked, match=r"database is locked by another process \(waited 0.2 s\)"):
        connect(locked_db, open_timeout=0.2)
    r = cli("audit", "list", "--db", str(locked_db))
    assert r.exit_code == 2
    assert "database is locked by another process (waited 5 s)" in r.output and str(locked_db) in r.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = real_db(tmp_path / "secret.db")
    path.chmod(0)
    try:
        r = cli("audit", "list", "--db", str(path))
        assert r.exit_code == 2 and str(path) in r.output and "Permission denied" in r.output
    finally:
        path.chmod(0o600)


def test_an_sqlite_error_met_outside_the_store_still_names_the_database(tmp_path: Path) -> None:
    """The root command's last line of defence: a raw SQLite error names the --db it came from."""
    import typer

    from opsagent.cli.common import DbOpt
    from opsagent.cli.errors import CommandGroup

    path = real_db(tmp_path / "damaged.db", rows=600)
    overwrite_middle_pages(path, pages=40)
    probe = typer.Typer(cls=CommandGroup)

    @probe.command("read")
    def read(db: Path = DbOpt) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("SELECT * FROM audit").fetchall()

    @probe.command("other")
    def other() -> None:
        pass

    r = CliRunner().invoke(probe, ["read", "--db", str(path)])
    assert "Traceback" not in r.output and r.exit_code == 2
    assert f"{path}: the database is damaged" in r.output


def test_opening_the_database_again_keeps_this_process_s_locks(tmp_path: Path) -> None:
    """Promise: a second open in one process never drops the locks its first connection holds.

    POSIX locks belong to the process: closing any descriptor of the file releases them all. In WAL mode
    every open connection holds a shared lock on the database file, which is how a closing connection in
    another process learns it is not the last one. If opening read the file's header through a descriptor
    of its own, that lock would vanish, the other process would checkpoint and delete the write-ahead log
    under this one, and this process's next writes would be lost (a truncated, damaged database).
    """
    path = tmp_path / "ops.db"
    AuditStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("SELECT count(*) FROM audit").fetchone()   # an open reader: it holds its shared lock
    try:
        AuditStore(path).close()        # a second open (and close) in the same process
        other = subprocess.run([sys.executable, "-c", (
            "import sqlite3\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('CREATE TABLE scratch (x)')\n"
            "c.close()\n")], capture_output=True, text=True, timeout=60)
        assert other.returncode == 0, other.stderr
        # The other process must have seen this one still open: it leaves the write-ahead log in place.
        assert path.with_name(path.name + "-wal").exists()
    finally:
        holder.close()
